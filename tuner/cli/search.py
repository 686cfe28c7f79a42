"""`tune search`: run or resume a study, with a live leaderboard, then the ensemble step."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from tuner.wording import plural
from tuner.cli.app import Application
from tuner.cli.options import Seconds, requested_space, space_options, store_options
from tuner.search.engines import ENGINES, PRUNERS, SAMPLERS
from tuner.errors import SearchStopped, UserError


@click.command("search")
@space_options
@click.option("--study", help="Study name (default: the space's name). Same name again = resume.")
@click.option("--trials", type=click.IntRange(min=1), default=20, show_default=True,
              help="The study ends with this many finished (complete or pruned) trials, across all workers.")
@click.option("--engine", type=click.Choice(list(ENGINES)), default="optuna", show_default=True)
@click.option("--sampler", type=click.Choice(SAMPLERS), help="optuna: tpe (default), random, gp. keras-tuner: bayesian (default), random, "
                                "hyperband (its brackets count as trials; see README). A resumed study keeps its own.")
@click.option("--pruner", type=click.Choice(PRUNERS), help="optuna: median (default; hyperband with --timeout), hyperband, none; a resumed study keeps its own. Stops poor trials at an epoch's end, once they have trained the space's prune_after epochs (2 by default); median judges once a tenth of the trials (2 to 5) are complete.")
@click.option("--timeout", type=Seconds(1),
              help="Seconds the search may run, from the command's start; then the ensemble step runs. Each trial's "
                   "time is estimated before it trains (its counted multiply-adds and written values, calibrated by the trials this "
                   "machine ran) and shown: one that cannot end in the time left trains the epochs that fit, or is "
                   "set aside for another proposal when none fit or, once a trial ranks, less than a third; while no trial has ranked, trials are planned to end 75 s after "
                   "the start (the checks count); the pruner of a new study is hyperband unless --pruner says otherwise. At the deadline a "
                   "running trial stops after its current step (recorded as pruned, still a candidate for the "
                   "ensemble). The ETA counts it. On a 2-core CPU an epoch of 12,000 Fashion-MNIST images through a "
                   "depth-2, width-32 CNN takes about 12 s with both cores (22 s on one); a digits trial a few seconds.")
@click.option("--trial-timeout", type=Seconds(1),
              help="Seconds one trial may train: it is planned to the epochs estimated to fit (at least one; "
              "its schedule decays over them), and past them it stops after its current step, as at --timeout.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), help="Sampler seed, for a reproducible sequence of proposals (with --jobs 1).")
@click.option("--keep-models", type=click.IntRange(min=1), default=10, show_default=True,
              help="Model files are kept for this many best trials (the ensemble's candidates).")
@click.option("--max-failures", type=click.IntRange(min=1), default=5, show_default=True,
              help="Stop after this many failed trials in a row.")
@click.option("--precision", type=click.Choice(["auto", "bf16", "float32"]), default="auto", show_default=True,
              help="auto: bf16 mixed precision on a GPU/TPU, float32 on the CPU.")
@click.option("--backend", type=click.Choice(["tensorflow", "jax", "torch"]), envvar="KERAS_BACKEND", show_envvar=True,
              help="Keras backend (default: $KERAS_BACKEND, else tensorflow).")
@click.option("--jobs", type=click.IntRange(min=1),
              help="Worker processes training trials at once on this machine (optuna engine). On one GPU, one "
                   "compiles while another trains; each gets a share of its memory and of the CPU's threads. "
                   "Proposals then depend on which trial ends first: --jobs 1 with --seed repeats a search's "
                   "proposals.  [default: 2 with the optuna engine on 2 or more cores, else 1; 1 on a CPU when the "
                   "checks count more than 5M multiply-adds an image for the space's first trial: then one "
                   "worker with every core trains faster than two with one each]")
@click.option("--isolate/--in-process", default=None,
              help="Train in a worker process that is replaced once its memory grew 15%  [default: isolate on "
                   "TensorFlow, whose memory grows with every trial; in-process on JAX and PyTorch]")
@click.option("--check/--no-check", default=True, show_default=True, envvar="TUNE_CHECK", show_envvar=True,
              help="Before a new study's first trial, run the checks of `tune check` (the data audit, the cost of a trial, the loss at "
                   "initialization, a blank-input baseline, one batch overfitted, the largest configurations); "
                   "a failed check stops the search with its line. Recorded with the study; `tune report` shows them.")
@click.option("--ensemble/--no-ensemble", default=True, show_default=True,
              help="After the search, build the ensemble and evaluate it once on the test split.")
@click.option("--refit", is_flag=True, help="The ensemble's members are trained again on train + validation "
              "before the test (see `tune ensemble --help`).")
@store_options
@click.pass_obj
def command(app: Application, space: str, study: str | None, trials: int, engine: str, sampler: str | None, pruner: str | None,
            timeout: float | None, trial_timeout: float | None, data: Path | None, epochs: int | None, sets: tuple[str, ...], seed: int | None,
            keep_models: int, max_failures: int, precision: str, backend: str | None, jobs: int | None,
            isolate: bool | None, check: bool, ensemble: bool, refit: bool,
            storage: str | None, results_dir: Path) -> None:
    """Search a space: `tune search --space cifar10 --trials 50`."""
    from tuner import config, interrupts
    from tuner.errors import Interrupted
    from tuner.search.early import EarlyWorkers
    from tuner.search.pool.jobs import check_jobs, default_jobs
    from tuner.keras_backend import require_backend, selected_backend
    from tuner.search.engines import budget_pruner, check_choice
    from tuner.paths import check_study_name, outside_data
    from tuner.search.request import SearchRequest
    from tuner.data import import_splitter_in_background
    from tuner.search.pool.processes import start_preloading
    from tuner.search.run import check_request, in_workers, run_search
    from tuner.store import redact
    from tuner.ui.live import SearchView

    if backend:
        config.set_keras_backend(backend)
    config.check()
    check_choice(engine, sampler, budget_pruner(engine, pruner, timeout))
    if refit and not ensemble:
        raise UserError("--refit trains the ensemble's members again: it needs the ensemble step (drop --no-ensemble)")
    loaded = requested_space(space, epochs, sets, app.terminal.warn)
    name = check_study_name(loaded.name if study is None else study, "the space's name" if study is None else "--study")
    require_backend(selected_backend())  # before any data is decoded or any worker starts
    if isolate is None:
        isolate = selected_backend() == "tensorflow"
    jobs_given, jobs = jobs, check_jobs(jobs or default_jobs(engine, trials=trials))
    request = SearchRequest(loaded, name, trials, engine, sampler, pruner, timeout, data, config.cache_dir(), seed,
                            keep_models, max_failures, precision, jobs, isolate, trial_timeout=trial_timeout)
    outside_data(results_dir, data, "results folder", "--results-dir")
    store, terminal = app.open_store(storage, results_dir, heartbeat=True, create=True), app.terminal
    # Said once the search starts: a command refused before (bad data, a foreign database) prints its one line only.
    intro = (f"study {name}: space {loaded.name} ({loaded.dataset}), engine {engine}, {plural(trials, 'trial')}, "
             f"storage {redact(store.url)}")
    view = SearchView(terminal, store, name, trials, intro=intro, timeout=timeout)
    store.db.check()  # a bad --storage fails here, before any data is decoded; nothing is created yet
    store.artifacts.check_writable(name)
    # Not opened yet where there is no database: input refused from here on (bad data, checks that
    # fail or leave too little time, a signal) must leave none behind.
    # A blank study (a search killed as it created it) is new too: opening takes it over.
    new = not store.db.exists() or name not in store.studies.names()
    unreadable = dict(store.studies.unreadable()) if store.db.exists() else {}
    if name in unreadable:  # a study of that name Optuna cannot read: its own line, before the checks
        raise unreadable[name]
    if not new:
        request = _as_the_study_was(request, store.studies.meta(name))
    request = replace(request, pruner=budget_pruner(engine, request.pruner, timeout))
    check_request(request)  # refused before the server starts: it would import TensorFlow for nothing
    if in_workers(request):  # its imports overlap the study's opening; the checks and the workers fork from it
        start_preloading()
        import_splitter_in_background()
    early = EarlyWorkers(store, request, jobs_fixed=jobs_given is not None)
    try:
        if check and new:
            request = replace(request, checks=tuple(f.to_dict() for f in _first_checks(request, terminal, early.found)))
        request = early.final(request, list(request.checks) if new else store.studies.checks(name))
        before = [] if new else store.trials.all(name)
        with view:
            run_search(store, request, view, early.spawner)
        if sum(t.finished for t in before) < trials:  # else there was nothing left to run
            _require_a_trial(store, name, timeout, len(before), new)
    except KeyboardInterrupt as e:
        raise Interrupted(interrupts.cause(e)) from None
    finally:
        early.close()
    if view.live is None and view.board is not None:
        terminal.print_board(view.board)
    if ensemble:
        _require_candidates(store, name, timeout)
        app.evaluation(store, name, data, refit=refit)


def _as_the_study_was(request, meta: dict) -> object:
    """A resumed study keeps the sampler and pruner it was made with: a resume that names none
    takes them, one that names others is refused (the study's record would name what did not
    propose its trials; KerasTuner's oracle cannot change at all)."""
    if meta.get("engine") != request.engine:
        return request  # refused when the study opens, with the engines named
    kept = {option: meta.get(option) for option in ("sampler", "pruner")}
    for option, given in (("sampler", request.sampler), ("pruner", request.pruner)):
        if given is not None and kept[option] is not None and given != kept[option]:
            raise UserError(f"study '{request.study}' was searched with {option} {kept[option]}; it cannot change "
                            f"to {given} (resume it without --{option}, or use another --study name)")
    return replace(request, sampler=request.sampler or kept["sampler"], pruner=request.pruner or kept["pruner"])


def _first_checks(request, terminal, on_finding) -> list:
    """The checks of `tune check`, shown as they come; a failed one stops the search (nothing is created)."""
    from tuner.check import failed
    from tuner.search.checks import run_first_checks
    from tuner.ui.checks import CheckView

    terminal.info(f"checking space {request.space.name} and its data before the first trial (--no-check skips)")
    with CheckView(terminal) as view:
        findings = run_first_checks(request, lambda f: (view.found(f), on_finding(f)))
    if failures := failed(findings):
        raise SearchStopped(f"check failed: {failures[0].check}: {failures[0].evidence}; nothing was searched "
                            f"(`tune check --help` says what each check does; --no-check skips them)")
    return findings


def _require_a_trial(store, name: str, timeout: float | None, before: int, new: bool) -> None:
    """A deadline that came before any trial started (`--no-check`, where the checks would have
    said so first): one line, exit 1; a new study is removed, so the same command with more time
    starts it afresh, checks included."""
    if timeout is None or len(store.trials.all(name)) > before:
        return
    if new:
        store.studies.delete(name)
        store.artifacts.delete_study_dir(name)
    raise SearchStopped(f"--timeout {timeout:g} s ended before any trial ran (workers start in seconds, and a trial "
                        f"whose first epoch would not fit in the time left is not started); give it more time; "
                        f"nothing was searched"
                        + ("" if new else f" (study '{name}' is as it was)"))


def _require_candidates(store, name: str, timeout: float | None) -> None:
    """The ensemble step needs a trial with a model; without one, say why in words a user can act on."""
    if store.trials.top(name, 1):
        return
    ran = plural(len(store.trials.all(name)), "trial")
    why = f"{ran} ran before the deadline (--timeout {timeout:g} s); give it more time" if timeout is not None else f"{ran} ran"
    raise UserError(f"no trial of study '{name}' finished with a model to evaluate: {why}; the test split was not read")
