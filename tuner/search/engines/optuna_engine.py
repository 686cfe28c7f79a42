"""The Optuna engine: TPE, GP or random sampling, median or Hyperband pruning per epoch.

Proposals come from `study.ask()` (Optuna's own queue first: the space's start points); the
runner records each result in the same storage, which is all the samplers read. Several
processes may share one study through an RDB storage; heartbeats let a crashed worker's trial
be marked failed on any machine, and on its own machine a dead pid fails it at once.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import warnings
from typing import Any, Iterator

import optuna
from optuna.trial import TrialState

from tuner import interrupts
from tuner.search.budget import FIRST_RESULT, SECOND_RESULT, on_subset
from tuner.search.context import Proposal
from tuner.search.engines.base import BaseEngine
from tuner.space.schema import PRUNE_AFTER, BoolParam, CategoricalParam, FloatParam, IntParam, Space
from tuner.store import SearchStore, TrialRecord
from tuner.store import TrialState as StoreState
from tuner.store.workers import elsewhere, gone, here, this_worker

ORPHAN_SECONDS = 60.0
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def suggest_params(trial: optuna.trial.BaseTrial, space: Space) -> dict[str, Any]:
    """The searched values for one trial (inactive conditional parameters are left out)."""
    chosen: dict[str, Any] = {}
    fixed = space.fixed()
    for name, spec in space.searched().items():
        if not space.is_active(name, {**fixed, **chosen}):
            continue
        if isinstance(spec, IntParam):
            chosen[name] = trial.suggest_int(name, spec.low, spec.high, step=spec.step, log=spec.log)
        elif isinstance(spec, FloatParam):
            chosen[name] = trial.suggest_float(name, spec.low, spec.high, step=spec.step, log=spec.log)
        elif isinstance(spec, CategoricalParam):
            chosen[name] = trial.suggest_categorical(name, spec.choices)
        elif isinstance(spec, BoolParam):
            chosen[name] = trial.suggest_categorical(name, [False, True])
    return chosen


def optuna_view(params: dict[str, Any], space: Space) -> tuple[dict[str, Any], dict[str, Any]]:
    """The searched values of a trial another engine proposed, with their Optuna distributions:
    written into its trial, Optuna's tools (best_params, importances, the dashboard's plots)
    read a KerasTuner-engine study as they read an Optuna one."""
    trial = optuna.trial.FixedTrial(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a value off Optuna's grid is still the value that ran
        suggest_params(trial, space)
    return trial.params, trial.distributions


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        # constant_liar: parallel workers do not all propose the same point.
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)


MEDIAN_AT_A_STEP = 2  # complete trials that reached an epoch before it is judged: the median of one is that trial


def median_startup(n_trials: int) -> int:
    """Complete trials before the median pruner judges: a tenth of the search's, 2 to 5 (Optuna's
    default). With five, a 20-trial digits search trained its four first random draws their full
    15 epochs, to 52-91% validation accuracy: 19 s of its 98 s of trials (2026-12-07). With two
    and a step judged on one trial, the start point's curve alone pruned 18 of 20."""
    return min(max(n_trials // 10, 2), 5)


def make_pruner(name: str, max_epochs: int, prune_after: int = PRUNE_AFTER,
                n_trials: int = 50) -> optuna.pruners.BasePruner:
    """Steps are 0-based epochs: a trial can be stopped after `prune_after` full epochs."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=median_startup(n_trials), n_warmup_steps=prune_after,
                                           n_min_trials=MEDIAN_AT_A_STEP)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, prune_after), max_resource=max_epochs,
                                              reduction_factor=3)
    return optuna.pruners.NopPruner()


class OptunaEngine(BaseEngine):
    name = "optuna"

    @classmethod
    def queue_start_points(cls, store: SearchStore, study_name: str, space: Space) -> None:
        if not space.start:
            return
        study = optuna.load_study(study_name=study_name, storage=store.db.storage)
        if not study.get_trials(deepcopy=False):
            for index, point in enumerate(space.start):
                # Optuna's own queue: the sampler sees these values and draws the parameters left out.
                study.enqueue_trial(point, user_attrs={"start_point": index}, skip_if_exists=True)
        # Processes that open a new study at the same moment may each queue the points (3 workers
        # did in 3 of 8 runs); keep each point's first copy. This runs before any worker of
        # this process asks for a trial, and others take the lower-numbered copies first.
        kept: set[int] = set()
        for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
            index = t.user_attrs.get("start_point")
            if index in kept and t.state == TrialState.WAITING and not t.user_attrs.get("rerun"):
                store.trials.discard(study_name, t.number)
            kept.add(index)

    def prepare(self, n_trials: int) -> None:
        store, study_name, training = self.ctx.store, self.ctx.study, self.ctx.space.training
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # the terminal reports failed trials
        existing = len(store.db.storage.get_all_trials(store.studies.require(study_name), deepcopy=False))
        # Offset by the trials already there: a resumed study must not replay its first proposals.
        seed = None if self.seed is None else (self.seed + existing) % 2**32  # what numpy's generators take
        self.study = optuna.load_study(
            study_name=study_name, storage=store.db.storage, sampler=make_sampler(self.sampler, seed),
            pruner=make_pruner(self.pruner, training.max_epochs, training.epochs_before_pruning, n_trials))

    def counts(self) -> tuple[int, int]:
        """(finished, running) after failing the trials of dead workers."""
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        self._fail_gone(running)
        self._renew_local_heartbeats(running)
        if any(elsewhere(t.user_attrs.get("worker")) for t in running):
            # Only then: a renewal and this check are two writes apart, and a process starved
            # between them (SQLite's lock, two cores) would fail a live trial of this machine.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)  # after the grace period
        states = self.study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
        return sum(t.state in FINISHED for t in states), sum(t.state == TrialState.RUNNING for t in states)

    def _fail_gone(self, running: list[Any]) -> None:
        """Fail the running trials of this machine's workers that ended, or never started them."""
        trials, now = self.ctx.store.trials, datetime.datetime.now()
        for t in running:
            worker = t.user_attrs.get("worker")
            if gone(worker):
                trials.fail(self.ctx.study, t.number, "interrupted: its worker process ended")
            elif worker is None and t.datetime_start and (now - t.datetime_start).total_seconds() > ORPHAN_SECONDS:
                # A worker writes `worker` right after asking; one that never did died in between.
                trials.fail(self.ctx.study, t.number, "interrupted: its worker never started it")

    def _renew_local_heartbeats(self, running: list[Any]) -> None:
        """Heartbeats judge workers on other machines only: here the pid is certain, and a live
        worker starved of CPU for the grace period (many workers on two cores) is slow, not dead."""
        storage = self.ctx.store.db.storage
        if not storage.get_heartbeat_interval():
            return
        for t in running:
            worker = t.user_attrs.get("worker")
            if here(worker) and not gone(worker):
                storage.record_heartbeat(self.ctx.store.trials.trial_id(self.ctx.study, t.number))

    def ask(self, n_trials: int) -> Proposal | None:
        # A stop between the two would leave a RUNNING trial no process owns: the search's end fails
        # only its own processes' trials (seen in a SIGHUP test: exit 129, a trial still running).
        with interrupts.holding_signals() as held, warnings.catch_warnings():
            # Optuna's note that heartbeats are for `optimize`: `running` keeps them, as it does.
            warnings.filterwarnings("ignore", message="Heartbeat of storage", category=UserWarning)
            trial = self.study.ask()
            trial.set_user_attr("worker", this_worker())
            if held or interrupts.requested():  # a stop came as it was made: it never runs, so it leaves the study
                self.ctx.store.trials.discard(self.ctx.study, trial.number)
                return None
        before = self.study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
        if sum(t.number < trial.number for t in before) >= n_trials:
            # Another worker started the study's last needed trial at the same moment.
            self.ctx.store.trials.discard(self.ctx.study, trial.number)
            return None
        params = self.ctx.space.complete(suggest_params(trial, self.ctx.space))
        trial.set_user_attr("params", params)
        start_point = trial.user_attrs.get("start_point") is not None

        def should_prune(epoch: int, value: float) -> bool:
            trial.report(value, epoch)
            # A start point, the space's known-good configuration, trains its whole schedule: its
            # regularized early epochs lag plain ones (a 30-minute Fashion-MNIST search's Hyperband
            # pruned its augmented start point at epoch 3, BENCHMARKS.md).
            return not start_point and trial.should_prune()

        return Proposal(trial.number, params, should_prune=should_prune, engine_state=trial,
                        least_epochs=int(trial.user_attrs.get("least_epochs", 1)), rerun=bool(trial.user_attrs.get("rerun")),
                        after_first_result=bool(trial.user_attrs.get("after_first_result")))

    def tell(self, proposal: Proposal, record: TrialRecord) -> None:
        """A start point cut short for the first result runs again, with every value it drew,
        after the space's other start points (Optuna's queue is first in, first out): the space's
        known-good configuration is worth its whole schedule. That run may itself be cut for a
        second result; then it runs once more (`tuner.search.budget`)."""
        index = self.ctx.store.trials.start_point(self.ctx.study, proposal.number)
        reason = record.reason or ""
        if index is None or record.state is not StoreState.PRUNED or not (FIRST_RESULT in reason or SECOND_RESULT in reason):
            return
        # Worth running again only on more than the cut run trained (a subset's one epoch: one whole one).
        least = record.epochs + (0 if on_subset(reason) else 1)
        self.study.enqueue_trial(proposal.engine_state.params,
                                 user_attrs={"start_point": index, "rerun": True, "least_epochs": least,
                                             "after_first_result": FIRST_RESULT in reason})

    @contextlib.contextmanager
    def running(self, proposal: Proposal) -> Iterator[None]:
        """Heartbeats while the trial trains, as Optuna's own optimize loop keeps them."""
        storage = self.ctx.store.db.storage
        interval = storage.get_heartbeat_interval()
        if not interval:
            yield
            return
        trial_id = self.ctx.store.trials.trial_id(self.ctx.study, proposal.number)
        stop = threading.Event()

        def beat() -> None:
            while True:
                storage.record_heartbeat(trial_id)
                if stop.wait(interval):
                    return

        thread = threading.Thread(target=beat, daemon=True, name=f"heartbeat-{proposal.number}")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
