"""Batched random flips and pad-and-crop shifts that run where the model runs.

Keras's `RandomTranslation` + `RandomFlip` layers made a CIFAR-10 epoch 150x slower on an
H100 (JAX), and numpy augmentation on the host cost more than the GPU epoch itself. This
layer crops with static slices and elementwise selects, which every backend compiles into the
training step. The per-sample choices (flip or not, row and column offset) are drawn on the
host, three small integers per image (`draw_choices`), and passed in with the batch: on the
H100 drawing them in the compiled step from a `SeedGenerator` cost as much as the crop and
flip together (BENCHMARKS.md). Called on images alone it draws them itself. It is used only by
the training wrapper, so saved models hold plain Keras layers.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def draw_choices(rng: np.random.Generator, n: int, max_shift: int, flip: bool) -> np.ndarray:
    """(n, 3) int32: flip (0/1), row offset and column offset (0..2*max_shift) per image."""
    return np.stack([rng.integers(0, 2 if flip else 1, n), rng.integers(0, 2 * max_shift + 1, n),
                     rng.integers(0, 2 * max_shift + 1, n)], axis=1).astype(np.int32)


class Augment(keras.layers.Layer):
    """Random horizontal flip (optional) and random shift of up to `max_shift` pixels.
    Takes images, or [images, choices] with choices from `draw_choices`."""

    def __init__(self, max_shift: int = 0, flip: bool = False, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_shift = int(max_shift)
        self.flip = bool(flip)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def active(self) -> bool:
        return self.max_shift > 0 or self.flip

    def call(self, inputs, training=False):
        x, choices = inputs if isinstance(inputs, (list, tuple)) else (inputs, None)
        if not training or not self.active:
            return x
        if choices is None:
            choices = self._draw(ops.shape(x)[0])
        per_image = ops.reshape(ops.cast(choices, "int32"), (-1, 3, 1, 1, 1))  # broadcasts over H, W, C
        if self.flip:
            x = ops.where(per_image[:, 0] == 1, ops.flip(x, axis=2), x)
        if self.max_shift:
            x = self._shift(x, per_image[:, 1], per_image[:, 2])
        return x

    def _draw(self, batch):
        coin = keras.random.randint((batch, 1), 0, 2 if self.flip else 1, seed=self.seed_generator)
        offsets = keras.random.randint((batch, 2), 0, 2 * self.max_shift + 1, seed=self.seed_generator)
        return ops.concatenate([coin, offsets], axis=1)

    def _shift(self, x, dy, dx):
        # Pad, then pick each sample's window among the 2p+1 static slices per axis with
        # elementwise selects: memory-bound ops that XLA fuses, cheaper than per-sample gathers.
        p = self.max_shift
        height, width = x.shape[1], x.shape[2]
        padded = ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        rows = padded[:, 0:height]
        for d in range(1, 2 * p + 1):
            rows = ops.where(dy == d, padded[:, d:d + height], rows)
        out = rows[:, :, 0:width]
        for d in range(1, 2 * p + 1):
            out = ops.where(dx == d, rows[:, :, d:d + width], out)
        return out

    def compute_output_shape(self, input_shape):
        nested = isinstance(input_shape, (list, tuple)) and isinstance(input_shape[0], (list, tuple))
        return input_shape[0] if nested else input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "max_shift": self.max_shift, "flip": self.flip, "seed": self.seed}
