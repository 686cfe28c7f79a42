"""Batched random flips and pad-and-crop shifts that run where the model runs.

Keras's `RandomTranslation` + `RandomFlip` layers made a CIFAR-10 epoch 150x slower on an
H100 (JAX), and numpy augmentation on the host cost more than the GPU epoch itself. This
layer draws per-sample offsets and crops with static slices and elementwise selects, which
every backend compiles into the training step. It is used only by the training wrapper, so saved
models hold plain Keras layers.
"""

from __future__ import annotations

import keras
from keras import ops


class Augment(keras.layers.Layer):
    """Random horizontal flip (optional) and random shift of up to `max_shift` pixels."""

    def __init__(self, max_shift: int = 0, flip: bool = False, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_shift = int(max_shift)
        self.flip = bool(flip)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def active(self) -> bool:
        return self.max_shift > 0 or self.flip

    def call(self, x, training=False):
        if not training or not self.active:
            return x
        batch = ops.shape(x)[0]
        if self.flip:
            coin = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator) < 0.5
            x = ops.where(coin, ops.flip(x, axis=2), x)
        if self.max_shift:
            x = self._shift(x, batch)
        return x

    def _shift(self, x, batch):
        # Pad, then pick each sample's window among the 2p+1 static slices per axis with
        # elementwise selects: memory-bound ops that XLA fuses, cheaper than per-sample gathers.
        p = self.max_shift
        height, width = x.shape[1], x.shape[2]
        padded = ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        dy = keras.random.randint((batch, 1, 1, 1), 0, 2 * p + 1, seed=self.seed_generator)
        dx = keras.random.randint((batch, 1, 1, 1), 0, 2 * p + 1, seed=self.seed_generator)
        rows = padded[:, 0:height]
        for d in range(1, 2 * p + 1):
            rows = ops.where(dy == d, padded[:, d:d + height], rows)
        out = rows[:, :, 0:width]
        for d in range(1, 2 * p + 1):
            out = ops.where(dx == d, rows[:, :, d:d + width], out)
        return out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "max_shift": self.max_shift, "flip": self.flip, "seed": self.seed}
