"""An exported model on new image files: each decoded as training images are
(`tuner.data.images.decode_image`), its most probable classes named by the export's
`labels.json`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tuner.data.images import decode_image
from tuner.errors import UserError

CHUNK = 256  # images decoded and predicted at a time: memory stays bounded on any folder
MAX_SIDE = 8192  # pixels: an input.json asking for more is not one tune wrote


@dataclass(frozen=True)
class Exported:
    """What `tune best --export` wrote that a prediction needs."""

    model_path: Path
    labels: list[str]  # class names in the model's output order
    shape: tuple[int, int, int]  # height, width, channels
    recorded_sha256: str | None = None  # model.keras's checksum in metrics.json


def model_changed(exported: Exported) -> bool:
    """Whether model.keras is not the file the export recorded (replaced or damaged since)."""
    from tuner.store.artifacts import sha256_of

    return exported.recorded_sha256 is not None and sha256_of(exported.model_path) != exported.recorded_sha256


@dataclass(frozen=True)
class Prediction:
    file: str  # as named (bytes that are not UTF-8 as Python's surrogates); `wording.printable` shows it
    top: list[tuple[str, float]]  # (class name, probability), most probable first


def read_export(path: Path) -> Exported:
    """The export's model, class names and input size, or one line saying what is missing. `path`
    is the export folder (its model.keras, the ensemble) or one of its .keras files
    (best_trial.keras: the best trial alone)."""
    folder, model = (path.parent, path) if path.suffix == ".keras" and not path.is_dir() else (path, path / "model.keras")
    if not model.is_file():
        where = (f"{path}: no such file or folder" if not path.exists() else
                 f"{folder}: no model.keras file here" if model.parent == path else f"{model}: not a file")
        raise UserError(f"{where}; pass a folder written by `tune best --export`, or one of its .keras files")
    labels, spec = _json(folder / "labels.json"), _json(folder / "input.json")
    names = [labels.get(str(i)) for i in range(len(labels))]
    shape = tuple(spec.get(key) for key in ("height", "width", "channels"))
    whole = all(type(n) is int and 1 <= n <= MAX_SIDE for n in shape)  # not a bool, a float or a string
    if len(names) < 2 or not all(isinstance(n, str) for n in names):
        raise UserError(f"{folder / 'labels.json'}: not what `tune best --export` writes (class names under keys 0, 1, ...)")
    if not whole or shape[2] not in (1, 3):
        raise UserError(f"{folder / 'input.json'}: not what `tune best --export` writes (height, width, channels 1 or 3)")
    recorded = _json(folder / "metrics.json").get("sha256", {}) if (folder / "metrics.json").is_file() else {}
    checksum = recorded.get(model.name) if isinstance(recorded, dict) else None
    return Exported(model, names, shape, checksum if isinstance(checksum, str) else None)  # type: ignore[arg-type]


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        why = ("an export made before class names and input sizes were kept: `tune ensemble --reevaluate`, then "
               "`tune best --export`"
               if (path.parent / "metrics.json").is_file() else "not a folder written by `tune best --export`")
        raise UserError(f"{path.parent}: no {path.name} ({why})") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read it ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not what `tune best --export` writes")
    return data


@dataclass(frozen=True)
class Inputs:
    """The image files a prediction reads, and what it left out of the folders named."""

    files: list[Path]
    hidden: int = 0  # under a folder, names starting with "."
    not_files: tuple[Path, ...] = ()  # under a folder: dangling links, pipes, folders that cannot be read
    repeated: int = 0  # files named more than once (twice, or through a folder and a link): predicted once


def image_files(paths: list[Path]) -> Inputs:
    """The files named, and every file under the folders named (hidden ones left out, links to
    folders followed), in order, each once."""
    files, walked = [], {}
    for path in paths:
        if path.is_dir():
            if path.resolve() not in walked:  # a folder named twice is walked once, its files counted twice
                walked[path.resolve()] = _walk(path)
            files += walked[path.resolve()].files
        elif path.is_file():
            files.append(path)
        elif path.exists() or path.is_symlink():
            raise UserError(f"{path}: not a regular file or folder")
        else:
            raise UserError(f"{path}: no such file or folder")
    once = _each_once(files)
    if not once:
        raise UserError(f"no files in {', '.join(map(str, paths))}")
    return Inputs(once, sum(w.hidden for w in walked.values()),
                  tuple(p for w in walked.values() for p in w.not_files), _named_again(files))


def _walk(folder: Path) -> Inputs:
    """A folder's files, links to folders followed, each real folder once (a link to a folder
    above it is no loop); names starting with "." are left out and counted."""
    files, hidden, not_files, seen = [], 0, [], set()
    for top, dirs, names in os.walk(folder, followlinks=True, onerror=lambda e: not_files.append(Path(e.filename))):
        if os.path.realpath(top) in seen:
            dirs[:] = []
            continue
        seen.add(os.path.realpath(top))
        hidden += sum(_count_files(Path(top, d)) for d in dirs if d.startswith("."))
        hidden += sum(name.startswith(".") for name in names)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for entry in (Path(top, name) for name in sorted(names) if not name.startswith(".")):
            (files if entry.is_file() else not_files).append(entry)
    return Inputs(files, hidden, tuple(not_files))


def _count_files(folder: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(folder))


def _identity(file: Path) -> tuple[int, int]:
    status = file.stat()
    return status.st_dev, status.st_ino


def _each_once(files: list[Path]) -> list[Path]:
    """Each file at its first naming: the same file under two names (a link) is one file."""
    seen: dict[tuple[int, int], Path] = {}
    for file in files:
        seen.setdefault(_identity(file), file)
    return list(seen.values())


def _named_again(files: list[Path]) -> int:
    """How many files were named more than once (each counted once, however often named)."""
    from collections import Counter

    return sum(n > 1 for n in Counter(map(_identity, files)).values())


def predict_files(exported: Exported, files: list[Path], top: int,
                  progress: Callable[[int, int], None] = lambda done, total: None) -> tuple[list[Prediction], list[Path]]:
    """Each readable file's `top` classes, and the files that could not be read as images."""
    from tuner.keras_backend import load_keras

    load_keras()
    model = _load(exported.model_path)
    if tuple(model.input_shape[1:]) != exported.shape or model.output_shape[-1] != len(exported.labels):
        raise UserError(f"{exported.model_path}: the model takes {model.input_shape[1:]} and gives "
                        f"{model.output_shape[-1]} outputs, but input.json and labels.json say {exported.shape} "
                        f"and {len(exported.labels)} classes")
    predictions: list[Prediction] = []
    unreadable: list[Path] = []
    for start in range(0, len(files), CHUNK):
        chunk = files[start:start + CHUNK]
        images = [decode_image(str(f), *exported.shape) for f in chunk]
        readable = [(f, x) for f, x in zip(chunk, images) if x is not None]
        unreadable += [f for f, x in zip(chunk, images) if x is None]
        if readable:
            probs = np.asarray(model.predict(np.stack([x for _, x in readable]).astype(np.float32), verbose=0))
            predictions += [_ranked(str(f), p, exported.labels, top) for (f, _), p in zip(readable, probs)]
        progress(start + len(chunk), len(files))
    return predictions, unreadable


def _load(path: Path):
    import keras

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:  # a truncated or foreign file: Keras raises many kinds
        raise UserError(f"{path}: not a readable Keras model ({type(e).__name__}); export it again") from None


def _ranked(file: str, probs: np.ndarray, labels: list[str], top: int) -> Prediction:
    order = np.argsort(-probs, kind="stable")[:top]
    return Prediction(file, [(labels[i], float(probs[i])) for i in order])
