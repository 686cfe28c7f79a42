"""Leaderboard rows and where a trial's time went, from trial records alone."""

from __future__ import annotations

import pytest

from tuner.ui.board import describe_params, median_times, trial_times
from tuner.store import TrialRecord


def record(number: int, seconds: float, epochs: int, first: float, epoch: float, predict: float,
           state: str = "complete") -> TrialRecord:
    history = {"val_loss": [1.0] * epochs}
    timings = {"first_epoch_seconds": first, "epoch_seconds": epoch, "predict_seconds": predict}
    return TrialRecord(number, state, 0.5, {}, history=history, seconds=seconds, timings=timings)


def test_trial_time_splits_into_training_compile_validation_and_other():
    t = trial_times(record(0, seconds=20.0, epochs=10, first=5.0, epoch=1.0, predict=2.0))
    assert (t.training, t.compile, t.validation, t.other) == (10.0, 4.0, 2.0, 4.0)
    assert t.outside == 10.0  # the fixed cost: all but steady training
    assert trial_times(record(1, 5.0, 2, 1.0, 1.0, 0.1, state="pruned")) is None  # partial trials say little


def test_median_times_over_complete_trials():
    trials = [record(0, 20.0, 10, 5.0, 1.0, 2.0), record(1, 8.0, 4, 3.0, 1.0, 1.0), record(2, 12.0, 6, 2.0, 1.0, 1.0),
              record(3, 99.0, 1, 1.0, 1.0, 1.0, state="failed")]
    m = median_times(trials)
    assert m.trials == 3 and m.wall == 12.0 and m.training == 6.0 and m.compile == 2.0 and m.validation == 1.0
    assert median_times([]) is None


def test_describe_params_is_compact():
    text = describe_params({"model": "resnet", "depth": 3, "width": 64, "optimizer": "sgd", "momentum": 0.9,
                            "learning_rate": 0.4, "cutout": 8, "tta_flip": True, "weight_decay": 1e-4})
    assert text == "resnet d3 w64 sgd lr 0.4 mom 0.9 cutout 8 tta"  # weight decay only shows for adamw


@pytest.mark.parametrize("value, shown", [(0.0003, "lr 3.0e-04"), (0.05, "lr 0.05")])
def test_small_values_in_scientific_notation(value, shown):
    assert describe_params({"learning_rate": value}) == shown
