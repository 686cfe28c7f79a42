"""Data for a study: find the source, hold out the test split, fix the validation split.

The search gets a `SearchData` (train and validation only). The test split is reachable only
through `load_test_data`, which the ensemble step calls to evaluate and the checks
(`tuner.check`) to hash its images for copies of training images (nothing is scored on them); the split's record counts its
labels per class (what the data summary shows), never an image of it.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tuner.data.sources import RawDataset, find_and_read
from tuner.errors import UserError
from tuner.space.schema import Space
from tuner.wording import plural


@dataclass(frozen=True)
class SearchData:
    """What every trial trains and validates on; never the test split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    class_names: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


@dataclass(frozen=True)
class SplitInfo:
    """Stored with the study: every resume and every worker must reproduce it exactly."""

    source: str
    seed: int
    validation_fraction: float
    n_train: int
    n_val: int
    n_test: int
    fingerprint: str
    notes: list[str] = field(default_factory=list, compare=False)
    class_names: list[str] = field(default_factory=list)
    # Images per class in each split ("train", "val", "test"): labels only, no test image is read.
    class_counts: dict[str, list[int]] = field(default_factory=dict)
    input_shape: list[int] = field(default_factory=list)  # (height, width, channels) as trained
    # The test split's images and labels, hashed when the study is made (no model sees them): an
    # evaluation on any other test set is refused. None in a study made before it was recorded.
    test_fingerprint: str | None = field(default=None, compare=False)

    @property
    def imbalance(self) -> float:
        """The largest training class over the smallest (1.0: balanced)."""
        return imbalance(self.class_counts.get("train", []))

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def imbalance(counts: list[int]) -> float:
    """The largest class count over the smallest nonzero one (1.0: balanced, or no counts)."""
    present = [c for c in counts if c > 0]
    return max(present) / min(present) if present else 1.0


def _check(raw: RawDataset, space: Space) -> RawDataset:
    expected = space.input_shape
    if raw.x_train.shape[1:] != expected or (raw.x_test is not None and raw.x_test.shape[1:] != expected):
        got = "x".join(map(str, raw.x_train.shape[1:]))
        raise UserError(f"{raw.source}: images are {got} but space '{space.name}' ({space.dataset}) expects "
                        f"{'x'.join(map(str, expected))}; is it the right dataset?")
    n_classes = len(raw.class_names)
    labels = raw.y_train if raw.y_test is None else np.concatenate([raw.y_train, raw.y_test])
    if labels.size and labels.max() >= n_classes:
        raise UserError(f"{raw.source}: label {int(labels.max())} is out of range for {n_classes} classes")
    if len(np.unique(raw.y_train)) < 2:
        raise UserError(f"{raw.source}: needs at least 2 classes (found {len(np.unique(raw.y_train))})")
    return raw


SPLITTER = "sklearn.model_selection"  # what `_stratified` imports: 1.2 s of scikit-learn and SciPy


def import_splitter_in_background() -> None:
    """Import the splitter in a thread: a search's parent splits the data only after its checks,
    while it waits on them idle."""
    threading.Thread(target=importlib.import_module, args=(SPLITTER,), name="import-splitter", daemon=True).start()


def _stratified(y: np.ndarray, fraction: float, seed: int, what: str, names: list[str] | None = None,
                needed: int = 2, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) index arrays, stratified by class; each class needs `needed` images
    (`where`: what `y` is, for the message: "left after the test split")."""
    train_test_split = importlib.import_module(SPLITTER).train_test_split  # not for commands that only read studies

    counts = np.bincount(y)
    few = [int(c) for c in np.flatnonzero((counts > 0) & (counts < needed))]
    if few and names is not None:  # scikit-learn would name them by index
        listed = ", ".join(f"'{names[c]}' ({plural(int(counts[c]), 'image')})" if c < len(names) else str(c) for c in few)
        splits = "training, validation and test" if needed == 3 else "training and validation"
        raise UserError(f"cannot hold out a stratified {what} split: too few images{where} in class {listed}; every "
                        f"class needs at least {needed}, one for each of {splits} (more for useful figures)")
    held, classes = math.ceil(fraction * len(y)), int(np.count_nonzero(counts))  # as scikit-learn rounds it
    if min(held, len(y) - held) < classes:
        part = "holds out" if held < classes else "keeps"
        raise UserError(f"cannot hold out a stratified {what} split: {_SPLIT_KEYS[what]} {part} "
                        f"{min(held, len(y) - held)} of {len(y)} images, fewer than the {classes} classes (each needs one)")
    try:
        return train_test_split(np.arange(len(y)), test_size=fraction, random_state=seed, stratify=y)
    except ValueError as e:
        raise UserError(f"cannot hold out a stratified {what} split: {e}") from None


_SPLIT_KEYS = {"test": "training.test_fraction", "validation": "training.validation_fraction",
               "subset": "training.max_train_samples"}


def _pools(space: Space, data: Path | None, cache_dir: Path) -> tuple[RawDataset, np.ndarray, np.ndarray]:
    """The dataset, plus the indices of its search pool and its test split."""
    raw = _check(find_and_read(space.dataset, space.input_shape, data, cache_dir), space)
    if raw.x_test is not None:
        return raw, np.arange(len(raw.y_train)), np.array([], dtype=np.int64)
    pool, test = _stratified(raw.y_train, space.training.test_fraction, space.training.seed, "test",
                              raw.class_names, needed=3)
    return raw, np.sort(pool), np.sort(test)


def load_search_data(space: Space, data: Path | None, cache_dir: Path) -> tuple[SearchData, SplitInfo]:
    """Train and validation arrays for the search, and the split's record."""
    return _search_split(space, *_pools(space, data, cache_dir))


def load_test_data(space: Space, data: Path | None, cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The held-out test split: for the ensemble's final evaluation, and for the checks' hashes."""
    return _test_split(*_pools(space, data, cache_dir))


def load_all_splits(space: Space, data: Path | None, cache_dir: Path
                    ) -> tuple[SearchData, SplitInfo, tuple[np.ndarray, np.ndarray]]:
    """The search's splits and the test split from one read of the dataset (the checks hash all three)."""
    pools = _pools(space, data, cache_dir)
    return (*_search_split(space, *pools), _test_split(*pools))


def _search_split(space: Space, raw: RawDataset, pool: np.ndarray, test: np.ndarray) -> tuple[SearchData, SplitInfo]:
    t = space.training
    train_pos, val_pos = _stratified(raw.y_train[pool], t.validation_fraction, t.seed, "validation",
                                     raw.class_names,
                                     where=" left after the test split" if len(test) else "")
    train_idx, val_idx = np.sort(pool[train_pos]), np.sort(pool[val_pos])
    if t.max_train_samples and t.max_train_samples < len(train_idx):
        keep, _ = _stratified(raw.y_train[train_idx], 1 - t.max_train_samples / len(train_idx), t.seed, "subset")
        train_idx = np.sort(train_idx[keep])
    n_test = len(raw.y_test) if raw.y_test is not None else len(test)
    digest = hashlib.sha256()
    for arr in (train_idx, val_idx, raw.y_train[train_idx], raw.y_train[val_idx], raw.x_train[val_idx[:256]]):
        digest.update(np.ascontiguousarray(arr).tobytes())
    names = raw.class_names
    test_labels = raw.y_test if raw.y_test is not None else raw.y_train[test]
    counts = {split: np.bincount(labels, minlength=len(names)).tolist() for split, labels in
              (("train", raw.y_train[train_idx]), ("val", raw.y_train[val_idx]), ("test", test_labels))}
    info = SplitInfo(raw.source, t.seed, t.validation_fraction, len(train_idx), len(val_idx), n_test,
                     digest.hexdigest()[:16], raw.notes, list(names), counts, list(raw.x_train.shape[1:]),
                     fingerprint_of(*_test_split(raw, pool, test)))
    data_ = SearchData(raw.x_train[train_idx], raw.y_train[train_idx], raw.x_train[val_idx], raw.y_train[val_idx], names)
    return data_, info


def fingerprint_of(*arrays: np.ndarray) -> str:
    """16 hex digits of the arrays' shapes, types and bytes."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str((array.shape, array.dtype.str)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def _test_split(raw: RawDataset, pool: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one place the test split's images are taken from the dataset."""
    if raw.x_test is not None and raw.y_test is not None:
        return raw.x_test, raw.y_test
    return raw.x_train[test], raw.y_train[test]
