"""Find a dataset's files and read them into uint8 arrays.

Where `tune` looks, in order: `--data PATH` (or `$TUNE_DATA_DIR`), Keras's download cache,
Debian's `/usr/share/datasets`, scikit-learn's bundled digits, then `keras.datasets` online.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import unicodedata
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tuner import config
from tuner.wording import plural, printable
from tuner.data import decode_cache
from tuner.data.archives import extract, is_archive
from tuner.data.images import class_folders, decode_folder, find_root
from tuner.data.validate import validated
from tuner.errors import UserError

CLASS_NAMES = {
    "digits": [str(i) for i in range(10)],
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
DEBIAN_DIR = Path("/usr/share/datasets")
_IDX = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@dataclass(frozen=True)
class RawDataset:
    x_train: np.ndarray  # (n, h, w, c) uint8
    y_train: np.ndarray  # (n,) int64
    x_test: np.ndarray | None  # None: the data has no test split; one is held out by seed
    y_test: np.ndarray | None
    class_names: list[str]
    source: str
    notes: list[str] = field(default_factory=list)  # warnings worth one line each
    checked: bool = False  # by `validate.validated`: what it returns is, and is not checked again


def keras_cache_dir() -> Path:
    return config.keras_home() / "datasets"


def _names(dataset: str) -> list[str]:
    return [dataset, dataset.replace("_", "-")] + (["cifar-10-batches-py"] if dataset == "cifar10" else [])


def _entry_for(dataset: str, folder: Path) -> Path | None:
    """`folder/<dataset>.npz`, `.tar.gz`, `.zip` or `<dataset>/`, if present."""
    for name in _names(dataset):
        for suffix in (".npz", ".tar.gz", ".tgz", ".zip", ".tar", ""):
            if (folder / f"{name}{suffix}").exists():
                return folder / f"{name}{suffix}"
    return None


def read_npz(path: Path, class_names: list[str] | None) -> RawDataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
            if missing:
                raise UserError(f"{path}: missing arrays {sorted(missing)} (needs x_train, y_train, x_test, y_test)")
            arrays = [f[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    except UserError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: not a readable .npz ({type(e).__name__}: {e})") from None
    except MemoryError as e:  # a 1-KB file whose header claims 800 TB read as "out of memory", exit 1
        raise UserError(f"{path}: its arrays do not fit in this machine's memory ({e}): a damaged header, or data "
                        f"too large for this machine") from None
    return RawDataset(*arrays, class_names or [], str(path))  # checked by `validated`


def read_idx_folder(folder: Path, class_names: list[str]) -> RawDataset:
    def read(name: str, offset: int) -> np.ndarray:
        try:
            with gzip.open(folder / name, "rb") as f:
                return np.frombuffer(f.read(), np.uint8, offset=offset)
        except (OSError, EOFError, ValueError) as e:
            raise UserError(f"{folder / name}: unreadable ({e})") from None

    try:
        x_train, x_test = (read(_IDX[i], 16).reshape(-1, 28, 28, 1) for i in (0, 2))
    except ValueError:
        raise UserError(f"{folder}: the IDX image files are not whole 28x28 images") from None
    y_train, y_test = (read(_IDX[i], 8) for i in (1, 3))
    return RawDataset(x_train, y_train, x_test, y_test, class_names, str(folder))


class _ArraysOnly(pickle.Unpickler):
    """CIFAR-10's batches are pickles: only numpy arrays and plain containers may come out of
    one, never an arbitrary object (a pickle from elsewhere could run code)."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        return super().find_class(module, name)


def read_cifar_batches(folder: Path) -> RawDataset:
    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            with open(folder / name, "rb") as f:
                batch = _ArraysOnly(f, encoding="bytes").load()
            x = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            return x, np.asarray(batch[b"labels"])
        except (OSError, EOFError, ValueError, KeyError, TypeError, pickle.UnpicklingError) as e:
            raise UserError(f"{folder / name}: not a CIFAR-10 batch ({type(e).__name__}: {e})") from None

    parts = [read(f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = read("test_batch")
    return RawDataset(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                      x_test, y_test, CLASS_NAMES["cifar10"], str(folder))


def read_image_folder(folder: Path, shape: tuple[int, int, int], cache_dir: Path) -> RawDataset:
    """A folder of class subfolders, with optional train/ and test/ splits; decoded once, cached."""
    root = find_root(folder)
    train_dir = root / "train" if (root / "train").is_dir() else root
    test_dir = root / "test" if train_dir != root and (root / "test").is_dir() else None
    classes = [p.name for p in class_folders(train_dir)]
    if len(classes) < 2:
        raise UserError(_too_few_classes(folder if root != folder else train_dir))
    check_class_names(train_dir, classes)
    _check_no_split_as_class(train_dir, classes)
    descended = [f"{folder}: read the class folders of its lone subfolder {root.relative_to(folder)}/"] if root != folder else []
    cached = decode_cache.entry(cache_dir, root, shape, classes)
    hit = decode_cache.read(cached)
    if hit is not None:
        _check_every_class_has_images(train_dir, classes, hit[1], [])  # a cache written before the check
        return RawDataset(*hit[:4], classes, str(folder), descended + hit[4])
    train = decode_folder(train_dir, classes, shape)
    test = decode_folder(test_dir, classes, shape) if test_dir else None
    skipped = train.skipped + (test.skipped if test else [])
    notes = [f"skipped {plural(len(skipped), 'file')} in {folder} not readable as an image (e.g. {skipped[0]!r})"] if skipped else []
    if len(train.y) == 0:
        raise UserError(f"{folder}: no readable images (skipped {len(skipped)} files)")
    _check_every_class_has_images(train_dir, classes, train.y, train.skipped)
    raw = validated(RawDataset(train.x, train.y, test.x if test else None, test.y if test else None, classes,
                               str(folder), notes))  # refused data is not cached
    problem = decode_cache.write(cached, raw.x_train, raw.y_train, raw.x_test, raw.y_test, notes)
    return replace(raw, notes=descended + raw.notes + ([problem] if problem else []))


def read_path(path: Path, dataset: str, shape: tuple[int, int, int], cache_dir: Path) -> RawDataset:
    """Read whatever `path` is: .npz, archive, IDX folder, CIFAR batches or an image folder."""
    names = CLASS_NAMES.get(dataset)
    if path.is_file() and path.suffix == ".npz":
        return read_npz(path, names)
    if is_archive(path):
        key = hashlib.sha256(f"{path.resolve()}:{path.stat().st_size}:{path.stat().st_mtime_ns}".encode()).hexdigest()[:20]
        folder = extract(path, cache_dir / "archives" / key)
        # Named by the archive the user gave, not by its extraction in the cache: errors and notes.
        try:
            raw = read_image_folder(folder, shape, cache_dir)
        except UserError as e:
            raise UserError(str(e).replace(str(folder), str(path))) from None
        return replace(raw, source=str(path), notes=[note.replace(str(folder), str(path)) for note in raw.notes])
    if path.is_dir() and all((path / n).is_file() for n in _IDX):
        return read_idx_folder(path, names or [str(i) for i in range(10)])
    if path.is_dir() and (path / "data_batch_1").is_file():
        return read_cifar_batches(path)
    if path.is_dir():
        return read_image_folder(path, shape, cache_dir)
    raise UserError(f"{path}: not a .npz, an image folder or a .zip/.tar.gz archive")


def read_digits() -> RawDataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Pixel values are 0-16; scale to 0-255 so every dataset reaches the model as uint8.
    x = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]
    return RawDataset(x, digits.target.astype(np.int64), None, None, CLASS_NAMES["digits"], "scikit-learn digits")


def read_online(dataset: str) -> RawDataset:
    from tuner.keras_backend import load_keras

    load_keras()
    import keras

    loader = {"mnist": keras.datasets.mnist, "fashion_mnist": keras.datasets.fashion_mnist,
              "cifar10": keras.datasets.cifar10}[dataset]
    (x_train, y_train), (x_test, y_test) = loader.load_data()
    return RawDataset(x_train, y_train, x_test, y_test, CLASS_NAMES[dataset], f"keras.datasets.{dataset}")


def find_and_read(dataset: str, shape: tuple[int, int, int], data: Path | None, cache_dir: Path) -> RawDataset:
    """The first source that has `dataset`, checked (`validated`); one line saying where it
    looked when none does."""
    return validated(_find(dataset, shape, data, cache_dir))


def _find(dataset: str, shape: tuple[int, int, int], data: Path | None, cache_dir: Path) -> RawDataset:
    if data is not None:
        if not data.exists():
            raise UserError(f"--data {data}: no such file or folder")
        entry = _entry_for(dataset, data) if data.is_dir() else None
        return read_path(entry or data, dataset, shape, cache_dir)
    looked = []
    env_dir = config.data_dir()
    places = ([env_dir] if env_dir else []) + [keras_cache_dir(), DEBIAN_DIR]
    for place in places:
        looked.append(str(place))
        entry = _entry_for(dataset, place) if place.is_dir() else None
        if entry is not None:
            return read_path(entry, dataset, shape, cache_dir)
    if dataset == "digits":
        return read_digits()
    if dataset == "folder":
        raise UserError("the 'folder' space needs --data PATH (an image folder or a .zip/.tar.gz of one)")
    try:
        return read_online(dataset)
    except Exception as e:  # no network, a proxy error, a broken download: all end here
        looked.append(f"keras.datasets ({type(e).__name__})")
        raise UserError(f"no {dataset} data: looked in {', '.join(looked)}; pass --data PATH "
                        f"(a .npz with x_train/y_train/x_test/y_test, an image folder or an archive) "
                        f"or set TUNE_DATA_DIR") from None


def check_class_names(folder: Path, classes: list[str]) -> None:
    """A class is named by its folder everywhere (tables, reports, an export's labels.json): a
    name must print as written and differ from every other as text, not only as bytes."""
    if odd := [c for c in classes if printable(c) != c]:
        raise UserError(f"{folder}: the class folder '{printable(odd[0])}' has a control character or bytes that are "
                        f"not UTF-8 in its name; rename it (the name is the class's label everywhere)")
    seen: dict[str, str] = {}
    for name in classes:
        if (same := seen.setdefault(unicodedata.normalize("NFC", name), name)) != name:
            raise UserError(f"{folder}: the class folders '{same}' and '{name}' differ only in how their Unicode is "
                            f"written (they look the same); merge or rename one")


SPLIT_NAMES = ("train", "test", "val", "valid", "validation")  # folders that hold splits, not a class


def _check_no_split_as_class(folder: Path, classes: list[str]) -> None:
    """`test/` read as a class of every test image (no `train/` beside it) trained quietly."""
    if split := next((c for c in classes if c.lower() in SPLIT_NAMES), None):
        raise UserError(f"{folder}: a class folder is named '{split}', like a split: tune reads the splits as train/ "
                        f"and test/ side by side, each holding the class folders (lowercase); a validation split is "
                        f"taken from train/. Rename the folder if '{split}' is a class")


def _check_every_class_has_images(folder: Path, classes: list[str], y: np.ndarray, skipped: list[str]) -> None:
    """A class folder without a readable training image would still get an output of the model."""
    counts = np.bincount(y, minlength=len(classes))
    if not (empty := [c for c, n in zip(classes, counts) if n == 0]):
        return
    unreadable = [f for f in skipped if Path(f).relative_to(folder).parts[0] == empty[0]]
    why = (f"its {len(unreadable)} files are not readable images, e.g. '{printable(unreadable[0])}'" if unreadable
           else "it holds no image files")
    more = f" (and {len(empty) - 1} more class folders)" if len(empty) > 1 else ""
    raise UserError(f"{folder}: the class folder '{empty[0]}' has no training image: {why}{more}; add images "
                    f"or remove the folder")


def _too_few_classes(where: Path) -> str:
    """The folder a user named (not the lone subfolder it was read through) with what it holds,
    hidden folders too: a class folder named `.dogs` is skipped, and would otherwise vanish unsaid."""
    classes = [p.name for p in class_folders(where)]
    hidden = sorted(p.name for p in where.iterdir() if p.is_dir() and p.name.startswith("."))
    found = f"{len(classes)}{': ' + ', '.join(classes) if classes else ''}"
    skipped = f"; skipped as hidden (a name starting with '.'): {', '.join(hidden)}" if hidden else ""
    return f"{where}: needs at least 2 class subfolders, each holding its class's images (found {found}){skipped}"
