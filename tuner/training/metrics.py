"""Validation and test figures from class probabilities (numpy only, no Keras import)."""

from __future__ import annotations

import numpy as np


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))))


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(probs.argmax(1) == y))


def scores(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(log loss, accuracy) of class probabilities against integer labels."""
    return log_loss(probs, y), accuracy(probs, y)
