"""Initial values made by numpy on the host.

On JAX, Keras's own initializers run as eager device operations, each compiling a program for
every new shape (a new architecture's random kernels: 2.9 s on a CPU; its zeros and
ones: 12 programs, 0.4 s), and even Keras's conversion of a numpy array (`jnp.asarray`) compiles
one per shape. A value from the host is only copied to the device (`jax.device_put`). Models keep
the names of Keras's built-in initializers in their configs (`restore_builtin`), so a saved model
needs nothing of `tune`.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
from keras import initializers


class HostInitializer(initializers.Initializer):
    """Values from `make(shape)`; `builtin` is the Keras initializer a saved config names instead."""

    def __init__(self, make: Callable[[tuple[int, ...]], np.ndarray], builtin: type = initializers.Zeros):
        self.make = make
        self.builtin = builtin

    def __call__(self, shape, dtype=None):
        value = self.make(tuple(shape)).astype(keras.backend.standardize_dtype(dtype or "float32"))
        if keras.backend.backend() == "jax":
            import jax

            return jax.device_put(value)  # a copy; Keras's jnp.asarray would compile a program per shape
        return value


ZEROS = HostInitializer(np.zeros, initializers.Zeros)
ONES = HostInitializer(np.ones, initializers.Ones)


def constant(value: np.ndarray) -> HostInitializer:
    """A layer's weights set to `value` (the classifier's bias at the log class priors)."""
    return HostInitializer(lambda shape: np.broadcast_to(value, shape).copy())


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan in, fan out) of a kernel, as Keras counts them: a conv's receptive field times its channels."""
    if len(shape) < 2:
        return (shape[0], shape[0]) if shape else (1, 1)
    receptive = int(np.prod(shape[:-2]))
    return receptive * shape[-2], receptive * shape[-1]


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], stddev: float) -> np.ndarray:
    """Normal values redrawn until within two standard deviations, as Keras's TruncatedNormal."""
    values = rng.normal(0.0, stddev, shape)
    while (outside := np.abs(values) > 2 * stddev).any():
        values[outside] = rng.normal(0.0, stddev, int(outside.sum()))
    return values


TRUNCATION = 0.87962566103423978  # the standard deviation of a unit normal truncated at +-2 (Keras's VarianceScaling)


def _scaled(rng: np.random.Generator, shape: tuple[int, ...], fan: str, distribution: str) -> np.ndarray:
    """Keras's VarianceScaling with scale 2 (He) or 1 (Glorot, LeCun) over the named fan."""
    fan_in, fan_out = fans(shape)
    variance = {"in": 1.0 / fan_in, "avg": 2.0 / (fan_in + fan_out), "he": 2.0 / fan_in}[fan]
    if distribution == "uniform":
        limit = np.sqrt(3.0 * variance)
        return rng.uniform(-limit, limit, shape)
    return _truncated_normal(rng, shape, np.sqrt(variance) / TRUNCATION)


# Each name a space may give `kernel_initializer`: how numpy draws it, and the Keras built-in it stands for.
KERNELS: dict[str, tuple[Callable[[np.random.Generator, tuple[int, ...]], np.ndarray], type]] = {
    "glorot_uniform": (lambda rng, shape: _scaled(rng, shape, "avg", "uniform"), initializers.GlorotUniform),
    "glorot_normal": (lambda rng, shape: _scaled(rng, shape, "avg", "normal"), initializers.GlorotNormal),
    "he_uniform": (lambda rng, shape: _scaled(rng, shape, "he", "uniform"), initializers.HeUniform),
    "he_normal": (lambda rng, shape: _scaled(rng, shape, "he", "normal"), initializers.HeNormal),
    "lecun_normal": (lambda rng, shape: _scaled(rng, shape, "in", "normal"), initializers.LecunNormal),
    "random_uniform": (lambda rng, shape: rng.uniform(-0.05, 0.05, shape), initializers.RandomUniform),
    "random_normal": (lambda rng, shape: rng.normal(0.0, 0.05, shape), initializers.RandomNormal),
    "zeros": (lambda rng, shape: np.zeros(shape), initializers.Zeros),
}


def kernel(name: str, rng: np.random.Generator) -> HostInitializer:
    """The kernel initializer `name` (Keras's defaults), drawn from `rng`."""
    draw, builtin = KERNELS[name]
    return HostInitializer(lambda shape: draw(rng, shape), builtin)


# Each layer attribute that may hold an initializer (the separable convolution's two kernels too).
_ATTRIBUTES = ("kernel_initializer", "depthwise_initializer", "pointwise_initializer", "bias_initializer",
               "beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer")


def restore_builtin(model: keras.Model) -> None:
    """After building: every layer's host initializers become the built-ins they stand for."""
    for layer in model.layers:
        for attribute in _ATTRIBUTES:
            if isinstance(value := getattr(layer, attribute, None), HostInitializer):
                setattr(layer, attribute, value.builtin())
