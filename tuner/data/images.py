"""Decode a folder of class subfolders into uint8 arrays.

Photo folders hold images of any size and mode; each is converted to the space's channels and
resized to its input size (bilinear, no aspect-ratio crop: what Keras's
`image_dataset_from_directory` does). Unreadable files are skipped and counted, never silently.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from tuner.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


@dataclass(frozen=True)
class DecodedFolder:
    x: np.ndarray  # (n, height, width, channels) uint8
    y: np.ndarray  # (n,) int64 class indices
    skipped: list[str]  # files that could not be read


# Folders an archiver adds beside the user's (macOS's Archive Utility: resource forks): never a class.
ARCHIVER_FOLDERS = frozenset({"__MACOSX"})


def find_root(folder: Path) -> Path:
    """Descend through a lone wrapper folder (archives often have one)."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name not in ARCHIVER_FOLDERS]
    if len(entries) == 1 and entries[0].is_dir():
        return find_root(entries[0])
    return folder


def class_folders(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and p.name not in ARCHIVER_FOLDERS), key=lambda p: p.name)


def _decode_one(args: tuple[str, int, int, int]) -> np.ndarray | None:
    return decode_image(*args)


def decode_image(path: str, height: int, width: int, channels: int) -> np.ndarray | None:
    """One image file as (height, width, channels) uint8, converted and resized as training
    images are; None if it cannot be read."""
    from PIL import Image

    try:
        with warnings.catch_warnings(), _opened(path) as img:
            img = _eight_bit(img)
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (width, height):
                img = img.resize((width, height), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except Exception:  # PIL raises many kinds for broken files; all mean "unreadable"
        return None
    return arr[..., None] if channels == 1 else arr


@contextlib.contextmanager
def _opened(path: str) -> Iterator[Any]:
    from PIL import Image

    warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # a large photo is still one image
    with Image.open(path) as img:
        yield img


def _eight_bit(img: Any) -> Any:
    """16-bit, 32-bit and float grey images scaled to 8 bits (PIL's own convert clips them:
    a 16-bit PNG became all 255). Other modes convert correctly as they are."""
    from PIL import Image

    if not img.mode.startswith(("I", "F")):
        return img
    # float32, in place: float64 copies of a large 16-bit file (a small PNG can hold 13,000 pixels a
    # side) took several times the decoded image in memory.
    # Exact enough: 16-bit values are exact in float32, and x / 257 is never within 0.002 of a half.
    arr = np.array(img, dtype=np.float32)
    high = arr.max(initial=0)
    if arr.min(initial=0) < 0 or not np.isfinite(arr).all():
        raise ValueError(f"{img.mode} pixels outside 0 and up")
    if img.mode.startswith("I;16") or 255 < high <= 65535 and img.mode == "I":
        arr /= 257
    elif img.mode == "F" and high <= 1:
        arr *= 255
    elif high > 255:
        raise ValueError(f"{img.mode} pixels reach {high:g}")
    return Image.fromarray(np.round(arr, out=arr).astype(np.uint8))


def _check_fits_in_memory(folder: Path, n_files: int, shape: tuple[int, int, int]) -> None:
    """Refuse up front a folder whose decoded images would not fit in memory (twice: the
    split copies them), rather than fail with MemoryError after minutes of decoding."""
    import psutil

    need = 2 * n_files * int(np.prod(shape))
    free = psutil.virtual_memory().available
    if need > free:
        raise UserError(f"{folder}: {n_files} images of {'x'.join(map(str, shape))} need about {need / 2**30:.1f} GiB "
                        f"of memory decoded; {free / 2**30:.1f} GiB is free. Use a smaller input size in the space")


POOL_FROM = 2000  # images, past which a folder is decoded by a pool of processes


def decode_folder(folder: Path, classes: list[str], shape: tuple[int, int, int]) -> DecodedFolder:
    """Decode `folder/<class>/*` for the given class order; other subfolders are an error."""
    found = [p.name for p in class_folders(folder)]
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise UserError(f"{folder}: classes {unknown} are not among the training classes")
    files: list[tuple[str, int]] = []
    # Dangling links, links to folders (not followed), pipes: skipped, and counted as such.
    not_files: list[str] = []
    for label, name in enumerate(classes):
        sub = folder / name
        if sub.is_dir():
            entries = [p for p in sorted(sub.rglob("*")) if not p.name.startswith(".")
                       and not (p.is_dir() and not p.is_symlink())]
            files += [(str(p), label) for p in entries if p.is_file()]
            not_files += [str(p) for p in entries if not p.is_file()]
    height, width, channels = shape
    _check_fits_in_memory(folder, len(files), shape)
    jobs = [(path, height, width, channels) for path, _ in files]
    workers = max(1, min(len(os.sched_getaffinity(0)), 16))
    # A daemonic process (the checks', a search worker's) may not start children: it decodes
    # alone (CIFAR-10's 50,000 JPEGs: 6 s with two processes on the 2-core machine, 15 s with two
    # threads, which the GIL serializes).
    if len(jobs) > POOL_FROM and workers > 1 and not multiprocessing.current_process().daemon:
        # spawn, not fork: the parent may already hold TensorFlow's or JAX's threads.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            decoded = list(pool.map(_decode_one, jobs, chunksize=256))
    else:
        decoded = [_decode_one(j) for j in jobs]
    keep = [i for i, arr in enumerate(decoded) if arr is not None]
    skipped = [files[i][0] for i, arr in enumerate(decoded) if arr is None] + not_files
    x = np.stack([decoded[i] for i in keep]) if keep else np.zeros((0, *shape), np.uint8)
    y = np.array([files[i][1] for i in keep], dtype=np.int64)
    return DecodedFolder(x, y, skipped)
