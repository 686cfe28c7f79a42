"""Temperature scaling (Guo et al., 2017) of a trial's validation predictions, for the ensemble.

Trials differ in calibration: label smoothing makes a model under-confident, a high learning rate
without it over-confident. Averaging such members, or choosing them greedily by validation
log-loss, then favours the most confident model instead of the best mix: on the H100 a cifar10
search's selection kept one member of ten (BENCHMARKS.md, Ensembles). One temperature per trial,
fitted on validation data, puts them on one footing; it never changes a single view's top class.

A trial's predictions come as views: (views, n, classes), the plain images and, with test-time
flips, their mirrors. The temperature divides each view's logits, then the views are averaged:
what `tuner.ensemble.assembly.combine` builds as a Keras model, so the selection scores what is evaluated.
Since softmax(z / T) = normalise(p ** (1 / T)), probabilities are enough.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from tuner.training.metrics import log_loss

BOUNDS = (0.05, 20.0)  # beyond these a model is degenerate; the fit stays inside


def temper(views: np.ndarray, temperature: float) -> np.ndarray:
    """(n, classes): each view's logits divided by `temperature`, softmaxed, views averaged."""
    scaled = np.power(np.maximum(views.astype(np.float64), 1e-30), 1.0 / temperature)
    return (scaled / scaled.sum(axis=-1, keepdims=True)).mean(axis=0).astype(np.float32)


def fit_temperature(views: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises validation log-loss (searched on a log scale). Where every
    validation image is right, that loss only falls as the temperature goes to 0, and the images
    tell only that the model is very likely right: a model less sure than (n + 1) / (n + 2) on
    them, Laplace's estimate of its accuracy after n right of n, is sharpened to it, a surer one
    left as trained (fitted by the loss, a 60-image folder's model went to the bound, 0.05, on its
    10; left as trained, a label-smoothed model lost its ensemble to a weaker, sharper member)."""
    n = len(labels)
    if (temper(views, 1.0).argmax(axis=-1) == labels).all():
        return min(confident_to((n + 1) / (n + 2), views), 1.0)
    result = minimize_scalar(lambda log_t: log_loss(temper(views, float(np.exp(log_t))), labels),
                             bounds=tuple(np.log(BOUNDS)), method="bounded", options={"xatol": 1e-3})
    return float(np.exp(result.x))


def confident_to(target: float, views: np.ndarray) -> float:
    """The temperature at which the mean top probability is `target` (it falls as the
    temperature rises), at a bound where none inside reaches it."""
    def gap(log_t: float) -> float:
        return float(temper(views, float(np.exp(log_t))).max(axis=-1).mean()) - target

    low, high = np.log(BOUNDS)
    if gap(low) <= 0:  # not that sure even at the sharpest
        return BOUNDS[0]
    if gap(high) >= 0:
        return BOUNDS[1]
    return float(np.exp(brentq(gap, low, high, xtol=1e-4)))
