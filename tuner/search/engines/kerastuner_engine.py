"""The KerasTuner engine: RandomSearch, BayesianOptimization or Hyperband oracles propose the
parameters; the shared runner trains and records them in the study's storage. The engine drives
the oracle as KerasTuner's own `BaseTuner.search` does: create_trial, then (after the run)
update_trial and end_trial.

KerasTuner's own state (its oracle and trial files) lives under `<results>/<study>/kt/`, so
re-running the command reloads the oracle and resumes. `--trials N` counts finished trials in
the store, as with Optuna. Hyperband proposes brackets: each of its trials trains from
scratch for the bracket's epoch budget (`tuner/epochs`), with our early stopping on top, and
counts as one trial. One process per KerasTuner study (its oracle is a local file).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import keras_tuner as kt

from tuner.errors import UserError
from tuner.search.context import Proposal, SearchContext
from tuner.search.engines.base import BaseEngine
from tuner.search.engines.optuna_engine import optuna_view
from tuner.space.schema import BoolParam, CategoricalParam, FloatParam, IntParam, Space
from tuner.store import TrialRecord, TrialState
from tuner.store.workers import this_worker



def declare(hp: kt.HyperParameters, space: Space) -> dict[str, Any]:
    """Declare the space's searched parameters on `hp`; returns the active values."""
    chosen: dict[str, Any] = {}
    fixed = space.fixed()
    for name, spec in space.searched().items():
        conditions = [(k, v) for k, v in (spec.when or {}).items() if k not in fixed]
        if any(k in fixed and fixed[k] not in v for k, v in (spec.when or {}).items()):
            continue  # a fixed parent rules this parameter out for good
        with contextlib.ExitStack() as scopes:
            for parent, values in conditions:
                scopes.enter_context(hp.conditional_scope(parent, values))
            value = _declare_one(hp, name, spec)
        if value is not None and space.is_active(name, {**fixed, **chosen}):
            chosen[name] = value
    return chosen


def _declare_one(hp: kt.HyperParameters, name: str, spec: Any) -> Any:
    if isinstance(spec, IntParam):
        # KerasTuner reads `step` as a multiplier on log scale; our log ints are continuous.
        value = hp.Int(name, spec.low, spec.high, step=None if spec.log else spec.step,
                       sampling="log" if spec.log else "linear")
        # Without a step KerasTuner samples [low, high + 1) and truncates: an oracle proposing the
        # top of its range (Bayesian's optimizer does) gets high + 1 (width 17 of 4-16 ran).
        return None if value is None else min(max(value, spec.low), spec.high)
    if isinstance(spec, FloatParam):
        return hp.Float(name, spec.low, spec.high, step=spec.step, sampling="log" if spec.log else "linear")
    if isinstance(spec, CategoricalParam):
        if len({type(c) for c in spec.choices}) > 1:
            raise UserError(f"params.{name}: KerasTuner needs choices of one type (got {spec.choices})")
        return hp.Choice(name, spec.choices)
    if isinstance(spec, BoolParam):
        return hp.Boolean(name)
    raise TypeError(spec)


class SpaceHyperModel(kt.HyperModel):
    """KerasTuner's hypermodel is a function of hyperparameters: here it returns the complete
    parameter dict; the shared builder and runner do the rest."""

    def __init__(self, space: Space):
        super().__init__(name="tune_space")
        self.space = space

    def build(self, hp: kt.HyperParameters) -> dict[str, Any]:
        return self.space.complete(declare(hp, self.space))


def make_oracle(sampler: str, space: Space, n_trials: int, seed: int | None) -> kt.Oracle:
    goal = space.objective
    objective = kt.Objective(goal.metric, direction="max" if goal.maximize else "min")
    common = {"objective": objective, "seed": seed, "max_consecutive_failed_trials": 10**6}  # ours counts failures
    if sampler == "random":
        return kt.oracles.RandomSearchOracle(max_trials=None, **common)
    if sampler == "hyperband":
        # Enough iterations for any --trials; the engine stops at N finished trials.
        return kt.oracles.HyperbandOracle(max_epochs=space.training.max_epochs, factor=3,
                                          hyperband_iterations=10**6, **common)
    # KerasTuner's default of 3 random points per dimension would leave a 20-trial search random.
    initial = min(10, max(3, n_trials // 3))
    return kt.oracles.BayesianOptimizationOracle(max_trials=None, num_initial_points=initial, **common)


def start_with(oracle: kt.Oracle, space: Space) -> dict[str, int]:
    """Make the oracle's first new configurations the space's start points (KerasTuner has no
    queue for them): each replaces the named values of what the oracle proposed, so Hyperband's
    bracket bookkeeping stays intact; promotions of earlier trials are left alone."""
    propose = oracle.populate_space
    started: dict[str, int] = {}  # KerasTuner's trial id -> the start point it runs

    def populate_space(trial_id: str) -> dict[str, Any]:
        response = propose(trial_id)
        index, values = len(oracle.trials), response.get("values")
        if index >= len(space.start) or values is None or "tuner/trial_id" in values:
            return response
        started[trial_id] = index
        merged = {**values, **space.start[index]}
        chosen = space.fixed()
        for name in space.searched():  # a start value can switch a conditional parameter on or off
            if name in merged and space.is_active(name, chosen):
                chosen[name] = merged[name]
            else:
                merged.pop(name, None)
        return {**response, "values": merged}

    oracle.populate_space = populate_space  # type: ignore[method-assign]
    return started


class _Tuner(kt.engine.base_tuner.BaseTuner):
    """KerasTuner's tuner for its project folder, its saved state and the hypermodel only: the
    engine asks the oracle itself and the shared runner trains."""

    def __init__(self, ctx: SearchContext, oracle: kt.Oracle):
        with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..."
            ctx.store.artifacts.folder(ctx.study, "kt")  # KerasTuner's own folder: checked like ours
            super().__init__(oracle, SpaceHyperModel(ctx.space), directory=str(ctx.store.artifacts.study_dir(ctx.study)),
                             project_name="kt")


class KerasTunerEngine(BaseEngine):
    name = "keras-tuner"

    def prepare(self, n_trials: int) -> None:
        ctx = self.ctx
        ctx.store.trials.fail_running(ctx.study, "interrupted (its process ended before the trial did)")
        oracle = make_oracle(self.sampler, ctx.space, n_trials, self.seed)
        self.start_points = start_with(oracle, ctx.space)
        self.tuner = _Tuner(ctx, oracle)
        self.tuner.oracle.max_trials = None  # a reloaded oracle may carry an earlier run's stop
        self.tuner.oracle.verbose = 0  # our terminal view, not KerasTuner's prints

    def ask(self, n_trials: int) -> Proposal | None:
        ctx, status = self.ctx, kt.engine.trial.TrialStatus
        trial = self.tuner.oracle.create_trial(self.tuner.tuner_id)
        if trial.status == status.STOPPED:  # the oracle has nothing left (a small space, all tried)
            self.exhausted = True
            return None
        if trial.status == status.IDLE:  # the oracle is still deciding: ask again
            return None
        params = self.tuner.hypermodel.build(trial.hyperparameters)
        attrs = {"engine_trial": trial.trial_id, "worker": this_worker()}
        if trial.trial_id in self.start_points:
            attrs["start_point"] = self.start_points[trial.trial_id]
        number = ctx.store.trials.begin(ctx.study, params, attrs, optuna_view(params, ctx.space))
        return Proposal(number, params, max_epochs=trial.hyperparameters.values.get("tuner/epochs"),
                        engine_state=trial)

    def set_aside(self, proposal: Proposal) -> None:
        """Ended as failed in the oracle, which scores no failed trial (INVALID would retry it)."""
        trial = proposal.engine_state
        trial.status, trial.message = kt.engine.trial.TrialStatus.FAILED, "set aside: no epoch fit before the deadline"
        self.tuner.on_trial_end(trial)

    def tell(self, proposal: Proposal, record: TrialRecord) -> None:
        trial, status = proposal.engine_state, kt.engine.trial.TrialStatus
        if record.state is TrialState.FAILED or record.value is None:
            trial.status, trial.message = status.FAILED, record.reason
        else:
            self.tuner.oracle.update_trial(trial.trial_id, {self.ctx.space.objective.metric: float(record.value)})
            trial.status = status.COMPLETED
        self.tuner.on_trial_end(trial)  # the oracle ends the trial, then saves itself and the tuner
