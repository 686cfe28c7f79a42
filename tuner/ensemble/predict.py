"""An exported model on new image files: each decoded as training images are
(`tuner.data.images.decode_image`), its most probable classes named by the export's
`labels.json`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tuner.data.images import decode_image
from tuner.errors import UserError

CHUNK = 256  # images decoded and predicted at a time: memory stays bounded on any folder


@dataclass(frozen=True)
class Exported:
    """What `tune best --export` wrote that a prediction needs."""

    model_path: Path
    labels: list[str]  # class names in the model's output order
    shape: tuple[int, int, int]  # height, width, channels


@dataclass(frozen=True)
class Prediction:
    file: str
    top: list[tuple[str, float]]  # (class name, probability), most probable first


def read_export(folder: Path) -> Exported:
    """The export's model, class names and input size, or one line saying what is missing."""
    if not (folder / "model.keras").is_file():
        raise UserError(f"{folder}: no model.keras here; pass a folder written by `tune best --export`")
    labels, spec = _json(folder / "labels.json"), _json(folder / "input.json")
    try:
        names = [str(labels[str(i)]) for i in range(len(labels))]
        shape = (int(spec["height"]), int(spec["width"]), int(spec["channels"]))
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{folder}: labels.json or input.json is not what `tune best --export` writes") from None
    if len(names) < 2 or min(shape) < 1 or shape[2] not in (1, 3):
        raise UserError(f"{folder}: labels.json or input.json is not what `tune best --export` writes")
    return Exported(folder / "model.keras", names, shape)


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path.parent}: no {path.name} (an export made before class names were kept: "
                        f"`tune ensemble --reevaluate`, then `tune best --export`)") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read it ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not what `tune best --export` writes")
    return data


def image_files(paths: list[Path]) -> list[Path]:
    """The files named, and every file under the folders named (hidden ones left out), in order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path)))
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"{path}: no such file or folder")
    if not files:
        raise UserError(f"no files in {', '.join(map(str, paths))}")
    return files


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def predict_files(exported: Exported, files: list[Path], top: int,
                  progress: Callable[[int, int], None] = lambda done, total: None) -> tuple[list[Prediction], list[Path]]:
    """Each readable file's `top` classes, and the files that could not be read as images."""
    from tuner.keras_backend import load_keras

    load_keras()
    import keras

    model = keras.saving.load_model(exported.model_path, compile=False)
    if model.output_shape[-1] != len(exported.labels):
        raise UserError(f"{exported.model_path}: {model.output_shape[-1]} outputs but labels.json names "
                        f"{len(exported.labels)} classes")
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


def _ranked(file: str, probs: np.ndarray, labels: list[str], top: int) -> Prediction:
    order = np.argsort(-probs, kind="stable")[:top]
    return Prediction(file, [(labels[i], float(probs[i])) for i in order])
