"""The per-image augmentation choices, drawn on the host (`draw_choices`), and what they do to
a few images in numpy (`apply_choices`): the report's picture of a trial's augmentation, without
importing Keras (8-10 s of a report's start on a CPU). Training applies the same choices in the
compiled step (`tuner.training.augment.Augment`); a test holds the two equal."""

from __future__ import annotations

import numpy as np

CHOICES = 7  # flip, row offset, column offset, cutout top, left, bottom, right (exclusive)
CUTOUT_FILL = 127.5  # mid-grey in 0-255 pixels


def draw_choices(rng: np.random.Generator, n: int, max_shift: int, flip: bool, cutout: int = 0,
                 size: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(n, 7) int32 per image: flip (0/1), row and column offset (0..2*max_shift), and the
    cutout box (top, left, bottom, right; empty without cutout) in an image of `size`."""
    choices = np.zeros((n, CHOICES), np.int32)
    choices[:, 0] = rng.integers(0, 2 if flip else 1, n)
    choices[:, 1] = rng.integers(0, 2 * max_shift + 1, n)
    choices[:, 2] = rng.integers(0, 2 * max_shift + 1, n)
    if cutout:
        centre = np.stack([rng.integers(0, size[0], n), rng.integers(0, size[1], n)], axis=1)
        choices[:, 3:5] = np.maximum(centre - cutout // 2, 0)
        choices[:, 5:7] = np.minimum(centre - cutout // 2 + cutout, size)
    return choices


def apply_choices(images: np.ndarray, choices: np.ndarray, max_shift: int) -> np.ndarray:
    """(n, H, W, C) images flipped, shifted (zero padding of `max_shift`) and cut out as `choices` say."""
    height, width = images.shape[1:3]
    out = np.empty(images.shape, np.float32)
    for i, (flip, dy, dx, top, left, bottom, right) in enumerate(choices):
        image = images[i, :, ::-1] if flip else images[i]
        padded = np.pad(image, [(max_shift, max_shift), (max_shift, max_shift), (0, 0)])
        out[i] = padded[dy:dy + height, dx:dx + width]
        out[i, top:bottom, left:right] = CUTOUT_FILL
    return out
