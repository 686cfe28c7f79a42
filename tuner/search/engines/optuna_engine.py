"""The Optuna engine: TPE, GP or random sampling, median or Hyperband pruning per epoch.

Several processes may share one study through an RDB storage. `--trials N` counts finished
(complete or pruned) trials across all of them: a worker starts a trial only while fewer than
N are finished or running, waits while the running ones could still make N, and stops when N
are finished. Heartbeats let a crashed worker's trial be marked failed, so its slot frees.
"""

from __future__ import annotations

import datetime
import time
import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from tuner import interrupts
from tuner.search.engines.base import BaseEngine
from tuner.errors import TrialFailed, TrialPruned
from tuner.space.schema import PRUNE_AFTER, BoolParam, CategoricalParam, FloatParam, IntParam, Space
from tuner.store.search_store import SearchStore, TrialRecord
from tuner.store.workers import gone, this_worker

WAIT_SECONDS = 2.0
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


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        # constant_liar: parallel workers do not all propose the same point.
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)


def make_pruner(name: str, max_epochs: int, prune_after: int = PRUNE_AFTER) -> optuna.pruners.BasePruner:
    """Steps are 0-based epochs: a trial can be stopped after `prune_after` full epochs."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=prune_after)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, prune_after), max_resource=max_epochs,
                                              reduction_factor=3)
    return optuna.pruners.NopPruner()


class _Surplus(Exception):
    """Another worker started the study's last needed trial at the same moment."""


class OptunaEngine(BaseEngine):
    name = "optuna"

    @classmethod
    def queue_start_points(cls, store: SearchStore, study_name: str, space: Space) -> None:
        if not space.start:
            return
        study = optuna.load_study(study_name=study_name, storage=store.storage)
        if not study.get_trials(deepcopy=False):
            for index, point in enumerate(space.start):
                # Optuna's own queue: the sampler sees these values and draws the parameters left out.
                study.enqueue_trial(point, user_attrs={"start_point": index}, skip_if_exists=True)
        # Processes that open a new study at the same moment each queue the points (measured: 3
        # workers, 3 of 8 runs); keep each point's first copy. This runs before any worker of
        # this process asks for a trial, and others take the lower-numbered copies first.
        kept: set[int] = set()
        for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
            index = t.user_attrs.get("start_point")
            if index in kept and t.state == TrialState.WAITING:
                store.discard_waiting(study_name, t.number)
            kept.add(index)

    def search(self, n_trials: int, timeout: float | None) -> None:
        store, study_name, training = self.ctx.store, self.ctx.study, self.ctx.space.training
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # the terminal reports failed trials
        existing = len(store.storage.get_all_trials(store.require_study(study_name), deepcopy=False))
        # Offset by the trials already there: a resumed study must not replay its first proposals.
        seed = None if self.seed is None else (self.seed + existing) % 2**32  # what numpy's generators take
        study = optuna.load_study(study_name=study_name, storage=store.storage, sampler=make_sampler(self.sampler, seed),
                                  pruner=make_pruner(self.pruner, training.max_epochs, training.epochs_before_pruning))
        deadline = None if timeout is None else time.monotonic() + timeout
        self._pending: TrialRecord | None = None
        while (deadline is None or time.monotonic() < deadline) and not self.runner.retiring:
            finished, running = self._counts(study)
            if finished >= n_trials:
                return
            if finished + running >= n_trials:  # others' trials may still make N: wait for them
                time.sleep(WAIT_SECONDS)
                interrupts.check()
                continue
            study.optimize(lambda t: self._objective(study, t, n_trials), n_trials=1,
                           catch=(TrialFailed, _Surplus), callbacks=[self._after], gc_after_trial=False)

    def _counts(self, study: optuna.Study) -> tuple[int, int]:
        """(finished, running) after failing the trials of dead workers."""
        now = datetime.datetime.now()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker = t.user_attrs.get("worker")
            if gone(worker):
                self.ctx.store.fail_trial(self.ctx.study, t.number, "interrupted: its worker process ended")
            elif worker is None and t.datetime_start and (now - t.datetime_start).total_seconds() > ORPHAN_SECONDS:
                # A worker writes `worker` right after asking; one that never did died in between.
                self.ctx.store.fail_trial(self.ctx.study, t.number, "interrupted: its worker never started it")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # heartbeats: any machine, after the grace period
        trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
        return sum(t.state in FINISHED for t in trials), sum(t.state == TrialState.RUNNING for t in trials)

    def _objective(self, study: optuna.Study, trial: optuna.Trial, n_trials: int) -> float:
        try:
            return self._run(study, trial, n_trials)
        except KeyboardInterrupt as e:  # also before the runner started: the reason is recorded
            trial.set_user_attr("reason", f"interrupted ({interrupts.cause(e)})")
            raise  # Optuna marks the trial failed, then the CLI exits with 130 (143 on SIGTERM)

    def _run(self, study: optuna.Study, trial: optuna.Trial, n_trials: int) -> float:
        trial.set_user_attr("worker", this_worker())
        before = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
        if sum(t.number < trial.number for t in before) >= n_trials:
            trial.set_user_attr("surplus", True)
            raise _Surplus()
        params = self.ctx.space.complete(suggest_params(trial, self.ctx.space))
        trial.set_user_attr("params", params)

        def report(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                raise TrialPruned(f"pruned after epoch {epoch + 1}")

        record = self.runner.run(trial.number, params, report)
        for key, value in record.user_attrs().items():
            trial.set_user_attr(key, value)
        self._pending = record
        if record.state == "pruned":
            raise optuna.TrialPruned()
        if record.state == "failed":
            raise TrialFailed(record.reason)
        return float(record.value)

    def _after(self, study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        record, self._pending = self._pending, None
        if record is not None and record.number == frozen.number:
            self.runner.finish(record)
