"""Check 7: training images after the space's strongest augmentation, as a picture to look at,
with a warning where mirroring may change what an image shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from tuner.check.findings import Finding, Status
from tuner.data import SearchData
from tuner.space.schema import Space
from tuner.training.choices import apply_choices, draw_choices

IMAGES = 16
# (images, captions) -> the picture's path
Writer = Callable[[np.ndarray, list[str]], Path]


def strongest(space: Space, reference: dict[str, Any]) -> dict[str, Any]:
    """The reference configuration with every augmentation parameter at its strongest."""
    searched = space.searched()
    return {**reference, **{name: max(searched[name].bounds()) for name in ("augment", "max_shift", "flip", "cutout")
                            if name in searched}}


def augmentation(space: Space, reference: dict[str, Any], data: SearchData, seed: int, write: Writer) -> Finding:
    params = strongest(space, reference)
    shift = round(params["augment"] * params["max_shift"])
    flip, cutout = bool(params["flip"] and params["augment"] > 0), int(params["cutout"])
    if not (shift or flip or cutout):
        return Finding("augmentation preview", Status.PASS, "the space does not augment")
    rows = np.sort(np.random.default_rng(seed).choice(len(data.x_train), min(IMAGES, len(data.x_train)), replace=False))
    choices = draw_choices(np.random.default_rng(seed), len(rows), shift, flip, cutout, data.x_train.shape[1:3])
    images = np.clip(apply_choices(data.x_train[rows], choices, shift), 0, 255)
    path = write(images, [data.class_names[y] for y in data.y_train[rows]])
    what = ", ".join(p for p in (f"shifts up to {shift} px" if shift else "", "mirroring" if flip else "",
                                 f"cutout {cutout} px" if cutout else "") if p)
    evidence = f"{len(rows)} training images at the strongest augmentation ({what}): {path}"
    if flip and space.dataset == "folder" and data.input_shape[-1] == 1:  # built-in datasets have their rule
        return Finding("augmentation preview", Status.WARN, evidence + "; the space mirrors single-channel images: "
                       "digits, letters and scans change meaning mirrored (flip: false if yours do)")
    return Finding("augmentation preview", Status.PASS, evidence)
