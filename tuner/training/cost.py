"""What a built model costs to train, counted before it trains, and in seconds on this machine.

`Cost`: multiply-adds per image (forward pass), the values its layers write (batch norm,
activations, pooling and depthwise convolutions cost memory traffic more than arithmetic: a
separable network trained 1.7-2.9x slower than its multiply-adds alone said), what the training
step's augmentation writes, and the weights. Its `work` weighs a written value as
`ELEMENT_MACS` multiply-adds.

`Calibration` turns a cost into seconds: a training step takes `step_seconds + work_seconds * batch
* work`, validating an image a third of a trained image's work without its augmentation, and every
trial a fixed part (build, compile, saving). It starts from what a CPU core of the development
machine measured (`PRIOR_CPU`, BENCHMARKS.md) and is refitted from the trials this machine has run
(`calibrate`). Nothing here imports Keras: the parent of a search reads recorded costs too.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Iterable

VALIDATION_SHARE = 1 / 3  # a validated image's arithmetic against a trained one's (forward only)
# A written value's training time in multiply-adds' (fitted with `PRIOR_CPU`).
ELEMENT_MACS = 40.0
_TINY = 1e-300  # a ratio's floor before its logarithm
NEAREST = 3  # measured trials, closest in cost to a proposal, whose rate it is estimated at


@dataclass(frozen=True)
class Cost:
    macs: float  # multiply-adds of one image's forward pass
    weights: int  # trainable and other weights of the model
    steps: int  # training steps an epoch
    batch_size: int
    val_images: int  # images predicted after each epoch
    elements: float = 0.0  # values one image's forward pass writes (`model_elements`)
    augment_elements: float = 0.0  # values the training step's augmentation writes an image

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @property
    def work(self) -> float:
        """A trained image's work, in multiply-adds: its arithmetic and what it and its augmentation write."""
        return _work(self.macs, self.elements + self.augment_elements)

    @property
    def forward_work(self) -> float:
        """A validated image's (no augmentation; `VALIDATION_SHARE` takes the backward pass off)."""
        return _work(self.macs, self.elements)


def _work(macs: float, elements: float) -> float:
    return macs + ELEMENT_MACS * elements


def _spatial(layer: Any) -> int:
    shape = layer.output.shape  # (batch, height, width, channels)
    return math.prod(int(d) for d in shape[1:3])


def _in_channels(layer: Any) -> int:
    return int(layer.input.shape[-1])


def layer_macs(layer: Any) -> float:
    """Multiply-adds of one image through `layer` (0 for layers that only move or scale values)."""
    kind = type(layer).__name__
    if kind == "Conv2D":
        kh, kw = layer.kernel_size
        return _spatial(layer) * kh * kw * _in_channels(layer) * layer.filters / layer.groups
    if kind == "SeparableConv2D":
        kh, kw = layer.kernel_size
        depthwise = _in_channels(layer) * layer.depth_multiplier
        return _spatial(layer) * (kh * kw * depthwise + depthwise * layer.filters)
    if kind == "DepthwiseConv2D":
        kh, kw = layer.kernel_size
        return _spatial(layer) * kh * kw * _in_channels(layer) * layer.depth_multiplier
    if kind == "Dense":
        return float(_in_channels(layer) * layer.units)
    return 0.0


def model_macs(model: Any) -> float:
    """Multiply-adds of one image's forward pass, nested models included."""
    total = 0.0
    for layer in model.layers:
        total += model_macs(layer) if hasattr(layer, "layers") else layer_macs(layer)
    return total


# Layers whose output is a view of their input (nothing written).
_VIEWS = {"InputLayer", "Flatten", "Reshape"}


def layer_elements(layer: Any) -> float:
    """Values one image's pass through `layer` writes: its output's size (0 for views)."""
    if type(layer).__name__ in _VIEWS:
        return 0.0
    return float(math.prod(int(d) for d in layer.output.shape[1:]))


def model_elements(model: Any) -> float:
    """Values one image's forward pass writes, every layer's output, nested models included: the
    memory traffic that batch norm, activations, pooling and depthwise convolutions cost in time
    more than in multiply-adds."""
    total = 0.0
    for layer in model.layers:
        total += model_elements(layer) if hasattr(layer, "layers") else layer_elements(layer)
    return total


def model_cost(model: Any, steps: int, batch_size: int, val_images: int, augment_elements: float = 0.0) -> Cost:
    """`augment_elements`: what the training step's augmentation writes an image
    (`tuner.training.augment.Augment.written`)."""
    return Cost(model_macs(model), int(model.count_params()), steps, batch_size, val_images, model_elements(model),
                augment_elements)


@dataclass(frozen=True)
class Calibration:
    step_seconds: float  # a training step's time that does not grow with the work
    work_seconds: float  # seconds per unit of an image's `Cost.work` (a multiply-add), in training
    fixed_seconds: float  # a trial's time outside its epochs
    epoch_overhead: float = 0.0  # an epoch's validation time beyond its arithmetic (the call, the figures)
    measured: int = 0  # trials it was fitted from (0: the prior)

    def epoch_seconds(self, cost: Any) -> float:
        """Training and validating one epoch."""
        return cost.steps * self.train_step_seconds(cost) + self.validation_seconds(cost.val_images, cost.forward_work)

    def train_step_seconds(self, cost: Any) -> float:
        return self.step_seconds + self.work_seconds * cost.batch_size * cost.work

    def validation_seconds(self, images: float, forward_work: float) -> float:
        return self.epoch_overhead + self.work_seconds * VALIDATION_SHARE * images * forward_work

    def trial_seconds(self, cost: Any, epochs: int) -> float:
        return self.fixed_seconds + epochs * self.epoch_seconds(cost)


# One CPU core of the 2-core development machine (TensorFlow 2.21, float32; `bench/layer_costs.py`,
# BENCHMARKS.md "What a trial costs"): 5.3e-11 s a multiply-add and 40 multiply-adds' time a
# written value, fitted over twelve models from digits to a separable network at 180x180 (each
# within 0.7-1.1x of its measured step; the same CNN ran 1.3x slower on another day), 0.004 s a
# step besides; a digits trial's fixed part is about 3 s, its validation 0.1-0.3 s an epoch.
PRIOR_CPU = Calibration(step_seconds=0.004, work_seconds=5.3e-11, fixed_seconds=3.0, epoch_overhead=0.15)
# A second thread's share of a core: two threads trained 1.26-1.78x as fast as one on 2026-12-06
# (1.7-1.8x for CNNs on 2026-12-02; BENCHMARKS.md). The lower figure: a deadline's plan errs long.
THREAD_GAIN = 0.45


def prior(device: str, threads: int) -> Calibration | None:
    """What to assume before this machine measured anything: the CPU's figure, faster with more
    threads (at `THREAD_GAIN` of linear); none for an accelerator (too varied: the first trial
    there runs as asked and calibrates the rest)."""
    if device != "cpu":
        return None
    speedup = 1 + THREAD_GAIN * (max(threads, 1) - 1)
    return Calibration(PRIOR_CPU.step_seconds, PRIOR_CPU.work_seconds / speedup, PRIOR_CPU.fixed_seconds,
                       PRIOR_CPU.epoch_overhead)


@dataclass(frozen=True)
class Measured:
    """One trial's cost and what its epochs took (`TrialRecord.timings`)."""

    work: float  # a trained image's (`Cost.work`)
    batch_size: int
    step_seconds: float  # a training step, epochs after the first (the first one compiles)
    fixed_seconds: float
    val_images: float = 0.0
    validation_seconds: float = 0.0  # an epoch's
    forward_work: float = 0.0  # a validated image's
    # Of a one-epoch trial: its step counts the compile, an upper bound. Such a trial is often the
    # only one a deadline's first minute holds (`tuner.search.budget`), so it counts until a
    # trial of more epochs has run.
    with_compile: bool = False

    @classmethod
    def of(cls, timings: dict[str, float], epochs: int) -> "Measured | None":
        """None for a trial that cannot say its rate: no epoch, not one step or image, or a record without the
        written values (its rate per multiply-add would hold their time: 1.5-2.5x long on a
        proposal's whole work)."""
        needed = ("macs", "elements", "batch_size", "steps", "epoch_seconds", "total_seconds", "train_seconds")
        if epochs < 1 or any(timings.get(k) is None for k in needed) or timings["steps"] < 1 or timings["batch_size"] < 1:
            return None
        epoch, validation = timings["epoch_seconds"], timings.get("predict_seconds", 0.0)
        fixed = timings["total_seconds"] - epochs * epoch - validation
        cost = Cost(timings["macs"], 0, int(timings["steps"]), int(timings["batch_size"]), 0, timings["elements"],
                    timings.get("augment_elements", 0.0))
        if not math.isfinite(cost.work * cost.batch_size):  # no model this side of a damaged record
            return None
        return cls(cost.work, cost.batch_size, epoch / cost.steps, max(fixed, 0.0), timings.get("val_images", 0.0),
                   validation / epochs, cost.forward_work, epochs < 2)


# A proposal whose step does more than this many times the work of every trial measured near it:
# those trials' steps may be mostly the step's fixed time, which their rate would then count as
# work (158x the true epoch without this cap, in test_budget.py's tiny-trials case).
EXTRAPOLATION = 10.0


def _slowness(start: Calibration, measured: list[Measured]) -> float:
    """How many times slower than `start` this machine ran the `measured` steps (median): the
    rate of work it is assumed to have at most, past what was measured."""
    return statistics.median(m.step_seconds / (start.step_seconds + start.work_seconds * m.batch_size * m.work)
                             for m in measured)


def calibrate(start: Calibration | None, measured: Iterable[Measured], work: float | None = None) -> Calibration | None:
    """The prior refitted from this machine's trials: their median fixed time, and the median rate
    of the `NEAREST` trials whose step's work (batch times `Cost.work`) is closest, on a log
    scale, to `work` (the proposal's): a CPU's rate differs between small and large models
    (BENCHMARKS.md, "What a trial costs"). Far past the work measured (`EXTRAPOLATION`) the rate is
    at most the prior's, slowed as this machine ran the nearest trials."""
    points = [m for m in measured if m.work > 0]
    points = [m for m in points if not m.with_compile] or points
    if not points:
        return start
    step = start.step_seconds if start is not None else 0.0
    if work is not None and work > 0:
        points.sort(key=lambda m: abs(math.log(max(m.batch_size * m.work / work, _TINY))))
    near = points[:NEAREST]
    rate = statistics.median(max(m.step_seconds - step, 1e-12) / (m.batch_size * m.work) for m in near)
    if start is not None and work is not None and work > EXTRAPOLATION * max(m.batch_size * m.work for m in near):
        rate = min(rate, _slowness(start, near) * start.work_seconds)
    arithmetic = Calibration(step, rate, 0.0)
    overhead = statistics.median(max(m.validation_seconds - arithmetic.validation_seconds(m.val_images, m.forward_work), 0.0)
                                 for m in near)
    return Calibration(step, rate, statistics.median(m.fixed_seconds for m in points), overhead, len(points))
