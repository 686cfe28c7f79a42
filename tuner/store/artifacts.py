"""`Artifacts`: the files beside the database, under `<results>/<study>/`.

Every path starts at the study folder and is checked to stay inside the results folder once
links are followed. Each file is written to a temporary name and renamed, so a half-written
file is never read; files a record names carry their checksum.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from tuner.errors import UserError
from tuner.paths import atomic, check_can_write, check_study_name, inside
from tuner.store import migrate
from tuner.store.records import FileEntry, TrialRecord


class Artifacts:
    def __init__(self, results_dir: Path, database: Path | None):
        self.results_dir = results_dir
        self.database = database  # the SQLite file, if the storage is one: no study folder may be it

    # --- folders ---------------------------------------------------------------------------
    def study_dir(self, name: str) -> Path:
        """`<results>/<study>`: every artifact path starts here, so none can land outside. A name
        that is the database's own file (or its journal) is refused: that folder would break it."""
        folder = inside(self.results_dir, self.results_dir / check_study_name(name))
        database = self.database
        if database is not None and database.parent.resolve() == folder.parent.resolve() \
                and name.startswith(database.name):
            raise UserError(f"study name {name!r} is taken by the study database {database} (and its journal files)")
        if folder.exists() and not folder.is_dir():
            raise UserError(f"study name {name!r}: {folder} is a file, not a study folder")
        return folder

    def folder(self, name: str, *parts: str) -> Path:
        """A folder under the study's, checked again once links are followed (a link planted below
        the study folder cannot lead outside either)."""
        return inside(self.results_dir, self.study_dir(name).joinpath(*parts))

    def trial_dir(self, name: str, number: int) -> Path:
        return self.folder(name, "trials", str(int(number)))

    def delete_study_dir(self, name: str) -> None:
        """The study's folder and all in it (its logs, its validation labels): a new study that ran no trial."""
        import shutil

        shutil.rmtree(self.study_dir(name), ignore_errors=True)

    def check_writable(self, name: str) -> None:
        """Before a search does any work: its folders can be written (nothing is created)."""
        database = [self.database.parent] if self.database else []
        for folder in [self.results_dir, self.study_dir(name)] + database:
            check_can_write(folder)

    def check_no_links_out(self, name: str) -> None:
        """Before a search writes anything: no link anywhere under the study folder leads outside
        the results folder (KerasTuner's own files and the worker logs are written there too)."""
        folder = self.study_dir(name)
        for dirpath, dirnames, filenames in os.walk(folder) if folder.is_dir() else []:
            for entry in dirnames + filenames:
                path = Path(dirpath) / entry
                if path.is_symlink():
                    inside(self.results_dir, path)

    # --- a trial's files ---------------------------------------------------------------------
    def write_json(self, path: Path, data: Any) -> None:
        atomic(inside(self.results_dir, path), lambda tmp: tmp.write_text(json.dumps(data, indent=1, default=_jsonable)))

    def save_trial_files(self, name: str, record: TrialRecord, val_views: np.ndarray | None) -> None:
        """Params, history and the validation predictions, (views, n, classes)."""
        folder = self.trial_dir(name, record.number)
        self.write_json(folder / "params.json", record.params)
        self.write_json(folder / "history.json", record.history)
        if val_views is not None:
            atomic(folder / "val_probs.npy", lambda tmp: np.save(tmp, val_views.astype(np.float32), allow_pickle=False),
                   suffix=".npy")

    def save_model(self, name: str, number: int, model: Any) -> None:
        self.save_model_file(self.trial_dir(name, number) / "model.keras", model)

    def save_model_file(self, path: Path, model: Any) -> None:
        atomic(inside(self.results_dir, path), lambda tmp: model.save(tmp), suffix=".keras")

    def model_path(self, name: str, number: int) -> Path | None:
        path = self.trial_dir(name, number) / "model.keras"
        return path if path.is_file() else None

    def val_views(self, name: str, number: int) -> np.ndarray | None:
        """(views, n, classes): the plain images' predictions and, for a trial trained on flips,
        the mirrors'."""
        try:
            views = np.load(self.trial_dir(name, number) / "val_probs.npy", allow_pickle=False)
        except (OSError, ValueError):
            return None
        return migrate.views(views)

    def keep_models(self, name: str, keep: set[int]) -> None:
        """Delete the model files of trials not in `keep` (disk stays bounded)."""
        folder = self.study_dir(name) / "trials"
        for path in folder.glob("*/model.keras") if folder.is_dir() else []:
            if path.parent.name.isdigit() and int(path.parent.name) not in keep:
                path.unlink(missing_ok=True)

    # --- the study's files -------------------------------------------------------------------
    def save_val_labels(self, name: str, labels: np.ndarray) -> None:
        """The validation labels, so the ensemble selection reads the store alone."""
        path = inside(self.results_dir, self.study_dir(name) / "val_labels.npy")
        atomic(path, lambda tmp: np.save(tmp, labels.astype(np.int64), allow_pickle=False), suffix=".npy")

    def val_labels(self, name: str) -> np.ndarray:
        try:
            return np.load(self.study_dir(name) / "val_labels.npy", allow_pickle=False)
        except (OSError, ValueError):
            raise UserError(f"study '{name}': no validation labels under {self.study_dir(name)} "
                            f"(is --results-dir the folder the search wrote to?)") from None

    def file_entry(self, name: str, path: Path) -> FileEntry:
        """What a record says of one of its files: where it is (in the study folder), its checksum."""
        return FileEntry(path.relative_to(self.study_dir(name)).as_posix(), sha256_of(path))

    def verified_file(self, name: str, entry: FileEntry) -> Path:
        """The recorded file, if it is there and unchanged; else one line."""
        path = inside(self.study_dir(name), self.study_dir(name) / entry.path)
        if not path.is_file():
            raise UserError(f"study '{name}': {path} is missing; run `tune ensemble --study {name} --reevaluate`")
        if sha256_of(path) != entry.sha256:
            raise UserError(f"study '{name}': {path} is not the file its record names (checksum differs); "
                            f"refused. Run `tune ensemble --study {name} --reevaluate`")
        return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")
