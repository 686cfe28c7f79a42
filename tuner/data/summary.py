"""What a study's data holds, from its split record (`SplitInfo.to_dict`, kept in the study):
classes with their images in train / validation / test, and the warnings worth reading before a
budget is spent. The search shows it as it starts; `tune leaderboard --json` and `tune best`
show it again."""

from __future__ import annotations

from typing import Any

from tuner.data import imbalance
from tuner.wording import plural

FEW_IMAGES = 10  # a class with fewer validation or test images than this has a noisy figure there
IMBALANCE_WARNING = 3.0  # largest over smallest training class: past this, suggest the balanced objective
FEW_STEPS = 10  # training steps per epoch at the largest batch size: fewer and an epoch says little


def batch_sizes(space: dict[str, Any]) -> list[int]:
    """The batch sizes a stored space can propose (its `batch_size` fixed, searched, or the default)."""
    from tuner.space.params import PARAMETERS

    spec = space.get("params", {}).get("batch_size", PARAMETERS["batch_size"].default)
    if isinstance(spec, dict):
        return [int(v) for v in spec.get("choices") or [spec["low"], spec["high"]]]
    return [int(spec)]


def data_warnings(split: dict[str, Any], space: dict[str, Any]) -> list[str]:
    """One line per problem: few images of a class, a class missing from a split, imbalance,
    few steps per epoch. Empty for a study recorded before class counts were kept."""
    names, counts = split.get("class_names") or [], split.get("class_counts") or {}
    if not names or not counts or not space:  # a damaged record's: its own line says so
        return []
    warnings = _few_and_missing(names, counts)
    warnings += _imbalanced(names, counts.get("train", []), space)
    largest = max(batch_sizes(space))
    steps = split["n_train"] // min(largest, split["n_train"]) if split.get("n_train") else 0
    if steps < FEW_STEPS:
        warnings.append(f"{plural(steps, 'training step')} an epoch at batch size {largest} ({split['n_train']} training "
                        f"images): an epoch is a few updates; smaller batch sizes give more")
    return warnings


def _few_and_missing(names: list[str], counts: dict[str, list[int]]) -> list[str]:
    lines = []
    for part, label in (("val", "validation"), ("test", "test")):
        few = [f"{n} ({c})" for n, c in zip(names, counts.get(part, [])) if 0 < c < FEW_IMAGES]
        if few:
            lines.append(f"fewer than {FEW_IMAGES} {label} images of {', '.join(few)}: their {label} accuracy is noisy")
        missing = [n for n, c in zip(names, counts.get(part, [])) if c == 0]
        if missing:
            lines.append(f"no {label} images of {', '.join(missing)}: the {label} figures say nothing about "
                         f"{'it' if len(missing) == 1 else 'them'}")
    return lines


def _imbalanced(names: list[str], train: list[int], space: dict[str, Any]) -> list[str]:
    ratio = imbalance(train)
    if ratio <= IMBALANCE_WARNING:
        return []
    present = [(c, n) for n, c in zip(names, train) if c > 0]
    (most, big), (least, small) = max(present), min(present)
    line = f"classes imbalanced {ratio:.1f}:1 in training ({big}: {most} images, {small}: {least})"
    if (space.get("training") or {}).get("objective") != "balanced_accuracy":
        line += "; consider `training.objective: balanced_accuracy` and `class_weight: balanced` in the space"
    return [line]


def class_rows(split: dict[str, Any]) -> list[tuple[str, int | None, int | None, int | None]]:
    """(class, train, validation, test) images per class."""
    counts = split.get("class_counts") or {}

    def at(part: str, c: int) -> int | None:
        values = counts.get(part) or []
        return values[c] if c < len(values) else None

    return [(name, at("train", c), at("val", c), at("test", c)) for c, name in enumerate(split.get("class_names") or [])]
