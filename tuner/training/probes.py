"""Short measurements of one parameter dict before a search spends its budget (`tune check`):
the loss at initialization, the loss after a hundred steps (against a model that ignores the images), how
many steps one batch takes to be fitted, and what the largest model costs in parameters, memory
and one step. Each builds and trains through the trials' own `_compile`, so it measures the
model and training step the search will run."""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from tuner.data import SearchData
from tuner.training.fit import _compile, balanced_weights, class_priors, seed_everything

EVAL_IMAGES = 1024  # images a loss is measured on: enough for two decimals, quick on a CPU
NO_AUGMENT = {"augment": 0.0, "cutout": 0}  # cutout acts on its own, whatever `augment` says
QUIET = {**NO_AUGMENT, "dropout": 0.0, "l2": 0.0, "weight_decay": 0.0, "label_smoothing": 0.0,
         "lr_schedule": "constant", "warmup_epochs": 0, "class_weight": "none"}  # nothing but the fit itself


def mean_loss(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of the model's probabilities on (at most EVAL_IMAGES of) x, y."""
    x, y = x[:EVAL_IMAGES], y[:EVAL_IMAGES]
    probs = np.concatenate([keras.ops.convert_to_numpy(model(x[i:i + 256], training=False)) for i in range(0, len(x), 256)])
    return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())


def expected_initial_loss(params: dict[str, Any], y: np.ndarray, n_classes: int) -> float:
    """What an untrained classifier should score: ln(classes), or, with the bias at the log
    priors, the cross-entropy of the labels under those priors."""
    if not params["prior_bias"]:
        return math.log(n_classes)
    priors = class_priors(y, n_classes)
    return float(-np.log(priors[y]).mean())


def initial_loss(params: dict[str, Any], data: SearchData, seed: int) -> float:
    """The model's mean training loss before any step."""
    seed_everything(seed)
    model, _, _ = _compile(params, data, 1, seed)
    return mean_loss(model, data.x_train, data.y_train)


BASELINE_LOOKS = 3  # validation losses read in a baseline run, the lowest kept: a small folder overfits in 100 steps


@dataclass(frozen=True)
class Baseline:
    real: float  # the lowest validation loss read while training on the images
    input_independent: float  # the validation loss of a model that ignores its input (the class shares)
    taken: int  # steps on the images
    train_share: float  # the training loss on the images at the end, a share of its start's (1: it did not move)


def baseline_losses(params: dict[str, Any], data: SearchData, steps: int, seed: int,
                    seconds: float | None = None) -> Baseline:
    """Training `steps` steps from the seed's start (fewer if `seconds` pass first) on the images,
    read `BASELINE_LOOKS` times on validation images; beside it, what a model that ignores its
    input scores on those images (`input_independent_loss`)."""
    seed_everything(seed)
    model, trainer, batches = _compile({**params, **NO_AUGMENT}, data, 1, seed)
    x_val, y_val = data.x_val[:EVAL_IMAGES], data.y_val[:EVAL_IMAGES]
    real, taken, losses = _train_steps(trainer, batches, steps, seconds, lambda: mean_loss(model, x_val, y_val))
    ignoring = input_independent_loss(data.y_train, y_val, data.n_classes, params["label_smoothing"],
                                      params["class_weight"] == "balanced")
    return Baseline(real, ignoring, taken, _share(losses))


def input_independent_loss(y_train: np.ndarray, y_val: np.ndarray, n_classes: int, label_smoothing: float = 0.0,
                           balanced: bool = False) -> float:
    """The validation loss a model that ignores its input converges to: trained on blank images it
    can output only one distribution, the one that minimizes its training loss: the training
    labels' class shares (one image of average weight added to each class, so none is 0), weighted
    as `balanced` weights the loss and smoothed as its targets are. Computed, not trained: on
    digits 100 steps on blank images read 2.310, this 2.303."""
    counts = np.bincount(y_train, minlength=n_classes).astype(np.float64)
    mass = counts * balanced_weights(y_train, n_classes) if balanced else counts
    shares = mass + mass.sum() / len(y_train)
    shares /= shares.sum()
    targets = (1.0 - label_smoothing) * shares + label_smoothing / n_classes
    return float(-np.log(targets[y_val]).mean())


def _share(losses: list[float]) -> float:
    """The last steps' training loss over the first steps' (medians of five: a step's is noisy)."""
    head, tail = float(np.median(losses[:5])), float(np.median(losses[-5:]))
    return tail / head if head > 0 and math.isfinite(head) and math.isfinite(tail) else 1.0


def _train_steps(trainer: Any, batches: Any, steps: int, seconds: float | None,
                 look: Any) -> tuple[float, int, list[float]]:
    """Up to `steps` training steps (fewer once `seconds` pass, after the first two), with
    `look()` read `BASELINE_LOOKS` times: the lowest read, the steps taken and each step's
    training loss."""
    begun, taken, losses, read = time.perf_counter(), 0, [], []
    every = max(steps // BASELINE_LOOKS, 1)
    while taken < steps and (seconds is None or taken < 2 or time.perf_counter() - begun < seconds):
        x, *rest = batches[taken % len(batches)]
        out = trainer.train_on_batch(x, *rest)
        losses.append(float(np.ravel(out)[0]))
        taken += 1
        if taken % len(batches) == 0:
            batches.on_epoch_end()
        if taken % every == 0 or taken == steps:
            read.append(look())
    if not read or (taken % every and taken != steps):
        read.append(look())  # cut by the time between two reads
    # Diverged by the end: said as such, whatever it read before.
    return (min(read) if math.isfinite(read[-1]) else read[-1]), taken, losses


@dataclass(frozen=True)
class BatchFit:
    images: int
    steps: int  # steps taken (the first at which the batch was fitted, else the limit)
    accuracy: float  # training accuracy on the batch at the last step
    loss: float
    fitted: bool  # every image right, the loss under the target


def overfit_batch(params: dict[str, Any], data: SearchData, seed: int, images: int = 32, max_steps: int = 300,
                  target_loss: float = 0.1) -> BatchFit:
    """Train on one batch of `images` training images, with augmentation and regularization off,
    until every image is right with a training loss under `target_loss`, or `max_steps` pass."""
    n = min(images, len(data.y_train))
    one = SearchData(data.x_train[:n], data.y_train[:n], data.x_val[:n], data.y_val[:n], data.class_names)
    seed_everything(seed)
    _, trainer, batches = _compile({**params, **QUIET, "batch_size": n}, one, 1, seed)
    for step in range(1, max_steps + 1):
        logs = trainer.train_on_batch(*batches[0], return_dict=True)
        if (fitted := logs["accuracy"] >= 1.0 and logs["loss"] < target_loss) or not math.isfinite(logs["loss"]):
            break
    return BatchFit(n, step, float(logs["accuracy"]), float(logs["loss"]), bool(fitted))


@dataclass(frozen=True)
class StepCost:
    parameters: int
    estimated_bytes: int  # weights, gradients, optimizer slots and saved activations of one step
    step_seconds: float | None  # one training step, measured; None when not run
    peak_rise_bytes: int | None  # how far the process's peak resident memory rose in that step


def optimizer_slots(params: dict[str, Any]) -> int:
    """Variables the optimizer keeps per weight (Adam's two moments, SGD's momentum, ...)."""
    return {"adam": 2, "adamw": 2, "rmsprop": 1, "sgd": 1}.get(params["optimizer"], 2)


def step_cost(params: dict[str, Any], data: SearchData, seed: int, memory_limit: int | None) -> StepCost:
    """Build the model of `params` and estimate one step's memory; run the step (on a batch of
    `batch_size` training images, or all of them if fewer, as training does) unless the estimate
    exceeds `memory_limit` bytes."""
    batch = min(params["batch_size"], len(data.y_train))  # as training takes it
    one = SearchData(data.x_train[:batch], data.y_train[:batch], data.x_val[:1], data.y_val[:1], data.class_names)
    seed_everything(seed)
    model, trainer, batches = _compile(params, one, 1, seed)
    weights = model.count_params()
    activations = sum(math.prod(d for d in layer.output.shape[1:] if d) for layer in model.layers[1:])
    estimate = 4 * (weights * (2 + optimizer_slots(params)) + 2 * activations * batch)
    if memory_limit is not None and estimate > memory_limit:
        return StepCost(weights, estimate, None, None)
    before = _peak_bytes()
    start = time.perf_counter()
    trainer.train_on_batch(*batches[0])
    return StepCost(weights, estimate, time.perf_counter() - start, _peak_bytes() - before)


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def learning_rate_sweep(params: dict[str, Any], data: SearchData, seed: int, low: float, high: float,
                        steps: int = 100, seconds: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The range test: one step at each of `steps` learning rates rising geometrically from `low`
    to `high` (constant schedule, augmentation off), fewer and farther apart where `seconds` would
    not hold them all (timed on the second step: the first compiles); the rates tried and each
    step's training loss, ended early once the loss diverges (not finite, or four times its lowest)."""
    seed_everything(seed)
    _, trainer, batches = _compile({**params, **NO_AUGMENT, "lr_schedule": "constant", "warmup_epochs": 0}, data, 1, seed)
    rates, losses = list(np.geomspace(low, high, steps)), []
    for step in range(steps):
        if step >= len(rates):
            break
        begun = time.perf_counter()
        trainer.optimizer.learning_rate = float(rates[step])  # its peak: what ReduceLROnPlateau sets
        loss = float(trainer.train_on_batch(*batches[step % len(batches)], return_dict=True)["loss"])
        losses.append(loss)
        if (step + 1) % len(batches) == 0:
            batches.on_epoch_end()
        if not math.isfinite(loss) or loss > 4 * min(losses):
            break
        if step == 1 and seconds is not None and (fit := max(int(seconds / (time.perf_counter() - begun)), 20)) < steps - 2:
            rates = rates[:2] + list(np.geomspace(rates[2], high, fit))
    return np.array(rates[:len(losses)]), np.array(losses)
