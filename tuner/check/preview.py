"""Check 7: training images after the space's strongest augmentation, as a picture to look at,
with a warning where mirroring may change what an image shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from tuner.check.findings import Finding, Status
from tuner.data import SearchData
from tuner.space.schema import Space
from tuner.training.choices import Augmentation

IMAGES = 16
AUGMENTING = ("augment", "max_shift", "flip", "rotation", "zoom", "cutout")  # the larger, the stronger
# (images, captions) -> the picture's path
Writer = Callable[[np.ndarray, list[str]], Path]


def strongest(space: Space, reference: dict[str, Any]) -> dict[str, Any]:
    """The reference configuration with every augmentation parameter at its strongest."""
    searched = space.searched()
    return {**reference, **{name: max(searched[name].bounds()) for name in AUGMENTING if name in searched}}


def augmentation(space: Space, reference: dict[str, Any], data: SearchData, seed: int, write: Writer) -> Finding:
    strongest_augmentation = Augmentation.of(strongest(space, reference))
    if not strongest_augmentation.active:
        return Finding("augmentation preview", Status.PASS, "the space does not augment")
    rows = np.sort(np.random.default_rng(seed).choice(len(data.x_train), min(IMAGES, len(data.x_train)), replace=False))
    images = strongest_augmentation.applied(data.x_train[rows], seed)
    path = write(images, [data.class_names[y] for y in data.y_train[rows]])
    evidence = f"{len(rows)} training images at the strongest augmentation ({strongest_augmentation.describe()}): {path}"
    if strongest_augmentation.flip and space.dataset == "folder" and data.input_shape[-1] == 1:  # built-in datasets have their rule
        return Finding("augmentation preview", Status.WARN, evidence + "; the space mirrors single-channel images: "
                       "digits, letters and scans change meaning mirrored (flip: false if yours do)")
    return Finding("augmentation preview", Status.PASS, evidence)
