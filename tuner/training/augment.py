"""Batched random flips, rotations and zooms, pad-and-crop shifts and cutout that run where the model runs.

Keras's `RandomTranslation` + `RandomFlip` layers made a CIFAR-10 epoch 150x slower on an
H100 (JAX), and numpy augmentation on the host cost more than the GPU epoch itself. This
layer crops with static slices and elementwise selects, which every backend compiles into the
training step. The per-sample choices (flip or not, row and column offset) are drawn on the
host, nine small integers per image (`draw_choices`), and passed in with the batch: on the
H100 drawing them in the compiled step from a `SeedGenerator` cost as much as the crop and
flip together (BENCHMARKS.md). Called on images alone it draws them itself. It is used only by
the training wrapper, so saved models hold plain Keras layers.

Cutout (DeVries & Taylor 2017; part of the DAWNBench ResNet-9 recipe) blanks a square at a
random centre, clipped at the borders, to mid-grey (0 after the model's input scaling). Its box
comes with the choices (empty without cutout) and is always applied to host choices, so neither the
cutout size nor cutout on/off is a constant of the compiled step.

Rotation and zoom come as an angle and a scale per image, also drawn on the host; the step turns
them into one projective transform each (`keras.ops.image.affine_transform`, bilinear, the border
repeated). Whether a trial rotates or zooms at all shapes the step; how far does not.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from tuner.training.choices import ANGLE_UNITS, CHOICES, CUTOUT_FILL, SCALE_UNITS, affine_rows

# A rotation or zoom's time, in whole passes over the image's values (TensorFlow's projective
# transform on a CPU, bilinear: four reads and their weights a value; 10-11 measured at 180x180x3,
# `bench/layer_costs.py`, BENCHMARKS.md).
AFFINE_PASSES = 10


class Augment(keras.layers.Layer):
    """Random horizontal flip (optional), rotation within +-`rotation` degrees and zoom within
    1 +- `zoom` (optional), random shift of up to `max_shift` pixels and cutout of a
    `cutout`-pixel square (optional). Takes images, or [images, choices] with choices from
    `draw_choices`."""

    def __init__(self, max_shift: int = 0, flip: bool = False, seed: int | None = None, cutout: int = 0,
                 rotation: float = 0.0, zoom: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_shift = int(max_shift)
        self.flip = bool(flip)
        self.cutout = int(cutout)
        self.rotation, self.zoom = float(rotation), float(zoom)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def active(self) -> bool:
        return self.max_shift > 0 or self.flip or self.cutout > 0 or self.affine

    @property
    def affine(self) -> bool:
        return self.rotation > 0 or self.zoom > 0

    def written(self, shape: tuple[int, ...]) -> float:
        """About how many values the training step's `call` (host choices) writes an image of
        `shape` (height, width, channels), for its time (`tuner.training.cost`): a flip and its
        select, a pad and two selects a pixel of shift on each axis, the cutout box's select, and
        `AFFINE_PASSES` for a rotation or zoom."""
        if not self.active:
            return 0.0
        shift = 1 + 2 * (2 * self.max_shift) if self.max_shift else 0
        passes = 2 * self.flip + shift + 1 + AFFINE_PASSES * self.affine
        return float(passes * math.prod(shape))

    def call(self, inputs, training=False):
        x, choices = inputs if isinstance(inputs, (list, tuple)) else (inputs, None)
        if not training or not self.active:
            return x
        host_choices = choices is not None
        if not host_choices:
            choices = self._draw(x)
        per_image = ops.reshape(ops.cast(choices, "int32"), (-1, CHOICES, 1, 1, 1))  # broadcasts over H, W, C
        if self.flip:
            x = ops.where(per_image[:, 0] == 1, ops.flip(x, axis=2), x)
        if self.affine:
            x = self._turn(x, ops.cast(choices, "float32"))
        if self.max_shift:
            x = self._shift(x, per_image[:, 1], per_image[:, 2])
        if self.cutout or host_choices:  # host boxes may be empty: cutout on or off is one program
            rows = ops.reshape(ops.arange(x.shape[1], dtype="int32"), (1, -1, 1, 1))
            cols = ops.reshape(ops.arange(x.shape[2], dtype="int32"), (1, 1, -1, 1))
            top, left, bottom, right = (per_image[:, i] for i in range(3, 7))
            box = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
            x = ops.where(box, ops.cast(CUTOUT_FILL, x.dtype), x)
        return x

    def _draw(self, x):
        batch, size = ops.shape(x)[0], (x.shape[1], x.shape[2])
        coin = keras.random.randint((batch, 1), 0, 2 if self.flip else 1, seed=self.seed_generator)
        offsets = keras.random.randint((batch, 2), 0, 2 * self.max_shift + 1, seed=self.seed_generator)
        box = ops.zeros((batch, 4), "int32")
        if self.cutout:
            centre = keras.random.randint((batch, 2), 0, 1 << 30, seed=self.seed_generator)
            centre = ops.stack([centre[:, 0] % size[0], centre[:, 1] % size[1]], axis=1)
            start = ops.maximum(centre - self.cutout // 2, 0)
            end = ops.minimum(centre - self.cutout // 2 + self.cutout, ops.convert_to_tensor(size, "int32"))
            box = ops.concatenate([start, end], axis=1)
        angle = keras.random.uniform((batch, 1), -self.rotation, self.rotation, seed=self.seed_generator)
        scale = keras.random.uniform((batch, 1), 1 - self.zoom, 1 + self.zoom, seed=self.seed_generator)
        turns = ops.cast(ops.round(ops.concatenate([angle * ANGLE_UNITS, scale * SCALE_UNITS], axis=1)), "int32")
        return ops.concatenate([coin, offsets, box, turns], axis=1)

    def _turn(self, x, choices):
        """Each image turned and scaled about its centre by its angle and scale."""
        angle = choices[:, 7] * (math.pi / 180 / ANGLE_UNITS)
        scale = choices[:, 8] / SCALE_UNITS
        rows = affine_rows(scale * ops.cos(angle), scale * ops.sin(angle), x.shape[1], x.shape[2])
        transform = ops.stack([*rows, ops.zeros_like(angle), ops.zeros_like(angle)], axis=1)
        turned = ops.image.affine_transform(ops.cast(x, "float32"), transform, interpolation="bilinear",
                                            fill_mode="nearest")
        return ops.cast(turned, x.dtype)

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
        return {**super().get_config(), "max_shift": self.max_shift, "flip": self.flip, "seed": self.seed,
                "cutout": self.cutout, "rotation": self.rotation, "zoom": self.zoom}
