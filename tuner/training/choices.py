"""The per-image augmentation choices, drawn on the host (`draw_choices`), and what they do to
a few images in numpy (`apply_choices`): the report's picture of a trial's augmentation, without
importing Keras (8-10 s of a report's start on a CPU). Training applies the same choices in the
compiled step (`tuner.training.augment.Augment`); a test holds the two equal."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# flip, row offset, column offset, cutout top, left, bottom, right (exclusive), rotation in
# hundredths of a degree, zoom scale in ten-thousandths (10,000: none). Small integers, so one
# int32 array carries them all.
CHOICES = 9
CUTOUT_FILL = 127.5  # mid-grey in 0-255 pixels
ANGLE_UNITS, SCALE_UNITS = 100, 10_000  # per degree, per unit of scale


@dataclass(frozen=True)
class Augmentation:
    """What a trial's augmentation does: shift, rotation and zoom at `augment` times their largest."""

    max_shift: int = 0
    flip: bool = False
    cutout: int = 0
    rotation: float = 0.0  # degrees either way
    zoom: float = 0.0  # scale within 1 +- zoom

    @classmethod
    def of(cls, params: dict[str, Any]) -> "Augmentation":
        strength = params["augment"]
        return cls(round(strength * params["max_shift"]), bool(params["flip"] and strength > 0), int(params["cutout"]),
                   strength * params["rotation"], strength * params["zoom"])

    @property
    def active(self) -> bool:
        return bool(self.max_shift or self.flip or self.cutout or self.rotation or self.zoom)

    def draw(self, rng: np.random.Generator, n: int, size: tuple[int, int]) -> np.ndarray:
        return draw_choices(rng, n, self.max_shift, self.flip, self.cutout, size, self.rotation, self.zoom)

    def applied(self, images: np.ndarray, seed: int) -> np.ndarray:
        """The images as training would see them (numpy, for pictures)."""
        if not self.active:
            return images
        choices = self.draw(np.random.default_rng(seed), len(images), images.shape[1:3])
        return np.clip(apply_choices(images, choices, self.max_shift), 0, 255)

    def describe(self) -> str:
        parts = (f"shifts up to {self.max_shift} px" if self.max_shift else "", "mirroring" if self.flip else "",
                 f"rotation up to {self.rotation:g} degrees" if self.rotation else "",
                 f"zoom {100 * (1 - self.zoom):.0f}-{100 * (1 + self.zoom):.0f}%" if self.zoom else "",
                 f"cutout {self.cutout} px" if self.cutout else "")
        return ", ".join(p for p in parts if p) or "none"


def draw_choices(rng: np.random.Generator, n: int, max_shift: int, flip: bool, cutout: int = 0,
                 size: tuple[int, int] = (0, 0), rotation: float = 0.0, zoom: float = 0.0) -> np.ndarray:
    """(n, 9) int32 per image: flip (0/1), row and column offset (0..2*max_shift), the cutout box
    (top, left, bottom, right; empty without cutout) in an image of `size`, a rotation within
    +-`rotation` degrees and a scale within 1 +- `zoom` (below 1 magnifies)."""
    choices = np.zeros((n, CHOICES), np.int32)
    choices[:, 0] = rng.integers(0, 2 if flip else 1, n)
    choices[:, 1] = rng.integers(0, 2 * max_shift + 1, n)
    choices[:, 2] = rng.integers(0, 2 * max_shift + 1, n)
    if cutout:
        centre = np.stack([rng.integers(0, size[0], n), rng.integers(0, size[1], n)], axis=1)
        choices[:, 3:5] = np.maximum(centre - cutout // 2, 0)
        choices[:, 5:7] = np.minimum(centre - cutout // 2 + cutout, size)
    choices[:, 7] = np.round(rng.uniform(-rotation, rotation, n) * ANGLE_UNITS) if rotation else 0
    choices[:, 8] = np.round(rng.uniform(1 - zoom, 1 + zoom, n) * SCALE_UNITS) if zoom else SCALE_UNITS
    return choices


def affine_rows(cos: Any, sin: Any, height: int, width: int) -> list[Any]:
    """The first six numbers of Keras's `affine_transform` layout: the output pixel (x, y)
    (column, row) reads the input at the point turned and scaled about the image's centre, where
    `cos` and `sin` are the scale times the angle's cosine and sine. Numpy arrays or Keras tensors."""
    cy, cx = (height - 1) / 2, (width - 1) / 2
    return [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy]


def apply_choices(images: np.ndarray, choices: np.ndarray, max_shift: int) -> np.ndarray:
    """(n, H, W, C) images flipped, turned and zoomed, shifted (zero padding of `max_shift`) and
    cut out as `choices` say."""
    height, width = images.shape[1:3]
    out = np.empty(images.shape, np.float32)
    for i, (flip, dy, dx, top, left, bottom, right, angle, scale) in enumerate(choices):
        image = (images[i, :, ::-1] if flip else images[i]).astype(np.float32)
        if angle or scale != SCALE_UNITS:
            image = _turned(image, math.radians(angle / ANGLE_UNITS), scale / SCALE_UNITS)
        padded = np.pad(image, [(max_shift, max_shift), (max_shift, max_shift), (0, 0)])
        out[i] = padded[dy:dy + height, dx:dx + width]
        out[i, top:bottom, left:right] = CUTOUT_FILL
    return out


def _turned(image: np.ndarray, angle: float, scale: float) -> np.ndarray:
    """Bilinear, the border repeated past the edges: what the compiled step's transform does."""
    from scipy import ndimage

    a0, a1, a2, b0, b1, b2 = affine_rows(scale * math.cos(angle), scale * math.sin(angle), *image.shape[:2])
    matrix, offset = np.array([[b1, b0], [a1, a0]]), np.array([b2, a2])  # (row, column) order
    return np.stack([ndimage.affine_transform(image[..., c], matrix, offset, order=1, mode="nearest")
                     for c in range(image.shape[-1])], axis=-1)
