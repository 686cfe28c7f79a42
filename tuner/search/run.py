"""Open or resume a study, fix its split, and run an engine on it, here or in worker processes."""

from __future__ import annotations

import os

from tuner.data import SearchData, load_search_data
from tuner.search.engines import check_choice, engine_class, queue_start_points
from tuner.errors import UserError
from tuner.interrupts import catching_ctrl_c
from tuner.search.context import SearchContext
from tuner.search.observer import SearchObserver
from tuner.search.pool.spawner import Spawner
from tuner.search.request import SearchRequest, study_meta
from tuner.search.loop import run_trials
from tuner.search.runner import TrialRunner, fail_own_trials
from tuner.store import SearchStore


def run_search(store: SearchStore, request: SearchRequest, observer: SearchObserver,
               spawner: Spawner | None = None) -> None:
    """Run (or resume) the study until it has `n_trials` finished trials, in this process or in
    worker processes (`spawner`'s, if they were started ahead: `start_workers`). Raises
    UserError for bad input and SearchStopped for a fatal condition."""
    check_request(request)
    if not in_workers(request):
        with catching_ctrl_c():
            search_here(store, request, observer)
        return
    from tuner.search.pool.supervisor import run_workers

    spawner = spawner or Spawner(store, request, search_here, warm_up)
    spawner.adopt(request)
    open_search(store, request, observer)  # bad data or a mismatched study fail here, once
    with catching_ctrl_c():
        run_workers(store, request, observer, spawner)


def check_request(request: SearchRequest) -> None:
    check_choice(request.engine, request.sampler, request.pruner)
    if request.jobs > 1 and request.engine == "keras-tuner":
        raise UserError("keras-tuner keeps its oracle in one process: --jobs needs --engine optuna")


def in_workers(request: SearchRequest) -> bool:
    return request.jobs > 1 or request.isolate


def start_workers(store: SearchStore, request: SearchRequest) -> Spawner | None:
    """The search's worker processes, spawned now so that their imports overlap other work (the
    checks' training); None if it trains in this process. The caller closes the spawner if the
    search does not start (its workers leave nothing behind)."""
    check_request(request)
    if not in_workers(request):
        return None
    spawner = Spawner(store, request, search_here, warm_up)
    spawner.prepare()
    return spawner


def open_search(store: SearchStore, request: SearchRequest, observer: SearchObserver) -> SearchData:
    """Load the data with the study's split and open (or check) the study."""
    sampler, pruner = check_choice(request.engine, request.sampler, request.pruner)
    data, split = load_search_data(request.space, request.data, request.cache_dir)
    if not request.checks:  # else the checks' "data: reading" said them, in this command
        for note in split.notes:
            observer.note(note)
    store.artifacts.check_no_links_out(request.study)
    store.open_study(request.study, study_meta(request, sampler, pruner, split))
    store.studies.record_checks(request.study, list(request.checks))
    queue_start_points(request.engine, store, request.study, request.space)
    store.artifacts.save_val_labels(request.study, data.y_val)
    return data


def warm_up(request: SearchRequest) -> None:
    """What a standby worker process does before it is needed: the imports that take seconds."""
    from tuner.keras_backend import load_keras

    load_keras()
    engine_class(request.engine)


def search_here(store: SearchStore, request: SearchRequest, observer: SearchObserver) -> bool:
    """Run the engine in this process; False if it stopped early to retire its process
    (`request.retire_growth`) before the study was done."""
    data = open_search(store, request, observer)
    try:
        return _run_engine(store, request, observer, data)
    finally:  # a stop, an error or a signal: none of this process's trials stays RUNNING
        fail_own_trials(store, request.study, {os.getpid()})


def _run_engine(store: SearchStore, request: SearchRequest, observer: SearchObserver, data: SearchData) -> bool:
    from tuner.search.budget import FIRST_RESULT_SECONDS
    from tuner.training.backend import configure

    setup = configure(request.precision, request.cache_dir)
    deadline = request.deadline
    # A search of one trial has no first result to show before its last: that trial takes the budget.
    first_by = None if deadline is None or request.n_trials < 2 else request.started + FIRST_RESULT_SECONDS
    ctx = SearchContext(store, request.study, request.space, data, observer, request.keep_models,
                        request.max_failures, request.retire_growth, deadline, first_by, request.trial_timeout,
                        setup["device"], request.n_trials)
    sampler, pruner = check_choice(request.engine, request.sampler, request.pruner)
    runner = TrialRunner(ctx)
    engine = engine_class(request.engine)(ctx, sampler, pruner, request.seed)
    observer.search_started(setup)
    run_trials(engine, runner, request.n_trials, deadline)
    return not runner.retiring or store.trials.count_finished(request.study) >= request.n_trials
