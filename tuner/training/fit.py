"""`train_trial`: a search trial's fit. Build, train with early stopping, report each epoch.
`train_final`: a refit's, on the same trainer without validation.

Validation runs through a `Predictor` only (no separate `evaluate` compile; on JAX its program
compiles alongside the first epoch's), on batches padded to one fixed shape, and the best
epoch's validation probabilities are kept for the ensemble.
Training batches all have one shape too (the remainder is dropped per epoch, reshuffled), so
JAX compiles the step once.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import keras
import numpy as np

from tuner import config, interrupts
from tuner.training.augment import Augment
from tuner.training.choices import CHOICES, Augmentation, draw_choices
from tuner.training.backend import jit_compile
from tuner.training.compile_cache import compile_counts
from tuner.training.cost import Cost, model_cost
from tuner.data import SearchData
from tuner.errors import TrialEnded, TrialFailed
from tuner.training.metrics import STUCK_EPOCHS, balanced_accuracy, diverged, learned_nothing, scores
from tuner.training.model import build_model
from tuner.training.optim import make_optimizer
from tuner.training.predictor import Predictor

# Told each epoch's figures and whether the epoch ran all its batches (not when a stop cut it
# short); may raise TrialPruned.
EpochHook = Callable[[int, dict[str, float], bool], None]
# Why training must stop now (a deadline), or None. Asked before every step: training then ends
# after that step, validates and keeps the best epoch's weights, as early stopping would.
StopCheck = Callable[[], "str | None"]
# Told a built model's cost: the epochs to train it and the training steps an epoch (None: every
# batch; fewer: a random subset of the images each epoch, `tuner.search.budget`). May raise TrialSetAside.
Planner = Callable[[Cost], "tuple[int, int | None]"]


@dataclass
class TrialResult:
    model: keras.Model
    history: dict[str, list[float]]
    best_epoch: int  # 0-based, by validation loss; its weights are the model's
    val_accuracy: float  # at the best epoch, with test-time flips if the params ask for them
    val_loss: float  # likewise (the history's per-epoch figures have no flips)
    val_probs: np.ndarray  # (n_val, n_classes) at the best epoch, likewise
    val_views: np.ndarray  # (views, n_val, n_classes): the plain images' and, for flip trials, the mirrors'
    timings: dict[str, float] = field(default_factory=dict)
    stopped: str | None = None  # why and where a StopCheck ended it early ("<why> after epoch 2 of 9")




class EpochBatches(keras.utils.PyDataset):
    """Full batches of a fresh permutation each epoch. Labels are one-hot and smoothed here (what
    Keras's `label_smoothing` computes, kept out of the compiled step so trials share it).
    With `augment`, each batch also carries its images' augmentation choices, drawn here."""

    def __init__(self, x: np.ndarray, y: np.ndarray, n_classes: int, batch_size: int, seed: int,
                 augment: Augment | None = None, label_smoothing: float = 0.0, balanced: bool = False):
        super().__init__()
        targets = np.full((n_classes, n_classes), label_smoothing / n_classes, dtype="float32")
        targets[np.diag_indices(n_classes)] += 1.0 - label_smoothing
        self.x, self.y = x, targets[y]
        self.weights = balanced_weights(y, n_classes)[y] if balanced else None
        self.batch_size = min(batch_size, len(x))
        self.steps: int | None = None  # a cap on the batches an epoch (a subset plan); None: all
        self.augment = augment if augment is not None and augment.active else None
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self) -> int:
        whole = len(self.x) // self.batch_size
        return whole if self.steps is None else min(whole, self.steps)

    def __getitem__(self, i: int) -> tuple[Any, np.ndarray]:
        rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
        idx = np.sort(self.order[rows])
        inputs = self.x[idx] if self.augment is None else (self.x[idx], self.choices[rows])
        return (inputs, self.y[idx]) if self.weights is None else (inputs, self.y[idx], self.weights[idx])

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.x))
        if self.augment is not None:
            a = self.augment
            self.choices = draw_choices(self.rng, len(self.x), a.max_shift, a.flip, a.cutout, self.x.shape[1:3],
                                        a.rotation, a.zoom)


def balanced_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Per class, n / (classes * its count) (scikit-learn's 'balanced'): each class weighs the
    same in the loss; 0 for a class the labels lack."""
    counts = np.bincount(y, minlength=n_classes).astype("float32")
    present = counts > 0
    weights = np.zeros(n_classes, dtype="float32")
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights


def class_priors(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Each class's share of the labels, with one image added to every class so none is 0."""
    counts = np.bincount(y, minlength=n_classes) + 1.0
    return counts / counts.sum()


class Validation(keras.callbacks.Callback):
    """Per epoch: validation loss and accuracy from `predict`, NaN checks, timing, the hook.
    Without test-time flips: they would double the cost of every epoch's validation, and the
    pruner compares trials with and without them on equal terms. The trial's own figures take
    the flips, once, at the best epoch (`train_trial`)."""

    def __init__(self, predictor: Predictor, data: SearchData, hook: EpochHook | None, stop_check: StopCheck | None):
        super().__init__()
        self.predict, self.data, self.hook, self.stop_check = predictor, data, hook, stop_check
        self.stopped: str | None = None
        self.history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [],
                                                "val_balanced_accuracy": [], "lr": []}
        self.best_loss, self.best_probs = math.inf, None
        self.train_seconds: list[float] = []
        self.predict_seconds = 0.0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch_start, self.epoch = time.perf_counter(), epoch

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        # Keras ends the epoch after this step: a deadline costs one step and one validation, not
        # the rest of an epoch that may take minutes. (A begin hook: an end hook would make Keras
        # wait for every step's figures.)
        if self.stopped is None and self.stop_check is not None and (why := self.stop_check()):
            steps = self.params.get("steps")
            self.stopped = f"{why} in epoch {self.epoch + 1} of {self.params['epochs']}, after {batch + 1} of {steps} batches"
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs if logs is not None else {}
        loss = float(logs.get("loss", math.nan))  # reading it waits for the epoch's last step
        self.train_seconds.append(time.perf_counter() - self.epoch_start)
        check_finite(loss, epoch)
        start = time.perf_counter()
        probs = self.predict(self.data.x_val)
        self.predict_seconds += time.perf_counter() - start
        val_loss, val_acc = scores(probs, self.data.y_val)
        if (why := diverged([*self.history["loss"], loss], self.data.n_classes, val_acc)) is not None:
            raise TrialFailed(why)
        if val_loss < self.best_loss:
            self.best_loss, self.best_probs = val_loss, probs
        logs.update(val_loss=val_loss, val_accuracy=val_acc)
        lr = self.model.optimizer.learning_rate_now()
        for key, value in (("loss", loss), ("accuracy", float(logs.get("accuracy", math.nan))),
                           ("val_loss", val_loss), ("val_accuracy", val_acc),
                           ("val_balanced_accuracy", balanced_accuracy(probs, self.data.y_val)), ("lr", lr)):
            self.history[key].append(value)
        if self.hook is not None:
            self.hook(epoch, {k: v[-1] for k, v in self.history.items()}, self.stopped is None)
        last = epoch + 1 >= self.params["epochs"]
        if not last and epoch + 1 >= STUCK_EPOCHS and learned_nothing(self.history["loss"], self.data.n_classes,
                                                                        self.history["val_accuracy"]):
            self.model.stop_training = True  # its record says why (`learned_nothing`); the budget goes elsewhere
        if self.stopped is None and not last and self.stop_check is not None and (why := self.stop_check()):
            self.stopped = f"{why} after epoch {epoch + 1} of {self.params['epochs']}"
            self.model.stop_training = True  # EarlyStopping restores the best epoch's weights at the end
        interrupts.check()  # after the hook: the epoch ended, it is reported even when a stop was asked for


def seed_everything(seed: int) -> None:
    """keras.utils.set_random_seed, minus its TensorFlow import on the JAX and torch backends
    (importing TensorFlow there costs seconds and GPU memory for nothing)."""
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    import random

    from keras.src.backend.common import global_state  # what set_random_seed sets, TF aside
    from keras.src.random import seed_generator

    global_state.set_global_attribute("global_random_seed", seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)


def augmentation(params: dict[str, Any], seed: int | None = None) -> Augment:
    """The trial's augmentation layer."""
    a = Augmentation.of(params)
    return Augment(a.max_shift, a.flip, seed=seed, cutout=a.cutout, rotation=a.rotation, zoom=a.zoom)


@dataclass
class _Compiled:
    model: keras.Model
    trainer: keras.Model  # the model as trained: augmentation in front, compiled
    batches: EpochBatches
    epochs: int  # to train: `planner`'s, told the built model's cost, else as asked
    cost: Cost


def _compile(params: dict[str, Any], data: SearchData, max_epochs: int,
             seed: int) -> tuple[keras.Model, keras.Model, EpochBatches]:
    """The model, the model as trained (augmentation in front), and its batches (the probes' and
    benchmarks' way in)."""
    compiled = _compile_planned(params, data, max_epochs, seed)
    return compiled.model, compiled.trainer, compiled.batches


def _compile_planned(params: dict[str, Any], data: SearchData, max_epochs: int, seed: int,
                     planner: Planner | None = None) -> _Compiled:
    priors = class_priors(data.y_train, data.n_classes) if params["prior_bias"] else None
    model = build_model(params, data.input_shape, data.n_classes, seed, priors)
    augment = augmentation(params, seed)
    batches = EpochBatches(data.x_train, data.y_train, data.n_classes, params["batch_size"], seed, augment,
                           params["label_smoothing"], balanced=params["class_weight"] == "balanced")
    cost = model_cost(model, len(batches), batches.batch_size, len(data.x_val), augment.written(data.input_shape))
    if planner is not None:  # before the compile: a trial set aside costs its build only
        max_epochs, batches.steps = planner(cost)
        cost = replace(cost, steps=len(batches))  # what the epochs train, for the calibration
    # The trainer wraps the model: only the wrapper is compiled, so the saved model carries no
    # optimizer or schedule and loads with plain Keras.
    pixels = keras.Input(data.input_shape)
    if augment.active:
        choices = keras.Input((CHOICES,), dtype="int32")
        trainer = keras.Model([pixels, choices], model(augment([pixels, choices])))
    else:
        trainer = keras.Model(pixels, model(pixels))
    # The metric as an object and the optimizer built here, so that their variables exist before
    # the step is traced: TensorFlow traces a step that creates variables twice (~1 s a trial).
    trainer.compile(optimizer=make_optimizer(params, len(batches), max_epochs), loss=keras.losses.CategoricalCrossentropy(),
                    metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")], jit_compile=jit_compile())
    trainer.optimizer.build(trainer.trainable_variables)
    return _Compiled(model, trainer, batches, max_epochs, cost)


def train_trial(params: dict[str, Any], data: SearchData, *, max_epochs: int, patience: int, seed: int,
                on_epoch: EpochHook | None = None, stop_check: StopCheck | None = None,
                planner: Planner | None = None) -> TrialResult:
    """Train one complete parameter dict for `max_epochs` (or what `planner` says once the model
    is built); raises TrialFailed or TrialPruned (with `.history`), or TrialSetAside from `planner`."""
    start, compiles_before = time.perf_counter(), compile_counts()
    seed_everything(seed)
    validation: Validation | None = None
    predictor: Predictor | None = None
    compiled: _Compiled | None = None
    build_seconds = 0.0
    try:
        compiled = _compile_planned(params, data, max_epochs, seed, planner)
        model = compiled.model
        predictor = Predictor(model, data.x_val.shape, data.x_val.dtype)
        predictor.compile_ahead()  # alongside the training step's compile, in the first epoch
        validation = Validation(predictor, data, on_epoch, stop_check)
        callbacks: list[keras.callbacks.Callback] = [
            validation, keras.callbacks.EarlyStopping("val_loss", patience=patience, restore_best_weights=True)]
        if params["lr_schedule"] == "plateau":
            callbacks.append(keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.2, patience=max(1, patience // 2)))
        build_seconds = time.perf_counter() - start
        compiled.trainer.fit(compiled.batches, epochs=compiled.epochs, callbacks=callbacks, verbose=0)
    except TrialEnded as e:
        _attach(e, validation, _timings(validation, build_seconds, start, compiles_before, compiled))
        raise
    except Exception as e:  # out of memory, a shape that cannot build, ...: this trial only
        # Unless a signal came first: one raised into TensorFlow's tracing came out as a ValueError
        # ("The two structures don't have the same nested structure"), recorded as the trial's fault.
        interrupts.check()
        failure = _failure(e)
        _attach(failure, validation, _timings(validation, build_seconds, start, compiles_before, compiled))
        raise failure from e
    finally:
        if predictor is not None:
            predictor.close()
    hist = validation.history
    best = int(np.argmin(hist["val_loss"]))
    probs, val_loss, val_accuracy = validation.best_probs, hist["val_loss"][best], hist["val_accuracy"][best]
    views = [probs]
    # Mirrors, once, with the best epoch's weights (early stopping restored them): the trial's own
    # figures if it asks for test-time flips; for any trial trained on flips, an option the
    # ensemble may take for it (`tuner.ensemble.selection.select`).
    if params["tta_flip"] or params["flip"]:
        start_tta = time.perf_counter()
        views.append(predictor(data.x_val, mirrored=True))
        validation.predict_seconds += time.perf_counter() - start_tta
    if params["tta_flip"]:
        probs = (views[0] + views[1]) / 2
        val_loss, val_accuracy = scores(probs, data.y_val)
    timings = _timings(validation, build_seconds, start, compiles_before, compiled)
    return TrialResult(model, hist, best, val_accuracy, val_loss, probs, np.stack(views), timings, validation.stopped)


def check_finite(loss: float, epoch: int) -> None:
    if not math.isfinite(loss):
        raise TrialFailed(f"training loss became {loss} at epoch {epoch + 1}")


class _FiniteLoss(keras.callbacks.Callback):
    """A refit's NaN check (a search trial's is in `Validation`, which a refit has no data for)."""

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        check_finite(float((logs or {}).get("loss", math.nan)), epoch)


def train_final(params: dict[str, Any], x: np.ndarray, y: np.ndarray, n_classes: int, *, epochs: int,
                max_epochs: int, seed: int, learning_rates: list[float] | None = None) -> keras.Model:
    """Train `params` on all of (x, y) for exactly `epochs` epochs of a `max_epochs` schedule, with
    no validation: a trial trained again on more data (`tuner.ensemble.refit`). Per epoch the schedule is
    the trial's; a plateau trial replays its recorded `learning_rates`. Raises TrialFailed."""
    seed_everything(seed)
    data = SearchData(x, y, x[:0], y[:0], [str(i) for i in range(n_classes)])
    compiled = _compile_planned(params, data, max_epochs, seed)
    callbacks: list[keras.callbacks.Callback] = [_FiniteLoss()]
    if params["lr_schedule"] == "plateau" and learning_rates:
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda e, lr: learning_rates[min(e, len(learning_rates) - 1)]))
    try:
        compiled.trainer.fit(compiled.batches, epochs=epochs, callbacks=callbacks, verbose=0)
    except TrialFailed:
        raise
    except Exception as e:
        raise _failure(e) from e
    return compiled.model


def _failure(error: Exception) -> TrialFailed:
    """An error of this trial only (out of memory, a shape that cannot build, ...), in one line."""
    return TrialFailed(f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}")


def _timings(validation: Validation | None, build_seconds: float, start: float,
             compiles_before: dict[str, int], compiled: _Compiled | None) -> dict[str, float]:
    """Where the trial's time went, and what its model costs (`tuner.search.budget` learns from
    both); for pruned and failed trials too (their fixed cost counts)."""
    epochs = validation.train_seconds if validation is not None else []
    timings = {"build_seconds": build_seconds, "train_seconds": sum(epochs),
               "predict_seconds": validation.predict_seconds if validation is not None else 0.0,
               "total_seconds": time.perf_counter() - start,
               **{k: float(n - compiles_before[k]) for k, n in compile_counts().items()}}
    if epochs:
        timings.update(first_epoch_seconds=epochs[0], epoch_seconds=float(np.median(epochs[1:] or epochs)))
    if compiled is not None:
        timings.update(compiled.cost.to_dict(), threads=float(config.training_threads()))
    return timings


def _attach(error: TrialEnded, validation: Validation | None, timings: dict[str, float]) -> None:
    """What a pruned or failed trial still tells: its epochs so far and its timings."""
    error.history = validation.history if validation is not None else {}
    error.timings = timings
