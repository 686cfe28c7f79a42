"""Check 1, the data audit: the three splits as the study makes them, looked at before any
training. Counts per class, exact duplicates (by content hash) across splits and within train,
one image under two labels, blank images, pixel statistics per channel, what the reader skipped or converted.

The test split's images are hashed here and compared with the others: nothing is fitted or
scored on them, and no figure of the audit depends on a model."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from tuner.check.findings import Finding, Status
from tuner.wording import listed

LEAK_FAIL = 0.01  # share of a split's images copied from another split past which the split is not held out
CONFLICT_FAIL = 0.01  # share of images under two labels past which the labels are not to be trusted
IMBALANCE_WARN = 3.0  # largest class over smallest
SHIFT_WARN = 0.1  # difference of a channel's mean between train and test, as a share of 255


@dataclass(frozen=True)
class Splits:
    """Images and labels of each split, and the names of the classes."""

    x: dict[str, np.ndarray]  # "train", "validation", "test"
    y: dict[str, np.ndarray]
    class_names: list[str]
    notes: tuple[str, ...] = ()  # what the reader skipped (unreadable files)


def image_hashes(x: np.ndarray) -> list[bytes]:
    """A content hash per image (its pixels and shape): equal exactly when the images are."""
    return [hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest() for image in x]


def audit(splits: Splits) -> list[Finding]:
    # Constant images are the blank-images check's: 300 blank ones across the splits made
    # "copies across splits" fail, blaming a leak for what blank images are.
    kept = {name: ~_constant(x) for name, x in splits.x.items()}
    hashes = {name: [h for h, k in zip(image_hashes(x), kept[name]) if k] for name, x in splits.x.items()}
    labels = {name: y[kept[name]] for name, y in splits.y.items()}
    return [balance(splits), leaks(hashes), repeats(hashes["train"]), conflicts(hashes, labels),
            blanks(splits.x), pixels(splits.x), reading(splits.notes)]


def _constant(x: np.ndarray) -> np.ndarray:
    """Per image, whether every pixel has one value."""
    return np.ptp(x.reshape(len(x), -1), axis=1) == 0 if len(x) else np.zeros(0, bool)


def balance(splits: Splits) -> Finding:
    k = len(splits.class_names)
    counts = {name: np.bincount(y, minlength=k) for name, y in splits.y.items()}
    present = counts["train"][counts["train"] > 0]
    ratio = present.max() / present.min() if len(present) else 1.0  # among the classes train has
    ranges = ", ".join(f"{name} {c.min():,}-{c.max():,}" for name, c in counts.items())
    evidence = f"{k} classes; images a class: {ranges}; train ratio {ratio:.2f} (largest class over smallest)"
    empty = [f"'{splits.class_names[c]}' in {name}" for name, cs in counts.items() for c in np.flatnonzero(cs == 0)]
    if empty:
        return Finding("data: classes", Status.FAIL, f"no image of {listed(empty)}; {evidence}")
    if ratio > IMBALANCE_WARN:
        return Finding("data: classes", Status.WARN, f"imbalanced ({evidence}): consider prior_bias and "
                                                     "class_weight: balanced, and the balanced_accuracy objective")
    return Finding("data: classes", Status.PASS, evidence)


def leaks(hashes: dict[str, list[bytes]]) -> Finding:
    """Images of validation or test that are exact copies of an image of an earlier split."""
    seen: set[bytes] = set()
    parts, worst = [], 0.0
    for name in ("train", "validation", "test"):
        if seen and hashes[name]:
            copies = sum(h in seen for h in hashes[name])
            parts.append(f"{copies:,} of {len(hashes[name]):,} {name} images copy an earlier split's")
            worst = max(worst, copies / len(hashes[name]))
        seen.update(hashes[name])
    evidence = "; ".join(parts) or "one split only"
    status = Status.FAIL if worst > LEAK_FAIL else Status.WARN if worst > 0 else Status.PASS
    return Finding("data: copies across splits", status,
                   evidence + ("" if status is Status.PASS else ": the held-out figures count images the model trained on"))


def repeats(train: list[bytes]) -> Finding:
    extra = len(train) - len(set(train))
    share = extra / max(len(train), 1)
    evidence = f"{extra:,} of {len(train):,} training images repeat another ({100 * share:.2f}%)"
    return Finding("data: repeats in train", Status.WARN if share > LEAK_FAIL else Status.PASS, evidence)


def conflicts(hashes: dict[str, list[bytes]], labels: dict[str, np.ndarray]) -> Finding:
    """The same image under two labels, anywhere in the data."""
    seen: dict[bytes, set[int]] = defaultdict(set)
    for name, hs in hashes.items():
        for h, y in zip(hs, labels[name].tolist()):
            seen[h].add(y)
    total = sum(len(hs) for hs in hashes.values())
    mixed = sum(len(ys) > 1 for ys in seen.values())
    evidence = f"{mixed:,} of {total:,} images carry two or more labels"
    status = Status.FAIL if mixed / max(total, 1) > CONFLICT_FAIL else Status.WARN if mixed else Status.PASS
    return Finding("data: one image, two labels", status, evidence)


def blanks(x: dict[str, np.ndarray]) -> Finding:
    counts = {name: int(_constant(a).sum()) for name, a in x.items()}
    evidence = "constant images: " + ", ".join(f"{n:,} in {name}" for name, n in counts.items())
    return Finding("data: blank images", Status.WARN if any(counts.values()) else Status.PASS, evidence)


def pixels(x: dict[str, np.ndarray]) -> Finding:
    """Mean and standard deviation per channel; a test split whose means differ from train's."""
    stats = {name: (a.reshape(-1, a.shape[-1]).mean(0), a.reshape(-1, a.shape[-1]).std(0)) for name, a in x.items() if len(a)}
    mean, std = stats["train"]
    evidence = "train mean " + "/".join(f"{m:.1f}" for m in mean) + ", std " + "/".join(f"{s:.1f}" for s in std)
    if (std == 0).any():
        return Finding("data: pixels", Status.FAIL, evidence + ": a channel is constant")
    if "test" in stats:
        shift = float(np.abs(stats["test"][0] - mean).max()) / 255
        evidence += f"; test means differ by up to {100 * shift:.1f}% of the range"
        if shift > SHIFT_WARN:
            return Finding("data: pixels", Status.WARN, evidence + ": test images are not drawn like train's")
    return Finding("data: pixels", Status.PASS, evidence)


def reading(notes: tuple[str, ...]) -> Finding:
    """What the reader said: files skipped, pixels or labels converted, a cache it could not write."""
    if notes:
        return Finding("data: reading", Status.WARN, "; ".join(notes))
    return Finding("data: reading", Status.PASS, "no file skipped, no pixel or label values rescaled (images of "
                                                 "other sizes or colour modes are resized and converted, as for training)")
