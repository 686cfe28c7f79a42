"""Decoded image folders, cached: a folder is decoded once and read back from an .npz named by
its path, its files' count, sizes and newest change, the shape and the classes (a changed folder is
decoded again). A corrupt or foreign entry is decoded again and replaced; an unwritable cache
only costs decoding again next time."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

from tuner.paths import atomic

Arrays = tuple[np.ndarray, np.ndarray, "np.ndarray | None", "np.ndarray | None", list[str]]


def entry(cache_dir: Path, root: Path, shape: tuple[int, int, int], classes: list[str]) -> Path:
    key = hashlib.sha256(repr((str(root.resolve()), _tree_stamp(root), shape, classes)).encode()).hexdigest()[:20]
    return cache_dir / "decoded" / f"{key}.npz"


def read(cached: Path) -> Arrays | None:
    """(x_train, y_train, x_test, y_test, notes), or None when there is no entry or it cannot be read."""
    if not cached.is_file():
        return None
    try:
        with np.load(cached, allow_pickle=False) as f:
            test = (f["x_test"], f["y_test"]) if "x_test" in f.files else (None, None)
            return f["x_train"], f["y_train"], *test, list(f["notes"])
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None


def write(cached: Path, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray | None,
          y_test: np.ndarray | None, notes: list[str]) -> str | None:
    """Save the entry whole or not at all; a note if the cache cannot be written."""
    arrays = {"x_train": x_train, "y_train": y_train, "notes": np.array(notes, dtype=str)}
    if x_test is not None and y_test is not None:
        arrays |= {"x_test": x_test, "y_test": y_test}
    try:
        atomic(cached, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")
    except OSError as e:  # the cache only saves time: decode again next run
        return (f"cannot write the decode cache {cached.parent} ({e.strerror}); set TUNE_CACHE_DIR to "
                f"a writable folder to decode once")
    return None


def _tree_stamp(root: Path) -> tuple[int, int, int]:
    """File count, total size and newest change (modification or inode change, which a copy that
    keeps times cannot set back) of every file and folder under root: a folder with a file
    replaced in place is decoded again."""
    count, size, newest = 0, 0, 0
    for dirpath, _, filenames in os.walk(root):
        for path in [dirpath, *(os.path.join(dirpath, name) for name in filenames)]:
            try:
                stat = os.stat(path)
            except OSError:  # gone, or a dangling link: the decode says so
                continue
            size += stat.st_size if path != dirpath else 0
            newest = max(newest, stat.st_mtime_ns, stat.st_ctime_ns)
        count += len(filenames)
    return count, size, newest
