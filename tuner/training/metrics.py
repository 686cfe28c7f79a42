"""Validation and test figures from class probabilities (numpy only, no Keras import).

Balanced accuracy is the mean of the per-class accuracies (recalls) over the classes the labels
hold: on imbalanced classes a model that never predicts a small class scores high on plain
accuracy and low here. The balanced log loss weighs each class's mean log loss equally, its
counterpart for the ensemble's greedy selection.
"""

from __future__ import annotations

import math

import numpy as np


def _true_class_probs(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(_true_class_probs(probs, y))))


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(probs.argmax(1) == y))


def class_accuracy(probs: np.ndarray, y: np.ndarray) -> list[float | None]:
    """Each class's accuracy (its recall), in class order; None for a class the labels lack."""
    hits = probs.argmax(1) == y
    return [float(np.mean(hits[y == c])) if np.any(y == c) else None for c in range(probs.shape[1])]


def balanced_accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean([a for a in class_accuracy(probs, y) if a is not None]))


def balanced_log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    losses = -np.log(_true_class_probs(probs, y))
    return float(np.mean([losses[y == c].mean() for c in np.unique(y)]))


def predicted_counts(probs: np.ndarray) -> list[int]:
    """How many images each class was predicted for: a 0 is a class the model never predicts."""
    return np.bincount(probs.argmax(1), minlength=probs.shape[1]).tolist()


def confusion_matrix(probs: np.ndarray, y: np.ndarray) -> list[list[int]]:
    """Rows: the true class; columns: the predicted one."""
    n = probs.shape[1]
    return np.bincount(y * n + probs.argmax(1), minlength=n * n).reshape(n, n).tolist()


def scores(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(log loss, accuracy) of class probabilities against integer labels."""
    return log_loss(probs, y), accuracy(probs, y)


# What a space's `training.objective` names, as a figure of the validation predictions.
OBJECTIVE_SCORES = {"accuracy": accuracy, "balanced_accuracy": balanced_accuracy, "log_loss": log_loss}


STUCK = 0.01  # a training loss within this share of ln(classes) has learned nothing
STUCK_EPOCHS = 3  # epochs at a uniform guess's loss after which a trial stops: it learned nothing
DIVERGED = 2.0  # a training loss over this many times ln(classes) after its first epoch has diverged


def diverged(losses: list[float], n_classes: int, val_accuracy: float | None = None) -> str | None:
    """Why a trial's training has diverged, or None: after its first epoch its training loss is
    over twice ln(classes), worse than a uniform guess (a learning rate too large), and its
    validation accuracy no clearly better than chance (`learned`): a loss still falling from
    12.9 to 7.6 on three classes, at 44% validation, the best trial so far, was failed as diverged."""
    chance = math.log(n_classes)
    if len(losses) < 2 or not losses[-1] > DIVERGED * chance or learned(val_accuracy, n_classes):
        return None
    return (f"diverged: the training loss is {losses[-1]:.3g} after {len(losses)} epochs, over {DIVERGED:g} x ln "
            f"{n_classes} = {DIVERGED * chance:.3f} (a uniform guess's); the learning rate is likely too large")


LEARNED_MARGIN = 0.15  # a validation accuracy this share of the way from chance to 100% has learned something


def learned(val_accuracy: float | None, n_classes: int) -> bool:
    """A validation accuracy clearly above chance: `LEARNED_MARGIN` of the way to 100%."""
    return val_accuracy is not None and val_accuracy >= 1 / n_classes + LEARNED_MARGIN * (1 - 1 / n_classes)


def learned_nothing(losses: list[float], n_classes: int, val_accuracies: list[float] = ()) -> str | None:
    """Why a trial learned nothing, or None: its training loss sat at ln(classes), the loss of a
    uniform guess, in its last STUCK_EPOCHS epochs, or in all of them where it ran fewer (the
    course's zero initializer, saturated activations, or a learning rate too small to move; a
    first epoch above it does not count: 2.41 then 14 epochs at 2.303, seen), and no epoch's
    validation accuracy rose clearly above chance (a training loss held up by augmentation and
    dropout can sit there while the model without them already predicts: 36% on ten classes, seen)."""
    chance = math.log(n_classes)
    at_chance = [math.isfinite(loss) and abs(loss - chance) <= STUCK * chance for loss in losses]
    stuck = next((i for i, flag in enumerate(reversed(at_chance)) if not flag), len(losses))  # the last epochs there
    if stuck == 0 or stuck < min(STUCK_EPOCHS, len(losses)):
        return None
    if any(learned(acc, n_classes) for acc in val_accuracies):
        return None
    epochs = f"{stuck} epoch{'s' * (stuck != 1)}"
    return (f"learned nothing: the training loss stayed at {losses[-1]:.3f} (ln {n_classes} = {chance:.3f}, a uniform "
            f"guess) for {epochs}; a zero initializer, saturated activations or a learning rate too small")
