"""The study format and the one place that reads older ones.

Each study records `format` in its meta. Reading code sees the current format only: what an
older study lacks is filled in here, where it is read, so no other module branches on age.

Format 1 (no `format` key): validation predictions of a flip-trained trial were stored as one
(n, classes) array, the average of the image and its mirror; evaluations may lack checksummed
files, temperatures and flips; trials may lack their seed, best epoch and epoch budget.
Format 2: predictions are (views, n, classes), one view per image variant kept.
Within format 2, a parameter the vocabulary gained since a trial ran took its default then; a
trial recorded before objectives had accuracy as its value and no separate accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tuner.space.params import PARAMETERS

FORMAT = 2


def version(meta: dict[str, Any]) -> int:
    return int(meta.get("format", 1))


def views(array: np.ndarray) -> np.ndarray:
    """A trial's stored validation predictions as (views, n, classes)."""
    return array[None] if array.ndim == 2 else array


def mirror_average_only(views: np.ndarray, trained_on_flips: bool) -> bool:
    """Whether a flip-trained trial's one view is the mirror average that format 1 kept (format
    2 keeps both views of such a trial)."""
    return trained_on_flips and len(views) == 1


def cannot_retrain(seed: int | None, best_epoch: int | None) -> str | None:
    """Why a trial cannot be trained again from its record (format 1 may lack what it needs)."""
    return "no seed or best epoch recorded (a study from an older tune)" if seed is None or best_epoch is None else None


def epoch_budget(recorded: int | None, space_max_epochs: int) -> int:
    """A trial's epoch budget: as recorded, or (format 1 recorded none) the space's."""
    return recorded or space_max_epochs


def test_reads(recorded: int | None, n_evaluations: int) -> int:
    """Reads of a study's test split: as counted, or (before reads were counted) one per evaluation."""
    return n_evaluations if recorded is None else int(recorded)


# Parameters the vocabulary gained within format 2: a trial recorded before ran with the default.
ADDED_PARAMETERS = ("class_weight", "prior_bias")


def params(stored: dict[str, Any]) -> dict[str, Any]:
    """A trial's parameters with the names added since it ran, at their defaults (what it trained
    with); a partial dict (a test's) stays as it is."""
    if not set(PARAMETERS).difference(ADDED_PARAMETERS) <= set(stored):
        return stored
    return {**{name: PARAMETERS[name].default for name in ADDED_PARAMETERS}, **stored}


def val_accuracy(attrs: dict[str, Any], value: float | None) -> float | None:
    """A trial's plain validation accuracy: as recorded, or (before objectives) its value."""
    return attrs.get("val_accuracy", value)


def evaluation(data: dict[str, Any]) -> dict[str, Any]:
    """An evaluation record as the current format has it (absent files: none named)."""
    selection = {"temperatures": {}, "flips": {}, **data["selection"]}
    return {**data, "selection": selection, "files": data.get("files") or {}}
