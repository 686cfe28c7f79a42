"""`select` on a study built from records (no training): the candidates and the best trial
follow the space's objective, `--metric auto` picks the loss that matches it, and the figures
it reports are those of the predictions it was given (checked against scikit-learn)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as sk

from tuner.ensemble.selection import METRICS, greedy_metric, select
from tuner.errors import UserError
from tuner.space.objective import OBJECTIVES
from tuner.store import SearchStore, TrialRecord

Y = np.array([0] * 16 + [1] * 3 + [2])  # imbalanced validation labels: 16, 3, 1


def _probs(predicted: list[int], confidence: float = 0.8) -> np.ndarray:
    probs = np.full((len(predicted), 3), (1 - confidence) / 2)
    probs[np.arange(len(predicted)), predicted] = confidence
    return probs


MAJORITY = _probs([0] * 20)  # 80% accuracy, balanced accuracy 1/3
EVEN = _probs([0] * 12 + [1] * 4 + [1] * 3 + [2], 0.9)  # 75% accuracy, balanced accuracy 0.75, surer


def _study(tmp_path: Path, objective: str) -> SearchStore:
    store = SearchStore(None, tmp_path, create=True)
    training = {} if objective == "accuracy" else {"objective": objective}
    store.open_study("s", {"space": {"training": training, "params": {}}})
    store.artifacts.save_val_labels("s", Y)
    for probs in (MAJORITY, EVEN):
        predicted = probs.argmax(1)
        value = {"accuracy": sk.accuracy_score(Y, predicted), "log_loss": sk.log_loss(Y, probs, labels=[0, 1, 2]),
                 "balanced_accuracy": sk.balanced_accuracy_score(Y, predicted)}[objective]
        record = TrialRecord(-1, "complete", float(value), {}, history={"val_loss": [1.0]}, best_epoch=0, val_loss=1.0)
        number = store.trials.add("s", record)
        store.artifacts.save_trial_files("s", TrialRecord(number, "complete", float(value), {}), probs[None].astype("float32"))
        (store.artifacts.trial_dir("s", number) / "model.keras").write_bytes(b"a model file")
    return store


@pytest.mark.parametrize("objective, best, metric", [
    ("accuracy", 0, "log_loss"),  # the majority-only trial has the higher accuracy
    ("balanced_accuracy", 1, "balanced_log_loss"),  # the trial that predicts every class
])
def test_the_best_trial_and_the_greedy_loss_follow_the_objective(tmp_path, objective, best, metric):
    store = _study(tmp_path, objective)
    selection = select(store, "s", top=2, size=5)
    assert selection.best_trial == best and selection.metric == metric and selection.candidates == [0, 1]
    chosen = {0: MAJORITY, 1: EVEN}[best]
    assert selection.best_val_accuracy == pytest.approx(sk.accuracy_score(Y, chosen.argmax(1)))
    assert selection.best_val_balanced_accuracy == pytest.approx(sk.balanced_accuracy_score(Y, chosen.argmax(1)))
    assert sum(selection.members.values()) == pytest.approx(1.0)


def test_a_loss_objective_takes_the_smallest_loss_as_best(tmp_path):
    selection = select(_study(tmp_path, "log_loss"), "s", top=2, size=5)
    losses = {0: sk.log_loss(Y, MAJORITY, labels=[0, 1, 2]), 1: sk.log_loss(Y, EVEN, labels=[0, 1, 2])}
    assert losses[0] != losses[1] and selection.best_trial == min(losses, key=losses.get)


def test_greedy_metric_names():
    assert greedy_metric("auto", OBJECTIVES["accuracy"]) == greedy_metric("auto", OBJECTIVES["log_loss"]) == "log_loss"
    assert greedy_metric("auto", OBJECTIVES["balanced_accuracy"]) == "balanced_log_loss"
    assert greedy_metric("accuracy", OBJECTIVES["balanced_accuracy"]) == "accuracy"
    assert set(METRICS) == {"auto", "log_loss", "balanced_log_loss", "accuracy", "balanced_accuracy"}


def test_an_unknown_metric_and_a_study_without_models_are_one_line(tmp_path):
    store = _study(tmp_path, "accuracy")
    with pytest.raises(UserError, match="unknown ensemble metric 'f1'"):
        select(store, "s", metric="f1")
    for n in (0, 1):
        (store.artifacts.trial_dir("s", n) / "model.keras").unlink()
    with pytest.raises(UserError, match="no completed trial with a saved model yet"):
        select(store, "s")
