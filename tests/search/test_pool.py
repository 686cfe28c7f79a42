"""Worker processes (`--jobs`, and the worker that replaces itself as its memory grows):
every engine's search gives the same study as in one process, and a worker killed
mid-trial costs that trial only."""

from __future__ import annotations

import os
import signal
import pytest

from tuner.check import COST_CHECK, Finding, Status
from tuner.errors import UserError
from tuner.search.early import EarlyWorkers
from tuner.search.pool.jobs import ONE_WORKER_MACS
from tuner.search.observer import QuietObserver
from tuner.search.request import SearchRequest
from tuner.search.run import run_search
from tuner.store import SearchStore

pytestmark = pytest.mark.slow  # every test here trains real models


class Recorder(QuietObserver):
    def __init__(self) -> None:
        self.setups: list[dict] = []
        self.finished: list[int] = []
        self.notes: list[str] = []

    def search_started(self, setup) -> None:
        self.setups.append(setup)

    def trial_finished(self, record) -> None:
        self.finished.append(record.number)

    def note(self, message: str) -> None:
        self.notes.append(message)


def request_for(space, store: SearchStore, n: int, **kw) -> SearchRequest:
    return SearchRequest(space, "study", n, cache_dir=store.results_dir / "cache", seed=0, **kw)


def worker_starts(store: SearchStore) -> int:
    logs = (store.artifacts.study_dir("study") / "logs").glob("worker-*.log")
    return sum(path.read_text().count("--- worker pid") for path in logs)


def test_two_jobs_share_one_study(tiny_space, results):
    store, seen = SearchStore(None, results, create=True), Recorder()
    run_search(store, request_for(tiny_space, store, 4, jobs=2), seen)
    trials = store.trials.all("study")
    assert sum(t.finished for t in trials) == 4
    assert len({t.number for t in trials}) == len(trials)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == len(trials)  # seeded workers differ
    assert worker_starts(store) == 2
    assert len(seen.setups) == 1 and seen.setups[0]["jobs"] == "2"
    assert sorted(seen.finished) == sorted(t.number for t in trials if t.state != "running")


# KerasTuner's: its oracle reloads in the fresh process. Optuna's study resumes from the storage
# alone, in a fresh process after every kill in tests/e2e/test_reliability.py.
@pytest.mark.parametrize("engine", ["keras-tuner"])
def test_workers_that_retire_after_each_trial_lose_nothing(engine, tiny_space, results):
    """A negative growth budget retires a worker after every trial: the engine must resume its
    study in the fresh process and end with exactly N."""
    store = SearchStore(None, results, create=True)
    run_search(store, request_for(tiny_space, store, 2, engine=engine, isolate=True, retire_growth=-1.0), Recorder())
    trials = store.trials.all("study")
    assert sum(t.finished for t in trials) == 2 and not [t for t in trials if t.state == "running"]
    assert worker_starts(store) == 2  # the second trial ran in a fresh process, which resumed the study
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 2  # no proposal replayed


class KillFirstWorker(Recorder):
    """Kills the worker (SIGKILL, as the out-of-memory killer would) as its first trial starts
    (it is then compiling for a second or more)."""

    def __init__(self) -> None:
        super().__init__()
        self.killed = False

    def trial_started(self, number, params, max_epochs, plan="") -> None:
        if not self.killed:
            self.killed = True
            os.kill(int(self.setups[0]["pid"]), signal.SIGKILL)


def test_a_killed_worker_is_replaced_and_costs_its_trial_only(tiny_space, results):
    store, seen = SearchStore(None, results, create=True), KillFirstWorker()
    run_search(store, request_for(tiny_space, store, 2, isolate=True), seen)
    trials = store.trials.all("study")
    assert sum(t.finished for t in trials) == 2
    failed = [t for t in trials if t.state == "failed"]
    assert len(failed) == 1 and "worker process ended" in failed[0].reason
    assert any("worker 0 ended unexpectedly" in note for note in seen.notes)
    assert worker_starts(store) == 2


def _cost(macs: float) -> Finding:
    return Finding(COST_CHECK, Status.PASS, "measured", {"macs": macs, "accelerator": 0.0})


def test_workers_started_during_the_checks_search_with_the_final_request(tiny_space, results):
    """Spawned once the cost check reported (asked for one trial), released with the request as the
    search finally has it (three trials, the checks' findings): the study gets three."""
    store, seen = SearchStore(None, results, create=True), Recorder()
    early = EarlyWorkers(store, request_for(tiny_space, store, 1, jobs=2), jobs_fixed=True)
    early.found(Finding("loss at initialization", Status.PASS, "2.303"))
    assert early.spawner is None  # only the cost decides
    early.found(_cost(1e5))
    assert early.spawner is not None and len(early.spawner.ready) == 2
    checks = (_cost(1e5).to_dict(),)
    final = early.final(request_for(tiny_space, store, 3, jobs=2, checks=checks), list(checks))
    run_search(store, final, seen, early.spawner)
    early.close()
    assert sum(t.finished for t in store.trials.all("study")) == 3
    assert worker_starts(store) == 2 and store.studies.checks("study") == list(checks)


def test_workers_started_during_checks_that_then_fail_leave_nothing(tiny_space, results):
    store = SearchStore(None, results, create=True)
    early = EarlyWorkers(store, request_for(tiny_space, store, 1, jobs=2), jobs_fixed=True)
    early.found(_cost(1e5))
    processes = [launch.process for launch in early.spawner.ready]
    early.close()
    early.close()  # twice, as a failed search's cleanup may
    assert not any(p.is_alive() for p in processes)
    assert not store.artifacts.study_dir("study").exists() and store.studies.names() == []


@pytest.mark.parametrize("macs, jobs", [(1e5, 2), (ONE_WORKER_MACS * 4, 1)])
def test_the_cost_check_sizes_the_workers_started_early(tiny_space, results, monkeypatch, macs, jobs):
    monkeypatch.setattr("tuner.search.pool.jobs.usable_cores", lambda: 2)
    store = SearchStore(None, results, create=True)
    early = EarlyWorkers(store, request_for(tiny_space, store, 2, jobs=2, isolate=True), jobs_fixed=False)
    early.found(_cost(macs))
    try:
        assert len(early.spawner.ready) == jobs
        assert early.final(request_for(tiny_space, store, 2, jobs=2), []).jobs == jobs  # as started, not recounted
    finally:
        early.close()


def test_keras_tuner_refuses_several_jobs(tiny_space, results):
    store = SearchStore(None, results, create=True)
    with pytest.raises(UserError, match="--jobs needs --engine optuna"):
        run_search(store, request_for(tiny_space, store, 2, engine="keras-tuner", jobs=2), Recorder())


def _report_to_a_closed_parent() -> None:
    from multiprocessing import Pipe

    from tuner.search.pool.messages import Forward

    inbox, outbox = Pipe(duplex=False)
    inbox.close()  # the parent is gone
    Forward(outbox, 0).epoch_ended(0, 0, {"val_accuracy": 0.5})
    raise SystemExit(0)  # reached only if the report did not end the process


def test_a_worker_whose_parent_is_gone_ends_without_failing_its_trial():
    # Raising BrokenPipeError inside the trial would record it failed with that error (seen in CI
    # when a parent was killed mid-trial); the worker must end instead, leaving the trial for
    # the next run to mark interrupted.
    import multiprocessing

    process = multiprocessing.get_context("spawn").Process(target=_report_to_a_closed_parent)
    process.start()
    process.join(60)
    assert process.exitcode == 3


@pytest.mark.parametrize("growth, spawned, most", [(10.0, 1, 1), (-1.0, 2, 3)])  # most: + one readied as the study ended
def test_a_standby_is_readied_only_once_a_worker_is_halfway_to_retiring(growth, spawned, most, tiny_space, results,
                                                                       monkeypatch):
    """A standby imports for seconds beside the workers' start, and every search paid for one:
    a short search never used it. Now one is spawned once a worker's memory grew by half its
    budget (here: never, or after every trial), and it takes the retiring worker's slot."""
    from tuner.search.pool.spawner import Spawner

    spawns = []
    spawn = Spawner.spawn
    monkeypatch.setattr(Spawner, "spawn", lambda self: spawns.append(self.started) or spawn(self))
    store = SearchStore(None, results, create=True)
    run_search(store, request_for(tiny_space, store, 2, isolate=True, retire_growth=growth), Recorder())
    assert sum(t.finished for t in store.trials.all("study")) == 2
    assert worker_starts(store) == spawned  # with -1.0 the second trial ran in the standby
    assert spawns[:spawned] == list(range(spawned)) and len(spawns) <= most
