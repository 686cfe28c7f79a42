"""`make_optimizer`: a trial's optimizer, with its numbers held as optimizer state.

Keras compiles the training step with every Python number it reads baked in, so two trials that
differ only in learning rate, schedule or L2 strength compile twice, and JAX's persistent cache
cannot help (measured on JAX/CPU: a new step compiled for a trial that changed only these). Here
the peak learning rate, the schedule's kind, length and warm-up, the L1 and L2 strengths and
the max-norm bound are optimizer variables: the compiled step takes them as inputs, and every trial of one architecture
and batch size runs the same program. (Label smoothing is applied to the labels on the host in
`tuner.training.fit`, for the same reason.)
"""

from __future__ import annotations

import functools
import math
from typing import Any

import keras
from keras import ops

from tuner.training import initializers as host

# The index of each kind is what the step reads; "plateau" is constant here and lowered by
# Keras's ReduceLROnPlateau, which assigns the learning-rate variable.
SCHEDULE_KINDS = ("constant", "step", "cosine", "exponential", "onecycle", "plateau")


def schedule_factor(kind, step, total_steps, warmup_steps):
    """The learning rate over its peak at `step` (tensors in, so nothing is a constant): linear
    warm-up, then constant, step (x0.1 at 50% and 75%), cosine, exponential (to 1% at the end)
    or one-cycle (linear to zero)."""
    step, total, warmup = (ops.cast(v, "float32") for v in (step, total_steps, warmup_steps))
    frac = ops.clip((step - warmup) / ops.maximum(total - warmup, 1.0), 0.0, 1.0)
    after = ops.stack([
        ops.ones_like(frac),
        ops.where(frac < 0.5, 1.0, ops.where(frac < 0.75, 0.1, 0.01)),
        0.5 * (1 + ops.cos(math.pi * frac)),
        ops.power(0.01, frac),
        1.0 - frac,
        ops.ones_like(frac),
    ])
    ramp = ops.where(warmup > 0, ops.minimum((step + 1) / ops.maximum(warmup, 1.0), 1.0), 1.0)
    return ramp * ops.take(after, kind)


def _learning_rate(peak, kind, step, total_steps, warmup_steps):
    return peak * ops.cast(schedule_factor(kind, step, total_steps, warmup_steps), peak.dtype)


@functools.cache
def _jitted_learning_rate():
    import jax

    return jax.jit(_learning_rate)


class _StateHeld:
    """Mixed into a Keras optimizer: the learning rate is the peak (Keras's own variable) times
    the schedule factor of the step; every kernel's gradient gets 2 * l2 * w + l1 * sign(w), the
    gradient of the l2 * sum(w**2) + l1 * sum(|w|) that a kernel_regularizer would add to the loss;
    with a max norm, each unit's incoming kernel weights are scaled back to it after the step, as
    Keras's MaxNorm constraint does. Whether there is a max norm shapes the step; every number is
    a variable."""

    def __init__(self, *, learning_rate: float, schedule: str, total_steps: int, warmup_steps: int, l2: float,
                 l1: float = 0.0, max_norm: float = 0.0, **kwargs: Any):
        super().__init__(learning_rate=float(learning_rate), **kwargs)  # type: ignore[call-arg]
        self._bounded = max_norm > 0
        numbers = {"schedule_kind": (SCHEDULE_KINDS.index(schedule), "int32"), "total_steps": (total_steps, "float32"),
                   "warmup_steps": (warmup_steps, "float32"), "l2": (l2, "float32"), "l1": (l1, "float32"),
                   "max_norm": (max_norm, "float32")}
        for name, (value, dtype) in numbers.items():
            variable = self.add_variable((), initializer=keras.initializers.Constant(value), dtype=dtype, name=name)
            setattr(self, f"_{name}", variable)

    def add_variable_from_reference(self, reference_variable, name=None, initializer="zeros"):
        """Slots (momentum, Adam's moments) start as zeros from the host (`tuner.training.initializers`)."""
        if initializer == "zeros":
            initializer = host.ZEROS
        return super().add_variable_from_reference(reference_variable, name, initializer)  # type: ignore[misc]

    def _get_current_learning_rate(self):
        return _learning_rate(self._learning_rate, self._schedule_kind, self.iterations, self._total_steps,
                              self._warmup_steps)

    def learning_rate_now(self) -> float:
        """The learning rate of the current step, read outside the training step (for the
        history). On JAX as one compiled program: eagerly, each of the schedule's ~17 operations
        compiles a program of its own at every trial's first epoch end (0.5 s on a CPU)."""
        numbers = [v.value for v in (self._learning_rate, self._schedule_kind, self.iterations, self._total_steps,
                                     self._warmup_steps)]
        if keras.backend.backend() == "jax":
            return float(_jitted_learning_rate()(*numbers))
        return float(ops.convert_to_numpy(_learning_rate(*numbers)))

    def apply(self, grads, trainable_variables=None):
        variables = self._trainable_variables if trainable_variables is None else list(trainable_variables)
        grads = [g if g is None or not is_kernel(v) else g + self._penalty_gradient(v, g.dtype)
                 for g, v in zip(grads, variables)]
        result = super().apply(grads, trainable_variables)
        if self._bounded:
            for variable in filter(is_kernel, variables):
                variable.assign(self._within_norm(variable))
        return result

    def _penalty_gradient(self, kernel, dtype):
        # Both penalties every step, also at 0: one elementwise pass per kernel (fused on an
        # accelerator) keeps L1 on or off out of the program's shape, so such trials share it.
        w = ops.cast(kernel, dtype)
        return 2.0 * ops.cast(self._l2, dtype) * w + ops.cast(self._l1, dtype) * ops.sign(w)

    def _within_norm(self, kernel):
        """Keras's MaxNorm over every axis but the last (each output unit's incoming weights)."""
        w = ops.convert_to_tensor(kernel)
        norms = ops.sqrt(ops.sum(ops.square(w), axis=tuple(range(len(w.shape) - 1)), keepdims=True))
        bound = ops.cast(self._max_norm, w.dtype)
        return w * (ops.clip(norms, 0.0, bound) / (norms + ops.cast(keras.backend.epsilon(), w.dtype)))


def is_kernel(variable: Any) -> bool:
    """A layer's kernel (dense, conv, or a separable conv's depthwise and pointwise ones), which
    the penalties and the max norm act on; biases and batch norm's scales are left alone."""
    return variable.name.endswith("kernel")


@functools.cache
def optimizer_class(name: str) -> type:
    """Keras's optimizer `name` with the numbers held as state. Built on the class Keras really
    hands out: on torch a backend subclass with batched (torch._foreach) updates."""
    keras_class = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
                   "rmsprop": keras.optimizers.RMSprop, "adagrad": keras.optimizers.Adagrad,
                   "adadelta": keras.optimizers.Adadelta, "nadam": keras.optimizers.Nadam,
                   "adamax": keras.optimizers.Adamax}[name]
    backend_class = type(keras_class(learning_rate=0.01))
    return type(f"StateHeld{keras_class.__name__}", (_StateHeld, backend_class), {})


def make_optimizer(params: dict[str, Any], steps_per_epoch: int, max_epochs: int) -> keras.optimizers.Optimizer:
    """The optimizer of a complete parameter dict, for `max_epochs` of `steps_per_epoch`."""
    total = steps_per_epoch * max_epochs
    warmup = steps_per_epoch * params["warmup_epochs"]
    if params["lr_schedule"] == "onecycle":
        warmup = max(warmup, int(0.25 * total))  # the cycle's rising quarter
    extra: dict[str, Any] = {}
    if params["optimizer"] == "sgd":
        extra = {"momentum": params["momentum"], "nesterov": True}
    elif params["optimizer"] == "adamw":
        extra = {"weight_decay": params["weight_decay"]}
    return optimizer_class(params["optimizer"])(learning_rate=params["learning_rate"], schedule=params["lr_schedule"],
                                           total_steps=total, warmup_steps=warmup, l2=params["l2"], l1=params["l1"],
                                           max_norm=params["max_norm"], **extra)
