"""`Trials`: a study's trial records in Optuna's storage, read as `TrialRecord`s and written
by the search's runner (the one place a result is recorded, whichever engine proposed it)."""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

from tuner.space.objective import Objective, objective_of
from tuner.space.params import PARAMETERS, kind_problem
from tuner.store import migrate, stored
from tuner.store.database import Database
from tuner.errors import TrialTakenOver
from tuner.store.records import StudyInfo, TrialRecord, TrialState
from tuner.store.studies import Studies
from tuner.store.workers import gone, this_worker

# Optuna fails a trial whose heartbeats stopped without saying so; such a trial had started.
_NO_HEARTBEAT = "interrupted: its worker stopped sending heartbeats"


def _record(frozen: Any, study: str, objective: Objective) -> TrialRecord:
    where = f"study {study}, trial {frozen.number}"
    attrs = stored.checked(frozen.user_attrs, stored.TRIAL_KINDS, where)
    stored.checked({"value": frozen.value}, stored.VALUE_KINDS, where)
    state = TrialState.of_optuna(frozen.state.name)
    _check_consistent(state, frozen.value, attrs, where, objective)
    return TrialRecord(
        number=frozen.number, state=state, value=frozen.value, params=migrate.params(attrs.get("params", dict(frozen.params))),
        history=attrs.get("history", {}), best_epoch=attrs.get("best_epoch"), val_loss=attrs.get("val_loss"),
        val_accuracy=migrate.val_accuracy(attrs, frozen.value),
        val_class_accuracy=attrs.get("val_class_accuracy"), val_predicted=attrs.get("val_predicted"),
        reason=attrs.get("reason") or (_NO_HEARTBEAT if state is TrialState.FAILED and "worker" in attrs else None),
        seconds=attrs.get("seconds"),
        timings=attrs.get("timings", {}), seed=attrs.get("seed"), max_epochs=attrs.get("max_epochs"),
        started=frozen.datetime_start, process_ended=state is TrialState.RUNNING and gone(attrs.get("worker")))


def _check_consistent(state: TrialState, value: float | None, attrs: dict[str, Any], where: str,
                      objective: Objective) -> None:
    """What each key's kind cannot say: Optuna never completes a trial without its value, the
    value is one the study's objective can take, each parameter is of its vocabulary's kind, and
    the best epoch is one of those in the history."""
    history, best = attrs.get("history") or {}, attrs.get("best_epoch")
    epochs = len(next(iter(history.values()), []))
    # Kinds only: a value a rule of today refuses may be one an older tune allowed.
    kinds = [f"its parameter {name}: {why}" for name, v in (attrs.get("params") or {}).items()
             if name in PARAMETERS and (why := kind_problem(name, v)) is not None]
    if state is TrialState.COMPLETE and value is None:
        problem = "it is complete but has no value"
    elif value is not None and objective.out_of_range(value):
        problem = f"its value {value:g} is not one its objective ({objective.name}) can take"
    elif kinds:
        problem = kinds[0]
    elif best is not None and history and best >= epochs:
        problem = f"its best epoch ({best}) is past its history's {epochs} epochs"
    else:
        return
    raise stored.DamagedRecord(f"{where}: {problem}; the database was written by another program or is damaged")


def _unique_numbers(records: list[TrialRecord], study: str) -> list[TrialRecord]:
    numbers = [r.number for r in records]
    if len(set(numbers)) < len(numbers):
        twice = sorted({n for n in numbers if numbers.count(n) > 1})
        raise stored.DamagedRecord(f"study {study}'s trials: more than one is numbered {twice[0]}; the database "
                                   f"was written by another program or is damaged")
    return records


def counts_of(trials: list[TrialRecord]) -> dict[str, int]:
    """How many trials are in each state, by the state's value."""
    return {s.value: sum(t.state is s for t in trials) for s in TrialState if s is not TrialState.WAITING}


def best_of(trials: list[TrialRecord], k: int, objective: Objective) -> list[TrialRecord]:
    """The best k ranking trials (`TrialRecord.ranks`): best objective value, then lowest loss,
    then earliest."""
    done = [t for t in trials if t.ranks]
    return sorted(done, key=lambda t: (objective.rank_key(t.value), t.val_loss if t.val_loss is not None else 0,
                                       t.number))[:k]


def models_to_keep(trials: list[TrialRecord], k: int, objective: Objective) -> set[int]:
    """Whose model files stay: the best k complete trials, and every running one (another
    worker saves its model before it records its result)."""
    running = {t.number for t in trials if t.state is TrialState.RUNNING}
    return {t.number for t in best_of(trials, k, objective)} | running


class Trials:
    def __init__(self, db: Database, studies: Studies):
        self.db = db
        self.studies = studies

    def trial_id(self, name: str, number: int) -> int:
        return self.db.storage.get_trial_id_from_study_id_trial_number(self.studies.require(name), number)

    # --- reading ---------------------------------------------------------------------------
    def all(self, name: str) -> list[TrialRecord]:
        study_id = self.studies.require(name)
        with stored.reading(f"study {name}'s trials"):
            trials = self.db.storage.get_all_trials(study_id, deepcopy=False)
        # Surplus and set-aside trials never ran; waiting ones (queued start points) have not run yet.
        objective = self.objective(name)
        return _unique_numbers([_record(t, name, objective) for t in trials
                                if not (t.user_attrs.get("surplus") or t.user_attrs.get("set_aside"))
                                and t.state.name != "WAITING"], name)

    def count_finished(self, name: str) -> int:
        return sum(t.finished for t in self.all(name))

    def objective(self, name: str) -> Objective:
        return objective_of(self.studies.meta(name).get("space"))

    def top(self, name: str, k: int) -> list[TrialRecord]:
        return best_of(self.all(name), k, self.objective(name))

    def importances(self, name: str) -> dict[str, float]:
        """Optuna's hyperparameter importances of the study by its PED-ANOVA evaluator (what
        optuna-dashboard shows; fANOVA took 3-5 s on 200 trials), most important first; empty while
        too few trials rank or nothing varies."""
        import optuna
        from optuna.importance import PedAnovaImportanceEvaluator

        study = self.studies.optuna_study(name)
        try:
            with warnings.catch_warnings():  # "too few trials for the quantile": said by the empty figure
                warnings.simplefilter("ignore")
                return dict(optuna.importance.get_param_importances(study, evaluator=PedAnovaImportanceEvaluator()))
        except (ValueError, RuntimeError):  # too few trials, or one value of every parameter
            return {}

    def start_point(self, name: str, number: int) -> int | None:
        """Which of the space's start points this trial runs (its recorded origin), or None."""
        index = self.db.storage.get_trial(self.trial_id(name, number)).user_attrs.get("start_point")
        return index if isinstance(index, int) else None

    def summary(self, name: str) -> StudyInfo:
        trials, meta = self.all(name), self.studies.meta(name)
        best = best_of(trials, 1, objective_of(meta.get("space")))
        return StudyInfo(name, meta, counts_of(trials), best[0].value if best else None)

    # --- writing ---------------------------------------------------------------------------
    def begin(self, name: str, params: dict[str, Any], attrs: dict[str, Any] | None = None,
              searched: tuple[dict[str, Any], dict[str, Any]] | None = None) -> int:
        """Reserve a trial number for a trial proposed outside Optuna (KerasTuner); `searched`:
        its searched values and their Optuna distributions, for Optuna's own tools."""
        from optuna.trial import FrozenTrial
        from optuna.trial import TrialState as OptunaState

        values, distributions = searched or ({}, {})
        frozen = FrozenTrial(number=-1, state=OptunaState.RUNNING, value=None, datetime_start=dt.datetime.now(),
                             datetime_complete=None, params=values, distributions=distributions,
                             user_attrs={"params": params, **(attrs or {})}, system_attrs={}, intermediate_values={},
                             trial_id=-1)
        trial_id = self.db.storage.create_new_trial(self.studies.require(name), template_trial=frozen)
        return self.db.storage.get_trial_number_from_id(trial_id)

    def finish(self, name: str, record: TrialRecord) -> None:
        """Write a finished trial's record over its reserved number; it is final after this.
        Raises TrialTakenOver when another process ended it first."""
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            self._write_finished(name, record)
        except UpdateFinishedTrialError:
            ended = _record(self.db.storage.get_trial(self.trial_id(name, record.number)), name, self.objective(name))
            raise TrialTakenOver(f"trial {record.number}: another process ended it while it trained "
                                 f"({ended.reason or ended.state.value}); its result is not recorded") from None

    def _write_finished(self, name: str, record: TrialRecord) -> None:
        from optuna.trial import TrialState as OptunaState

        storage, trial_id = self.db.storage, self.trial_id(name, record.number)
        for key, value in record.user_attrs().items():
            storage.set_trial_user_attr(trial_id, key, value)
        for step, value in enumerate(record.history.get(self.objective(name).metric, [])):
            storage.set_trial_intermediate_value(trial_id, step, value)
        state = OptunaState[record.state.optuna_name()]
        values = None if record.state is TrialState.FAILED or record.value is None else [record.value]
        storage.set_trial_state_values(trial_id, state, values)

    def add(self, name: str, record: TrialRecord) -> int:
        """Record a finished trial in one step; returns its number."""
        from dataclasses import replace

        number = self.begin(name, record.params)
        self.finish(name, replace(record, number=number))
        return number

    def fail(self, name: str, number: int, reason: str) -> bool:
        """Mark a RUNNING trial failed (its worker is gone); False if it finished meanwhile."""
        return self._end_running(name, number, "reason", reason)

    def set_aside(self, name: str, number: int, reason: str) -> None:
        """Take a proposal that was not trained out of the study (`tuner.search.budget`: not one of
        its epochs fit before the deadline); the reason stays on it."""
        self._end_running(name, number, "set_aside", reason)

    def discard(self, name: str, number: int) -> None:
        """Take a trial that never ran out of the study: a queued duplicate, or one asked for after
        another worker started the last one needed."""
        self._end_running(name, number, "surplus", True)

    def _end_running(self, name: str, number: int, key: str, value: Any) -> bool:
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState as OptunaState

        trial_id = self.trial_id(name, number)
        try:
            self.db.storage.set_trial_user_attr(trial_id, key, value)
            self.db.storage.set_trial_state_values(trial_id, OptunaState.FAIL)
        except (UpdateFinishedTrialError, RuntimeError):  # another process finished or failed it first
            return False
        return True

    def fail_running_of(self, name: str, pids: set[int], reason: str) -> int:
        """Mark failed the RUNNING trials that these processes of this machine started: no way
        out of a search (a stop, an error, a signal) leaves its own trials running."""
        from optuna.trial import TrialState as OptunaState

        here = this_worker()
        study_id = self.studies.id(name)
        if study_id is None:
            return 0
        failed = 0
        for t in self.db.storage.get_all_trials(study_id, deepcopy=False, states=(OptunaState.RUNNING,)):
            worker = t.user_attrs.get("worker") or {}
            if (worker.get("host"), worker.get("boot")) == (here["host"], here["boot"]) and worker.get("pid") in pids:
                failed += self.fail(name, t.number, reason)
        return failed

    def fail_running(self, name: str, reason: str) -> int:
        """Mark every RUNNING trial of the study failed (for engines that run in one process)."""
        return sum(self.fail(name, t.number, reason) for t in self.all(name) if t.state is TrialState.RUNNING)
