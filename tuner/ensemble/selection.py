"""Greedy ensemble selection on validation predictions (Caruana et al., 2004: forward
selection with replacement, keeping the best prefix). It reads the store's validation
predictions and labels only; each candidate is first calibrated by its own temperature
(`calibration`), and a trial trained on flips is averaged with its mirror images where that fits
validation better."""

from __future__ import annotations

from typing import Callable

import numpy as np

from tuner.ensemble.calibration import fit_temperature, temper
from tuner.errors import UserError
from tuner.store import SearchStore, Selection, migrate
from tuner.space.objective import Objective
from tuner.training.metrics import OBJECTIVE_SCORES, accuracy, balanced_accuracy, balanced_log_loss, log_loss

# What greedy selection minimizes on validation. A proper loss picks steadier ensembles than
# accuracy does (ties, steps of one image); its balanced form weighs every class equally.
GREEDY_LOSSES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "log_loss": log_loss, "balanced_log_loss": balanced_log_loss,
    "accuracy": lambda p, y: -accuracy(p, y), "balanced_accuracy": lambda p, y: -balanced_accuracy(p, y)}
METRICS = ("auto", *GREEDY_LOSSES)


def greedy_metric(metric: str, objective: Objective) -> str:
    """'auto': the balanced log loss for a balanced-accuracy search, else the log loss."""
    if metric != "auto":
        return metric
    return "balanced_log_loss" if objective.name == "balanced_accuracy" else "log_loss"


def greedy_weights(probs: dict[int, np.ndarray], y: np.ndarray, size: int, metric: str = "log_loss") -> dict[int, float]:
    """Forward selection with replacement for `size` steps; the best prefix's member counts."""
    loss = GREEDY_LOSSES[metric]
    score = lambda p: loss(p, y)  # noqa: E731
    total, counts, path = np.zeros_like(next(iter(probs.values()))), {n: 0 for n in probs}, []
    for step in range(1, size + 1):
        trial = min(probs, key=lambda n: (score((total + probs[n]) / step), n))
        total += probs[trial]
        counts[trial] += 1
        path.append((score(total / step), step, dict(counts)))
    _, steps, best = min(path, key=lambda p: (p[0], p[1]))
    return {n: c / steps for n, c in best.items() if c}


def select(store: SearchStore, study: str, top: int = 10, size: int = 20, metric: str = "auto") -> Selection:
    """Choose members and weights among the top trials that have a model and predictions; the
    best trial is the best by the study's objective."""
    if metric not in METRICS:
        raise UserError(f"unknown ensemble metric '{metric}' (choose from {', '.join(METRICS)})")
    objective = store.trials.objective(study)
    metric = greedy_metric(metric, objective)
    y_val = store.artifacts.val_labels(study)
    raw, probs, temperatures, flips = {}, {}, {}, {}
    for rank, t in enumerate(store.trials.top(study, top)):
        views = store.artifacts.val_views(study, t.number)
        usable = views is not None and views.shape[1] == len(y_val) and store.artifacts.model_path(study, t.number)
        if rank == 0 and not usable:  # the search keeps it: another trial would be called the best
            raise UserError(f"study '{study}': trial {t.number}, its best, has no saved model or validation "
                            f"predictions in {store.artifacts.trial_dir(study, t.number)} (removed or "
                            f"damaged); nothing was evaluated")
        if usable:
            tta = bool(t.params.get("tta_flip"))
            raw[t.number] = views.mean(axis=0) if tta else views[0]  # the trial's own figures
            probs[t.number], temperatures[t.number], flips[t.number] = _calibrated(views, y_val, tta)
    if not probs:
        raise UserError(f"study '{study}' has no completed trial with a saved model yet")
    weights = greedy_weights(probs, y_val, size, metric)
    mix = sum(w * probs[n] for n, w in weights.items())
    goal = OBJECTIVE_SCORES[objective.name]
    best = min(raw, key=lambda n: (objective.rank_key(goal(raw[n], y_val)), log_loss(raw[n], y_val), n))  # as trained
    return Selection(weights, metric, accuracy(mix, y_val), log_loss(mix, y_val), best,
                     accuracy(raw[best], y_val), log_loss(raw[best], y_val), sorted(probs),
                     {n: temperatures[n] for n in weights}, {n: flips[n] for n in weights},
                     balanced_accuracy(mix, y_val), balanced_accuracy(raw[best], y_val))


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
