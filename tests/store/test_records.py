"""Typed records: trial states both ways, evaluations through the store and back (older formats
too), the format's migration helpers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.space.objective import OBJECTIVES
from tuner.store import Evaluation, FileEntry, SearchStore, Selection, TrialRecord, TrialState, migrate

STATES = [("COMPLETE", TrialState.COMPLETE, True), ("PRUNED", TrialState.PRUNED, True),
          ("FAIL", TrialState.FAILED, False), ("RUNNING", TrialState.RUNNING, False),
          ("WAITING", TrialState.WAITING, False)]


@pytest.mark.parametrize("optuna_name, state, finished", STATES)
def test_each_optuna_state_is_one_trial_state_and_back(optuna_name, state, finished):
    import optuna

    assert optuna_name in optuna.trial.TrialState.__members__  # a name Optuna has
    assert TrialState.of_optuna(optuna_name) is state and state.optuna_name() == optuna_name
    assert state.finished is finished and TrialRecord(0, state.value, None, {}).finished is finished


def test_a_state_that_is_not_one_is_refused():
    with pytest.raises(ValueError):
        TrialRecord(0, "done", None, {})
    with pytest.raises(KeyError):
        TrialState.of_optuna("COMPLETED")


def test_a_record_writes_only_what_it_holds():
    record = TrialRecord(3, "complete", 0.5, {"depth": 1}, history={"val_loss": [1.0, 0.5]}, best_epoch=1, seed=7)
    assert record.user_attrs() == {"params": {"depth": 1}, "history": {"val_loss": [1.0, 0.5]}, "best_epoch": 1,
                                   "seed": 7}
    assert record.epochs == 2 and TrialRecord(0, "failed", None, {}).epochs == 0


def _selection(members=None) -> Selection:
    members = members or {3: 0.75, 12: 0.25}
    return Selection(members=members, metric="log_loss", val_accuracy=0.9, val_loss=0.3, best_trial=3,
                     best_val_accuracy=0.88, best_val_loss=0.35, candidates=sorted(members),
                     temperatures={n: 1.5 for n in members}, flips={n: n % 2 == 0 for n in members})


def _evaluation(selection: Selection, **kw) -> Evaluation:
    test = {"ensemble": {"accuracy": 0.91, "loss": 0.3, "per_class_accuracy": {"cat": 0.9, "dog": 0.92}},
            "best": {"accuracy": 0.89, "loss": 0.33, "per_class_accuracy": {"cat": 0.88, "dog": 0.9}}}
    return Evaluation("2026-12-01T10:00:00+00:00", selection, 20, 100, test,
                      {"model.keras": FileEntry("ensemble/x/model.keras", "ab" * 32)}, **kw)


def test_an_evaluation_comes_back_from_the_store_as_it_went_in(tmp_path: Path):
    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", {})
    first = _evaluation(_selection(), class_names=["cat", "dog"])
    second = _evaluation(_selection({5: 1.0}), refit={"models": {"5": "refit/trial_5.keras"}})
    store.evaluations.add("s", first)
    store.evaluations.add("s", second)
    assert store.evaluations.all("s") == [first, second] and store.evaluations.latest("s") == second
    assert SearchStore(None, tmp_path).evaluations.latest("s").selection.members == {5: 1.0}  # int keys again
    assert first.gain == pytest.approx(0.02) and first.refit_gain is None and first.final == "ensemble"


def test_an_evaluation_of_the_first_format_reads_as_the_current_one():
    data = json.loads(json.dumps(_evaluation(_selection()).to_json()))
    for key in ("temperatures", "flips"):
        del data["selection"][key]
    del data["files"], data["class_names"]
    old = Evaluation.from_json(data)
    assert old.selection.temperatures == {} and old.selection.flips == {} and old.files == {}
    assert old.class_names is None and old.selection.members == {3: 0.75, 12: 0.25}


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.dictionaries(st.integers(0, 10**6), st.floats(0.01, 1.0), min_size=1, max_size=6),
       st.lists(st.text(min_size=1, max_size=8), min_size=2, max_size=5) | st.none())
def test_any_evaluation_survives_json(members, class_names):
    evaluation = _evaluation(_selection(members), class_names=class_names)
    assert Evaluation.from_json(json.loads(json.dumps(evaluation.to_json()))) == evaluation


@pytest.mark.parametrize("stored, trained_on_flips, shape, mirror_average", [
    (np.zeros((5, 3)), True, (1, 5, 3), True),  # format 1: one (n, classes) array, the mirror average
    (np.zeros((5, 3)), False, (1, 5, 3), False),
    (np.zeros((2, 5, 3)), True, (2, 5, 3), False),  # format 2: both views of a flip-trained trial
])
def test_stored_predictions_read_as_views(stored, trained_on_flips, shape, mirror_average):
    views = migrate.views(stored)
    assert views.shape == shape and migrate.mirror_average_only(views, trained_on_flips) is mirror_average


def test_what_an_older_trial_lacks_is_said_or_filled_in():
    assert migrate.cannot_retrain(None, 3) and migrate.cannot_retrain(7, None)
    assert migrate.cannot_retrain(7, 0) is None
    assert migrate.epoch_budget(None, 12) == 12 and migrate.epoch_budget(4, 12) == 4
    assert migrate.version({}) == 1 and migrate.version({"format": migrate.FORMAT}) == migrate.FORMAT == 2


def test_each_read_of_the_test_split_is_counted_and_an_older_study_counts_its_evaluations(tmp_path: Path):
    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", {})
    assert store.evaluations.test_reads("s") == 0
    store.evaluations.add("s", _evaluation(_selection()))  # recorded before reads were counted
    assert store.evaluations.test_reads("s") == 1
    assert store.evaluations.count_test_read("s") == 2 == SearchStore(None, tmp_path).evaluations.test_reads("s")
    assert store.evaluations.count_test_read("s") == 3  # a read with no record (a crash) still counts


@pytest.mark.parametrize("state, value, best_epoch, ranks", [
    ("complete", 0.9, 3, True),
    ("complete", None, None, False),  # no value: nothing to rank by
    ("pruned", 0.8, None, False),  # the pruner's: stopped as unpromising, no best epoch
    ("pruned", 0.8, 2, True),  # cut short by a deadline, with its best epoch's figures
    ("failed", None, None, False),
    ("running", None, None, False),
])
def test_which_trials_rank(state, value, best_epoch, ranks):
    assert TrialRecord(0, state, value, {}, best_epoch=best_epoch).ranks is ranks


_SOUND = {"macs": 1.0e6, "elements": 2.0e4, "batch_size": 64.0, "steps": 10.0, "epoch_seconds": 1.5}


@pytest.mark.parametrize("bad", ["x", None, float("nan"), float("inf"), 1e308, -1.0, True, [1.0], {"a": 1.0}])
def test_a_stored_timing_that_is_not_a_finite_count_is_left_out(bad):
    """Timings come from the study's database, which another program (or a damaged file) may have
    written: one unusable value must not fail every later trial's estimate."""
    record = TrialRecord(0, "complete", 0.5, {}, timings={**_SOUND, "elements": bad})
    assert record.timings == {k: v for k, v in _SOUND.items() if k != "elements"}


_JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=4),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                     max_leaves=8)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(timings=_JSON, epochs=st.integers(-1, 30))
def test_any_stored_timings_read_as_finite_counts_and_never_fail_an_estimate(timings, epochs):
    from tuner.training.cost import PRIOR_CPU, Cost, Measured, calibrate

    record = TrialRecord(0, "complete", 0.5, {}, timings=timings)
    assert isinstance(record.timings, dict)
    assert all(isinstance(k, str) and type(v) is float and 0 <= v < float("inf") for k, v in record.timings.items())
    assert sum(record.timings.values()) * 1000 < float("inf")  # sums and medians of them stay numbers
    measured = Measured.of(record.timings, epochs)
    proposal = Cost(1.0e6, 1000, 100, 64, 500, 2.0e4)
    calibration = calibrate(PRIOR_CPU, [measured] if measured else [], proposal.batch_size * proposal.work)
    assert calibration.epoch_seconds(proposal) >= 0  # an estimate, never an error


@settings(max_examples=200, deadline=None, derandomize=True)
@given(timings=st.fixed_dictionaries({k: st.floats(0, 1e308) for k in
                                      ("macs", "elements", "batch_size", "steps", "epoch_seconds", "total_seconds", "train_seconds")}),
       epochs=st.integers(1, 30))
def test_any_sound_looking_timings_give_an_estimate_and_never_an_error(timings, epochs):
    test_any_stored_timings_read_as_finite_counts_and_never_fail_an_estimate.hypothesis.inner_test(timings, epochs)


def _frozen(state: str, value, attrs: dict):
    import datetime as dt

    import optuna

    return optuna.trial.FrozenTrial(number=0, state=optuna.trial.TrialState[state], value=value,
                                    datetime_start=dt.datetime(2026, 1, 1), datetime_complete=None, params={},
                                    distributions={}, user_attrs=attrs, system_attrs={}, intermediate_values={},
                                    trial_id=0)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(lengths=st.dictionaries(st.sampled_from(["loss", "val_loss", "val_accuracy", "lr"]), st.integers(0, 4),
                               max_size=4),
       best_epoch=st.none() | st.integers(0, 5), state=st.sampled_from(["COMPLETE", "PRUNED", "FAIL"]),
       value=st.none() | st.floats(-2, 3, allow_nan=False), objective=st.sampled_from(sorted(OBJECTIVES)))
def test_a_stored_trial_reads_as_one_whose_parts_agree_or_is_one_damaged_record(lengths, best_epoch, state, value,
                                                                                objective):
    """Each key of its own kind is not enough: the report draws every history list against one
    axis of epochs, the export takes the best epoch's weights, the board ranks by the value (and
    `best` printed an accuracy of 500%)."""
    from tuner.store.stored import DamagedRecord
    from tuner.store.trials import _record

    attrs = {"history": {k: [0.5] * n for k, n in lengths.items()}, "best_epoch": best_epoch}
    objective = OBJECTIVES[objective]
    try:
        record = _record(_frozen(state, value, attrs), "s", objective)
    except DamagedRecord as e:
        assert str(e).startswith("study s, trial 0: ") and "damaged" in str(e)
        return
    epochs = {len(v) for v in record.history.values()}
    assert len(epochs) <= 1
    assert best_epoch is None or not record.history or best_epoch < epochs.pop()
    assert state != "COMPLETE" or record.value is not None
    assert record.value is None or 0 <= record.value <= (1 if objective.maximize else math.inf)
