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
    def __init__(self, make: Callable[[tuple[int, ...]], np.ndarray]):
        self.make = make

    def __call__(self, shape, dtype=None):
        value = self.make(tuple(shape)).astype(keras.backend.standardize_dtype(dtype or "float32"))
        if keras.backend.backend() == "jax":
            import jax

            return jax.device_put(value)  # a copy; Keras's jnp.asarray would compile a program per shape
        return value


ZEROS = HostInitializer(np.zeros)
ONES = HostInitializer(np.ones)


def constant(value: np.ndarray) -> HostInitializer:
    """A layer's weights set to `value` (the classifier's bias at the log class priors)."""
    return HostInitializer(lambda shape: np.broadcast_to(value, shape).copy())


def glorot_uniform(rng: np.random.Generator) -> HostInitializer:
    """Keras's GlorotUniform, drawn from `rng`: uniform within sqrt(6 / (fan_in + fan_out))."""

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        receptive = int(np.prod(shape[:-2]))
        limit = np.sqrt(6.0 / (receptive * (shape[-2] + shape[-1])))
        return rng.uniform(-limit, limit, shape)

    return HostInitializer(draw)


# Each layer attribute that holds an initializer, and the built-in it names in a saved config.
_BUILTIN = {"kernel_initializer": initializers.GlorotUniform, "bias_initializer": initializers.Zeros,
            "beta_initializer": initializers.Zeros, "gamma_initializer": initializers.Ones,
            "moving_mean_initializer": initializers.Zeros, "moving_variance_initializer": initializers.Ones}


def restore_builtin(model: keras.Model) -> None:
    """After building: every layer's host initializers become the built-ins they stand for."""
    for layer in model.layers:
        for attribute, builtin in _BUILTIN.items():
            if isinstance(getattr(layer, attribute, None), HostInitializer):
                setattr(layer, attribute, builtin())
