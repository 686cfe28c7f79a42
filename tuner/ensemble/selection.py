"""Greedy ensemble selection on validation predictions (Caruana et al., 2004: forward
selection with replacement, keeping the best prefix). It reads the store's validation
predictions and labels only; each candidate is first calibrated by its own temperature
(`calibration`), and a trial trained on flips is averaged with its mirror images where that fits
validation better."""

from __future__ import annotations

import numpy as np

from tuner.ensemble.calibration import fit_temperature, temper
from tuner.errors import UserError
from tuner.store import SearchStore, Selection, migrate
from tuner.training.metrics import accuracy, log_loss

METRICS = ("log_loss", "accuracy")


def greedy_weights(probs: dict[int, np.ndarray], y: np.ndarray, size: int, metric: str = "log_loss") -> dict[int, float]:
    """Forward selection with replacement for `size` steps; the best prefix's member counts."""
    score = (lambda p: log_loss(p, y)) if metric == "log_loss" else (lambda p: -accuracy(p, y))
    total, counts, path = np.zeros_like(next(iter(probs.values()))), {n: 0 for n in probs}, []
    for step in range(1, size + 1):
        trial = min(probs, key=lambda n: (score((total + probs[n]) / step), n))
        total += probs[trial]
        counts[trial] += 1
        path.append((score(total / step), step, dict(counts)))
    _, steps, best = min(path, key=lambda p: (p[0], p[1]))
    return {n: c / steps for n, c in best.items() if c}


def select(store: SearchStore, study: str, top: int = 10, size: int = 20, metric: str = "log_loss") -> Selection:
    """Choose members and weights among the top trials that have a model and predictions."""
    if metric not in METRICS:
        raise UserError(f"unknown ensemble metric '{metric}' (choose from {', '.join(METRICS)})")
    y_val = store.artifacts.val_labels(study)
    raw, probs, temperatures, flips = {}, {}, {}, {}
    for t in store.trials.top(study, top):
        views = store.artifacts.val_views(study, t.number)
        if views is not None and views.shape[1] == len(y_val) and store.artifacts.model_path(study, t.number):
            tta = bool(t.params.get("tta_flip"))
            raw[t.number] = views.mean(axis=0) if tta else views[0]  # the trial's own figures
            probs[t.number], temperatures[t.number], flips[t.number] = _calibrated(views, y_val, tta)
    if not probs:
        raise UserError(f"study '{study}' has no completed trial with a saved model yet")
    weights = greedy_weights(probs, y_val, size, metric)
    mix = sum(w * probs[n] for n, w in weights.items())
    best = max(raw, key=lambda n: (accuracy(raw[n], y_val), -log_loss(raw[n], y_val), -n))  # as trained
    return Selection(weights, metric, accuracy(mix, y_val), log_loss(mix, y_val), best,
                     accuracy(raw[best], y_val), log_loss(raw[best], y_val), sorted(probs),
                     {n: temperatures[n] for n in weights}, {n: flips[n] for n in weights})


def _calibrated(views: np.ndarray, y_val: np.ndarray, tta: bool) -> tuple[np.ndarray, float, bool]:
    """A candidate's calibrated validation probabilities, temperature, and whether it averages its
    mirror images: with mirrors stored (a flip-trained trial), whichever of the two fits better."""
    if migrate.mirror_average_only(views, tta):  # left as trained
        return views[0], 1.0, True
    fitted = []
    for option in [views[:1], views] if len(views) == 2 else [views]:
        temperature = fit_temperature(option, y_val)
        fitted.append((temper(option, temperature), temperature, len(option) == 2))
    return min(fitted, key=lambda f: log_loss(f[0], y_val))
