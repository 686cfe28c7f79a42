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
    best = store.trials.top("s", 1)[0].number
    (store.artifacts.trial_dir("s", 1 - best) / "model.keras").unlink()
    assert select(store, "s").best_trial == best  # another trial's missing model leaves it out, no more
    (store.artifacts.trial_dir("s", best) / "model.keras").unlink()
    # Before: trial 1 - best was called the best trial, in the table and in the export.
    with pytest.raises(UserError, match=rf"trial {best}, its best, has no saved model .* nothing was evaluated"):
        select(store, "s")


def _flip_study(tmp_path: Path) -> SearchStore:
    """Trial 0 tests with flips (two stored views, their mean its figures); trial 1 does not."""
    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", {"space": {"training": {}, "params": {}}})
    store.artifacts.save_val_labels("s", Y)
    mirror = _probs([0] * 16 + [1] * 3 + [0], 0.6)  # the mirror views: right on class 1 too
    for params, views in (({"tta_flip": True}, np.stack([MAJORITY, mirror])), ({}, EVEN[None])):
        mean = views.mean(axis=0)
        value = sk.accuracy_score(Y, mean.argmax(1))
        number = store.trials.add("s", TrialRecord(-1, "complete", float(value), params, history={"val_loss": [1.0]},
                                                   best_epoch=0, val_loss=1.0))
        store.artifacts.save_trial_files("s", TrialRecord(number, "complete", float(value), params), views.astype("float32"))
        (store.artifacts.trial_dir("s", number) / "model.keras").write_bytes(b"a model file")
    return store


def test_the_selection_record_is_the_figures_of_its_own_members(tmp_path):
    """Every figure of the record, again from its members, weights, temperatures and flips with
    scikit-learn; a trial that tests with flips is judged by the mean of its views."""
    from tuner.ensemble.calibration import temper

    store = _flip_study(tmp_path)
    views = {n: store.artifacts.val_views("s", n) for n in (0, 1)}
    selection = select(store, "s", top=2, size=4)
    assert selection.best_trial == 0 and selection.candidates == [0, 1]
    flip_mean = views[0].mean(axis=0)
    assert selection.best_val_accuracy == pytest.approx(sk.accuracy_score(Y, flip_mean.argmax(1)))
    assert selection.best_val_loss == pytest.approx(sk.log_loss(Y, flip_mean, labels=[0, 1, 2]), rel=1e-5)
    assert selection.best_val_balanced_accuracy == pytest.approx(sk.balanced_accuracy_score(Y, flip_mean.argmax(1)))
    assert set(selection.temperatures) == set(selection.flips) == set(selection.members)
    mix = sum(w * temper(views[n] if selection.flips[n] else views[n][:1], selection.temperatures[n])
              for n, w in selection.members.items())
    assert selection.val_accuracy == pytest.approx(sk.accuracy_score(Y, mix.argmax(1)))
    assert selection.val_loss == pytest.approx(sk.log_loss(Y, mix, labels=[0, 1, 2]), rel=1e-5)
    assert selection.val_balanced_accuracy == pytest.approx(sk.balanced_accuracy_score(Y, mix.argmax(1)))
    assert selection.flips[0] is True or 0 not in selection.members
    assert all(0.05 <= t <= 20 for t in selection.temperatures.values())
    only = select(store, "s", top=1, size=4)
    assert only.candidates == [0] and list(only.members) == [0]
    assert select(store, "s", top=2, size=4, metric="accuracy").metric == "accuracy"


def test_an_unknown_metric_names_every_choice():
    with pytest.raises(UserError) as e:
        select(None, "s", metric="f1")  # refused before the store is read
    assert str(e.value) == ("unknown ensemble metric 'f1' (choose from auto, log_loss, balanced_log_loss, accuracy, "
                            "balanced_accuracy)")
