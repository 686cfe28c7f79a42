"""Every dataset is checked here, once, whatever its source, before any trial runs.

Images reach the model as uint8 pixels 0-255 and labels as int64 class indices. What has one
correct meaning is converted and said in a note (float pixels in [0, 1] are scaled by 255,
whole-number float labels and one-hot rows become indices); what has none is refused in one
line saying what was found (negative or standardized pixels, values above 255, NaN, lengths
that disagree, blank images).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from tuner.errors import UserError

if TYPE_CHECKING:
    from tuner.data.sources import RawDataset

MAX_CLASSES = 10_000


def validated(raw: RawDataset) -> RawDataset:
    """`raw` with uint8 images and int64 labels, or one line saying why it cannot be used."""
    if raw.checked:
        return raw
    if (raw.x_test is None) != (raw.y_test is None):
        raise UserError(f"{raw.source}: a test split needs both its images and its labels")
    notes = list(raw.notes)
    x_train = images(raw.x_train, f"{raw.source}: x_train", notes)
    y_train = labels(raw.y_train, f"{raw.source}: y_train", notes)
    _same_length(x_train, y_train, raw.source, "x_train", "y_train")
    x_test = y_test = None
    if raw.x_test is not None and raw.y_test is not None:
        x_test = _test_images(raw.x_test, raw.x_train, f"{raw.source}: x_test", notes)
        y_test = labels(raw.y_test, f"{raw.source}: y_test", notes)
        _same_length(x_test, y_test, raw.source, "x_test", "y_test")
        if x_test.shape[1:] != x_train.shape[1:]:
            raise UserError(f"{raw.source}: test images are {_shape(x_test)} but training images {_shape(x_train)}")
    if int(x_train.min()) == int(x_train.max()):
        raise UserError(f"{raw.source}: every training pixel is {int(x_train.min())}; the images are blank")
    names = raw.class_names or [str(i) for i in range(_n_classes(y_train, y_test))]
    return replace(raw, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, class_names=names,
                   notes=list(dict.fromkeys(notes)), checked=True)


def _on_unit_scale(x: np.ndarray) -> bool:
    """Pixels that `images` reads as 0-1 and scales to 0-255."""
    x = np.asarray(x)
    numeric = np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
    return x.dtype == np.bool_ or (numeric and x.size > 0 and bool(np.all(np.isfinite(x))) and x.max() <= 1)


def _test_images(x: np.ndarray, x_train: np.ndarray, what: str, notes: list[str]) -> np.ndarray:
    """The test images on the training images' scale: each split alone, a dark or blank test
    split of 0-255 images (pixels of 0 and 1 only) was read as a 0-1 one and scaled up."""
    x = np.asarray(x)
    if _on_unit_scale(x) and not _on_unit_scale(x_train) and x.dtype != np.bool_ and x.ndim in (3, 4) \
            and x.min() >= 0:
        if not np.array_equal(x, np.round(x)):
            raise UserError(f"{what}: pixels in [0, 1] while the training images' are 0-255; pass both splits on one "
                            f"scale")
        notes.append(f"{what}: pixels of 0 and 1 only, read as 8-bit values as the training images are")
        x = x.astype(np.uint8)
        return x[..., None] if x.ndim == 3 else x  # its shape is checked against the training images'
    return images(x, what, notes)


def images(x: np.ndarray, what: str, notes: list[str]) -> np.ndarray:
    """(n, height, width, channels) uint8."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        hint = "; channels first? (n, c, h, w) needs moving to (n, h, w, c)" if x.ndim == 4 and x.shape[1] in (1, 3) else ""
        raise UserError(f"{what}: images must be (n, height, width[, 1 or 3]); got shape {x.shape}{hint}")
    if x.size == 0:
        raise UserError(f"{what}: no images" if len(x) == 0 else f"{what}: images of shape {x.shape[1:]} hold no pixels")
    if x.dtype == np.uint8 and x.max() > 1:
        return x
    if x.dtype == np.bool_:
        notes.append(f"{what}: boolean pixels scaled to 0 and 255")
        return x.astype(np.uint8) * 255
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise UserError(f"{what}: pixels must be numbers (dtype {x.dtype})")
    return _to_uint8(x, what, notes)


def _to_uint8(x: np.ndarray, what: str, notes: list[str]) -> np.ndarray:
    if np.issubdtype(x.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            raise UserError(f"{what}: {bad} pixels are NaN or infinite")
    low, high = x.min().item(), x.max().item()
    if low < 0:
        raise UserError(f"{what}: pixels range over [{low:g}, {high:g}]; negative values (normalized or "
                        f"standardized images) have no single meaning: pass raw pixels 0-255 or 0-1")
    if high > 255:
        raise UserError(f"{what}: pixels reach {high:g} (dtype {x.dtype}); pass 8-bit pixels 0-255 "
                        f"(16-bit images: divide by 257 first)")
    if np.issubdtype(x.dtype, np.floating) and high <= 1:
        notes.append(f"{what}: {x.dtype} pixels in [0, 1] scaled to 0-255")
        return np.round(x * 255).astype(np.uint8)
    if high <= 1:  # 0 and 1 only: a binary image, as booleans are
        notes.append(f"{what}: {x.dtype} pixels of 0 and 1 only, scaled to 0 and 255")
        return x.astype(np.uint8) * 255
    if np.issubdtype(x.dtype, np.floating) and not np.array_equal(x, np.round(x)):
        notes.append(f"{what}: {x.dtype} pixels in [0, 255] rounded to whole values")
    else:
        notes.append(f"{what}: {x.dtype} pixels read as 8-bit values 0-255")
    return np.round(x).astype(np.uint8)


def labels(y: np.ndarray, what: str, notes: list[str]) -> np.ndarray:
    """(n,) int64 class indices, 0 or more."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2:
        y = _from_one_hot(y, what, notes)
    if y.ndim != 1:
        raise UserError(f"{what}: labels must be one class index per image, shape (n,); got shape {y.shape}")
    if y.dtype == np.bool_ or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise UserError(f"{what}: labels must be integer class indices (dtype {y.dtype})")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.array_equal(y, np.round(y)):
            raise UserError(f"{what}: labels must be whole class indices (found non-integer or NaN values)")
        notes.append(f"{what}: {y.dtype} labels read as class indices")
    if y.size and y.min() < 0:
        raise UserError(f"{what}: labels must be 0 or more (found {y.min().item():g})")
    if y.size and y.max() >= MAX_CLASSES:
        raise UserError(f"{what}: label {y.max().item():g} would mean more than {MAX_CLASSES} classes")
    return y.astype(np.int64)


def _from_one_hot(y: np.ndarray, what: str, notes: list[str]) -> np.ndarray:
    numeric = np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_
    if numeric and np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1):
        notes.append(f"{what}: one-hot labels ({y.shape[1]} columns) read as class indices")
        return y.argmax(axis=1)
    raise UserError(f"{what}: labels have shape {y.shape} but are not one-hot rows; pass one class index per image")


def _same_length(x: np.ndarray, y: np.ndarray, source: str, xs: str, ys: str) -> None:
    if len(x) != len(y):
        raise UserError(f"{source}: {xs} has {len(x)} images but {ys} has {len(y)} labels")


def _n_classes(y_train: np.ndarray, y_test: np.ndarray | None) -> int:
    """Both splits hold images (`images` refuses an empty one): the largest label names the count."""
    return int(y_train.max() if y_test is None else max(y_train.max(), y_test.max())) + 1


def _shape(x: np.ndarray) -> str:
    return "x".join(map(str, x.shape[1:]))
