"""The runner runs and records every trial: complete, pruned, failed, interrupted; it keeps the
model files of the top K only, and stops a search after failures in a row. Real training, one
epoch of the tiny digits space per trial."""

from __future__ import annotations

import os
import re

import optuna
import pytest

from tuner.errors import SearchStopped
from tuner.training import cost as costs
from tuner.search.context import Proposal, SearchContext
from tuner.search.observer import QuietObserver
from tuner.search.runner import TrialRunner, fail_own_trials
from tuner.store import SearchStore, TrialRecord
from tuner.store.workers import this_worker

DIVERGES = {"optimizer": "sgd", "learning_rate": 10.0, "l2": 1.0, "momentum": 0.9, "batch_norm": False}


class Interrupting(QuietObserver):
    """Ctrl-C as the first epoch ends (what the flag check raises there)."""

    def epoch_ended(self, number, epoch, metrics):
        raise KeyboardInterrupt


@pytest.fixture
def setup(digits_data, tiny_space, results):
    store = SearchStore(None, results, create=True)
    store.open_study("s", {})

    def runner(keep_models: int = 10, max_failures: int = 5, observer=None, **context) -> TrialRunner:
        return TrialRunner(SearchContext(store, "s", tiny_space, digits_data[0], observer or QuietObserver(),
                                         keep_models=keep_models, max_failures=max_failures, **context))

    def proposal(**params) -> Proposal:
        complete = tiny_space.complete({"depth": 1, "width": 4, "dropout": 0.0, **params})
        return Proposal(store.trials.begin("s", complete), complete, max_epochs=1)

    return store, runner, proposal


def _model_files(store: SearchStore) -> set[int]:
    return {int(p.parent.name) for p in (store.results_dir / "s" / "trials").glob("*/model.keras")}


def _finished(store: SearchStore, value: float) -> int:
    """A finished trial of another worker, with a model file on disk."""
    number = store.trials.add("s", TrialRecord(-1, "complete", value, {}, val_loss=1.0))
    store.artifacts.trial_dir("s", number).mkdir(parents=True)
    (store.artifacts.trial_dir("s", number) / "model.keras").write_bytes(b"m")
    return number


def test_a_complete_trial_is_recorded_as_returned_with_its_model_while_it_ranks_in_the_top_k(setup):
    store, runner, proposal = setup
    weak = _finished(store, 0.0)
    run = runner(keep_models=1)
    p = proposal()
    record = run.run(p)
    assert record.state == "complete" and record.value == max(record.history["val_accuracy"]) > 0.0
    assert record.seed == run.trial_seed(p.number) != run.trial_seed(p.number + 1)
    assert record.epochs == 1 and record.best_epoch == 0 and record.seconds > 0 and record.val_loss > 0
    (stored,) = [t for t in store.trials.all("s") if t.number == p.number]
    assert stored == record.__class__(**{**record.__dict__, "started": stored.started})
    assert _model_files(store) == {p.number}  # it outranked the weak trial, whose model went
    assert weak not in _model_files(store)


def test_a_trial_outside_the_top_k_keeps_no_model_and_takes_none(setup):
    store, runner, proposal = setup
    perfect = _finished(store, 1.0)
    record = runner(keep_models=1).run(proposal())
    assert record.state == "complete" and record.value < 1.0
    assert _model_files(store) == {perfect}
    assert (store.results_dir / "s" / "trials" / str(record.number) / "val_probs.npy").is_file()  # its views stay


def test_a_pruned_trial_is_recorded_with_the_value_it_was_pruned_at(setup):
    store, runner, proposal = setup
    p = proposal()
    p = Proposal(p.number, p.params, max_epochs=2, should_prune=lambda epoch, value: epoch == 0)
    record = runner().run(p)
    assert record.state == "pruned" and record.epochs == 1 and record.value == record.history["val_accuracy"][0]
    assert record.val_accuracy == record.value and record.reason == "pruned after epoch 1" and record.best_epoch is None
    assert record.timings["train_seconds"] > 0 and set(record.history) >= {"loss", "val_loss", "val_accuracy"}
    assert not record.ranks  # the pruner's trial: no best epoch's predictions
    (stored,) = store.trials.all("s")
    assert stored == record.__class__(**{**record.__dict__, "started": stored.started})
    assert _model_files(store) == set()


class Recording(QuietObserver):
    def __init__(self):
        self.calls = []

    def trial_started(self, number, params, max_epochs, plan=""):
        self.calls.append(("started", number, params, max_epochs))

    def epoch_ended(self, number, epoch, metrics):
        self.calls.append(("epoch", number, epoch, sorted(metrics)))


def test_the_observer_is_told_each_trial_and_epoch_and_seconds_are_the_trials_own(setup):
    import time

    store, runner, proposal = setup
    observer, p = Recording(), proposal()
    p = Proposal(p.number, p.params, max_epochs=2)
    start = time.perf_counter()
    record = runner(observer=observer).run(p)
    wall = time.perf_counter() - start
    metrics = ["accuracy", "loss", "lr", "val_accuracy", "val_balanced_accuracy", "val_loss"]
    assert observer.calls == [("started", p.number, p.params, 2), ("epoch", p.number, 0, metrics),
                              ("epoch", p.number, 1, metrics)]
    assert 0 < record.seconds <= wall and record.max_epochs == 2


@pytest.fixture
def unplanned(monkeypatch):
    """No estimate of a trial's time (as on an accelerator before its first trial): it trains as
    asked, and only the stop at the deadline bounds it."""
    monkeypatch.setattr(costs, "prior", lambda device, threads: None)


def _slow_machine(monkeypatch) -> None:
    """A machine assumed to take 10 s a training step, whatever its trials measure: every digits
    epoch is minutes long."""
    monkeypatch.setattr(costs, "prior", lambda device, threads: costs.Calibration(10.0, 0.0, 0.0))
    monkeypatch.setattr(costs, "calibrate", lambda start, measured, work=None: start)


def test_a_deadline_shortens_a_trial_to_the_epochs_that_fit_and_the_first_to_a_minute(setup, digits_data, tiny_space,
                                                                                        monkeypatch):
    import time

    _slow_machine(monkeypatch)
    store, runner, proposal = setup
    observer = Recording()
    steps = len(digits_data[0].x_train) // tiny_space.complete({})["batch_size"]
    now = time.monotonic()  # 2.5 epochs' time to the deadline, the first result due in a minute
    run = runner(observer=observer, deadline=now + 10 * steps * 2.5, first_result_by=now + 60)
    records = []
    for _ in range(2):  # begun one at a time: the first runs alone, as a search's first trial does
        p = proposal()
        records.append(run.run(Proposal(p.number, p.params, max_epochs=5)))
    first, second = records
    # Not one epoch (170 s) fits before the mark: a subset of the first, as many batches as fit in its 60 s.
    assert re.fullmatch(r"shortened: 1 of 5 epochs on a subset of (\d+) training images \(5 of 17 batches\), for a "
                        r"first result soon after the start", first.reason), first.reason
    assert re.fullmatch(r"shortened: 2 of 5 epochs fit in the \d+:\d\d left", second.reason), second.reason
    for record, epochs, trained in ((first, 1, 5), (second, 2, steps)):
        assert record.state == "pruned" and record.epochs == record.max_epochs == epochs and record.ranks
        assert record.timings["steps"] == trained and record.timings["macs"] > 0 and record.timings["threads"] >= 1
        assert record.timings["elements"] > 0 and "augment_elements" in record.timings  # what the next plan calibrates by
    assert [c[3] for c in observer.calls if c[0] == "started"] == [1, 2]


def test_a_first_trial_beside_another_running_trains_whole_epochs(setup, digits_data, tiny_space, monkeypatch):
    """A first result on a subset is one trial's: with two workers both first trials were planned on subsets."""
    import time

    _slow_machine(monkeypatch)
    store, runner, proposal = setup
    steps = len(digits_data[0].x_train) // tiny_space.complete({})["batch_size"]
    first, beside = proposal(), proposal()  # both running, as two workers' first trials are
    now = time.monotonic()
    record = runner(deadline=now + 10 * steps * 2.5, first_result_by=now + 60).run(
        Proposal(first.number, first.params, max_epochs=5))
    assert record.reason == "shortened: 1 of 5 epochs, for a first result soon after the start"
    states = {t.number: t.state for t in store.trials.all("s")}
    assert record.timings["steps"] == steps and states[beside.number] == "running"


@pytest.mark.parametrize("least, fit, trained", [(4, 3, 0), (3, 3, 3), (1, 3, 3)])
def test_a_proposal_that_needs_more_epochs_than_fit_is_set_aside(setup, digits_data, tiny_space, monkeypatch, least,
                                                                 fit, trained):
    """A start point run again after a run cut for the first result (`Proposal.least_epochs`: its
    epochs and one more) was trained on as few epochs as that run: the same trial twice."""
    import time

    _slow_machine(monkeypatch)
    store, runner, proposal = setup
    _finished(store, 0.5)  # a ranked trial: no first-result mark
    steps = len(digits_data[0].x_train) // tiny_space.complete({})["batch_size"]
    p = proposal()
    record = runner(deadline=time.monotonic() + 10 * steps * (fit + 0.5)).run(
        Proposal(p.number, p.params, max_epochs=5, least_epochs=least))
    if trained:
        assert record.epochs == trained
        return
    assert record is None
    (trial,) = [t for t in optuna.load_study(study_name="s", storage=store.db.storage).trials if t.number == p.number]
    assert trial.user_attrs["set_aside"] == (
        "not started: a start point run again needs more than the 3 epochs of its first run; 3 fit")


def test_a_shortened_trial_that_stops_on_its_own_is_complete_with_its_own_reason(setup, digits_data, tiny_space,
                                                                                  monkeypatch):
    import time

    _slow_machine(monkeypatch)
    store, runner, proposal = setup
    _finished(store, 0.5)  # a ranked trial: the first-result rule is past
    steps = len(digits_data[0].x_train) // tiny_space.complete({})["batch_size"]
    p = proposal(kernel_initializer="zeros", batch_norm=False)  # learns nothing: stops after 3 epochs
    record = runner(deadline=time.monotonic() + 10 * steps * 4.5).run(Proposal(p.number, p.params, max_epochs=6))
    assert record.state == "complete" and record.epochs == 3 and record.max_epochs == 4
    assert record.reason.startswith("learned nothing")


def test_a_proposal_with_no_epoch_before_the_deadline_is_set_aside_untrained(setup, monkeypatch):
    import time

    _slow_machine(monkeypatch)
    store, runner, proposal = setup
    observer, p = Recording(), proposal()
    assert runner(observer=observer, deadline=time.monotonic() + 60).run(p) is None
    assert store.trials.all("s") == [] and _model_files(store) == set()
    assert observer.calls == [("started", p.number, p.params, 0)]  # the view says it was set aside


def test_a_worker_ends_after_three_proposals_in_a_row_are_set_aside(setup, monkeypatch):
    import time

    from tuner.search.engines.base import BaseEngine
    from tuner.search.loop import SET_ASIDE_IN_A_ROW, run_trials

    _slow_machine(monkeypatch)
    store, runner, proposal = setup
    forgotten = []

    class Proposing(BaseEngine):
        def ask(self, n_trials):
            return proposal()

        def set_aside(self, p):
            forgotten.append(p.number)

    run = runner(deadline=time.monotonic() + 60)
    run_trials(Proposing(run.ctx, "random", "none", 0), run, 100, run.ctx.deadline)
    assert len(forgotten) == SET_ASIDE_IN_A_ROW == 3 and store.trials.all("s") == []


@pytest.mark.parametrize("context, why", [
    ({"deadline": 0.0}, "the search's deadline (--timeout)"),  # time.monotonic() is past 0 already
    ({"trial_timeout": 0.0}, "its time cap (--trial-timeout 0 s)"),
])
def test_a_trial_past_its_time_stops_after_one_step_and_still_ranks(setup, digits_data, context, why, unplanned):
    store, runner, proposal = setup
    p = proposal()
    record = runner(**context).run(Proposal(p.number, p.params, max_epochs=3))
    steps = len(digits_data[0].x_train) // p.params["batch_size"]
    assert record.state == "pruned" and record.epochs == 1
    assert record.reason == f"stopped at {why} in epoch 1 of 3, after 1 of {steps} batches"
    assert record.best_epoch == 0 and record.value == record.val_accuracy == record.history["val_accuracy"][0]
    assert record.ranks and _model_files(store) == {p.number}  # a candidate for the ensemble
    assert store.artifacts.val_views("s", p.number) is not None


@pytest.mark.parametrize("context, collect", [({}, True), ({"deadline": 0.0}, False)])
def test_memory_is_freed_after_the_record_and_collected_only_if_a_trial_may_follow(setup, monkeypatch, context, collect,
                                                                                   unplanned):
    import tuner.training.memory as memory

    store, runner, proposal = setup
    p, calls = proposal(), []
    real = memory.free_memory

    def spy(collect: bool = True) -> None:
        calls.append((collect, store.trials.all("s")[0].state.value))  # the record as it stands then
        real(collect)

    monkeypatch.setattr(memory, "free_memory", spy)
    runner(**context).run(p)
    assert calls == [(collect, "pruned" if context else "complete")]


def test_a_diverging_trial_fails_with_its_reason_and_the_search_goes_on(setup):
    store, runner, proposal = setup
    run = runner()
    record = run.run(proposal(**DIVERGES))
    assert record.state == "failed" and record.value is None and record.val_accuracy is None
    assert record.timings["build_seconds"] > 0 and "val_loss" in record.history  # what it ran is kept
    assert record.reason.startswith("training loss became nan at epoch 1"), record.reason
    (stored,) = store.trials.all("s")
    assert (stored.state, stored.reason) == ("failed", record.reason)
    run.finish(record)
    assert run.consecutive_failures == 1


def test_ctrl_c_in_a_trial_fails_it_as_interrupted_and_goes_on_up(setup):
    store, runner, proposal = setup
    with pytest.raises(KeyboardInterrupt):
        runner(observer=Interrupting()).run(proposal())
    (stored,) = store.trials.all("s")
    assert (stored.state, stored.reason) == ("failed", "interrupted (Ctrl-C)")


def _record(state: str) -> TrialRecord:
    return TrialRecord(0, state, 0.5 if state == "complete" else None, {}, reason="boom" if state == "failed" else None)


def test_failures_in_a_row_stop_the_search_and_a_success_resets_the_count(setup):
    _, runner, _ = setup
    run = runner(max_failures=2)
    run.finish(_record("failed"))
    run.finish(_record("complete"))
    run.finish(_record("failed"))
    run.finish(_record("pruned"))  # a pruned trial is no failure
    assert run.consecutive_failures == 0
    run.finish(_record("failed"))
    with pytest.raises(SearchStopped, match=r"^2 trials failed in a row \(last: boom\); stopping"):
        run.finish(_record("failed"))


def test_a_stopping_search_fails_the_trials_its_own_processes_left_running(setup):
    store, _, _ = setup
    mine = store.trials.begin("s", {}, {"worker": this_worker()})
    other = store.trials.begin("s", {}, {"worker": {**this_worker(), "pid": os.getpid() + 1}})
    fail_own_trials(store, "s", {os.getpid()})
    by_number = {t.number: t for t in store.trials.all("s")}
    assert (by_number[mine].state, by_number[mine].reason) == ("failed", "interrupted: the search stopped before it ended")
    assert by_number[other].state == "running"
    fail_own_trials(SearchStore("postgresql://nobody@127.0.0.1:1/none", store.results_dir), "s", {os.getpid()})  # no raise



class TakenOver(QuietObserver):
    """Another worker fails the trial as stale while it trains (heartbeats missed under load)."""

    def __init__(self, store):
        self.store, self.notes = store, []

    def epoch_ended(self, number, epoch, metrics):
        assert self.store.trials.fail("s", number, "interrupted: its worker stopped sending heartbeats")

    def note(self, message):
        self.notes.append(message)


def test_a_trial_another_worker_ended_while_it_trained_is_said_in_one_line_and_the_search_goes_on(setup):
    """Once a worker wrote it failed, its trainer's result could not be written, and the trainer's
    process ended in an internal error (seen once among three workers with 1-s heartbeats)."""
    store, runner, proposal = setup
    observer = TakenOver(store)
    p = proposal()
    record = runner(observer=observer).run(p)
    said = (f"trial {p.number}: another process ended it while it trained (interrupted: its worker stopped "
            "sending heartbeats); its result is not recorded")
    assert observer.notes == [said]
    assert (record.state, record.value, record.reason) == ("failed", None, said)
    (stored,) = [t for t in store.trials.all("s") if t.number == p.number]
    assert (stored.state, stored.reason) == ("failed", "interrupted: its worker stopped sending heartbeats")
    assert runner().run(proposal()).state == "complete"  # the next trial runs and is recorded


def test_heartbeats_judge_only_other_machines_trials(digits_data, tiny_space, results, monkeypatch):
    """A live trial of this machine whose heartbeats are past the grace period (its process and
    the one judging both starved on a loaded machine: seen once among three workers on two
    cores) keeps running; a trial of another machine with heartbeats as late is failed."""
    import sqlite3

    from tuner.search.engines.optuna_engine import OptunaEngine

    monkeypatch.setenv("TUNE_HEARTBEAT_SECONDS", "1")
    store = SearchStore(None, results, heartbeat=True, create=True)
    store.open_study("s", {})
    engine = OptunaEngine(SearchContext(store, "s", tiny_space, digits_data[0], QuietObserver()), "tpe", "median", 0)
    engine.prepare(10)

    def late(*numbers: int) -> None:
        for number in numbers:
            store.db.storage.record_heartbeat(store.trials.trial_id("s", number))
        with sqlite3.connect(results / "tune.db") as db:
            db.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-60 seconds')")

    local = store.trials.begin("s", {}, {"worker": this_worker()})
    late(local)
    renew = engine._renew_local_heartbeats
    monkeypatch.setattr(engine, "_renew_local_heartbeats", lambda running: None)  # as if stalled after it
    assert engine.counts() == (0, 1)
    monkeypatch.setattr(engine, "_renew_local_heartbeats", renew)
    remote = store.trials.begin("s", {}, {"worker": {**this_worker(), "host": "another-host"}})
    late(local, remote)
    assert engine.counts() == (0, 1)  # failed trials are not finished ones
    states = {t.number: (t.state, t.reason) for t in store.trials.all("s")}
    assert states == {local: ("running", None), remote: ("failed", "interrupted: its worker stopped sending heartbeats")}


@pytest.fixture
def hangup_as_in_a_terminal():
    """SIGHUP's default action, also when the tests run under `nohup` (which ignores it)."""
    import signal

    before = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGHUP, before)


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGHUP", "SIGUSR1"])  # SIGUSR1: a worker's stop-at-once
def test_a_stop_as_a_trial_is_created_leaves_it_failed_not_running(signum, tiny_space, results, monkeypatch,
                                                                   hangup_as_in_a_terminal):
    """Optuna creates the trial (RUNNING), then the engine writes which process owns it; a search's
    end fails its own processes' trials only. A signal between the two left one RUNNING that no
    process owned (a SIGHUP test saw exit 129 with a trial still running): the two are one step now,
    and the signal is handled as it ends. The trial, made as the stop came, never runs: it is taken
    out of the study (a search stopped by Ctrl-C kept one more "interrupted" trial of no epochs)."""
    import signal

    from tuner.search.request import SearchRequest
    from tuner.search.run import run_search

    asked = optuna.study.Study.ask

    def ask_then_signal(self, *args, **kwargs):
        trial = asked(self, *args, **kwargs)
        signal.raise_signal(getattr(signal, signum))  # in the instant after the trial exists
        return trial

    monkeypatch.setattr(optuna.study.Study, "ask", ask_then_signal)
    store = SearchStore(None, results, create=True)
    request = SearchRequest(tiny_space, "study", 3, cache_dir=results / "cache", seed=0, jobs=1, isolate=False)
    with pytest.raises(KeyboardInterrupt):  # SIGTERM and SIGHUP: Terminated, one
        run_search(store, request, QuietObserver())
    assert store.trials.all("study") == []
    made = optuna.load_study(study_name="study", storage=store.db.storage).trials
    assert [(t.state, t.user_attrs.get("surplus")) for t in made] == [(optuna.trial.TrialState.FAIL, True)]


def test_a_search_asked_to_stop_starts_no_new_trial(setup, monkeypatch):
    """A first Ctrl-C stops a trial at its epoch's end; a worker between two trials then asked for
    another, which was recorded "interrupted" with no epoch (seen in a newcomer's search)."""
    from tuner import interrupts
    from tuner.search.engines.base import BaseEngine
    from tuner.search.loop import run_trials

    store, runner, proposal = setup
    asked = []

    class Proposing(BaseEngine):
        def ask(self, n_trials):
            asked.append(n_trials)
            return proposal()

    monkeypatch.setattr(interrupts, "_requested", __import__("threading").Event())
    interrupts._requested.set()  # the first Ctrl-C's flag
    run = runner()
    with pytest.raises(KeyboardInterrupt):
        run_trials(Proposing(run.ctx, "random", "none", 0), run, 5, None)
    assert asked == [] and store.trials.all("s") == []
