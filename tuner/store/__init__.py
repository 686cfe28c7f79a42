"""The store: typed records over Optuna's RDB storage, and the artifact files beside it.

`SearchStore` hands out one part per job, over one storage URL and one results folder:
`db` (opening and refusing databases), `studies` (the registry and each study's record),
`trials` (trial records), `artifacts` (files under `<results>/<study>/`) and `evaluations`
(test-set evaluations and their model files). Beside them: `records` (the typed records),
`stored` (what is read back, checked against the kinds tune writes),
`migrate` (the study format), `urls` (URLs with their secrets hidden) and `workers` (who runs
a trial, and whether that process is gone). Only the store and the engines import optuna,
and the store only as a database layer.
"""

from __future__ import annotations

import os
from pathlib import Path

from tuner.errors import UserError
from tuner.store.artifacts import Artifacts
from tuner.store.database import Database
from tuner.store.evaluations import Evaluations
from tuner.store.records import Evaluation, FileEntry, Selection, StudyInfo, TrialRecord, TrialState
from tuner.store.studies import Studies
from tuner.store.trials import Trials
from tuner.store.urls import default_storage_url, redact, scrub

__all__ = ["SearchStore", "Evaluation", "FileEntry", "Selection", "StudyInfo", "TrialRecord", "TrialState", "redact", "scrub"]


class SearchStore:
    """One storage URL plus one results folder. Only `create=True` (the search) may create a
    database or its folder; every other command opens what exists, or says there is nothing."""

    def __init__(self, url: str | None, results_dir: Path, heartbeat: bool = False, create: bool = False):
        self.results_dir = results_dir
        self.db = Database(url or default_storage_url(results_dir), heartbeat, create, own_folder=url is None)
        self.url = self.db.url
        self.studies = Studies(self.db)
        self.trials = Trials(self.db, self.studies)
        self.artifacts = Artifacts(results_dir, self.db.sqlite_file())
        self.evaluations = Evaluations(self.studies, self.artifacts)

    def check_writable(self, study: str) -> None:
        """One line, before any work, if a record or its files could not be written (a read-only
        copy of a results folder): said after the work, the test split had been read for nothing."""
        sqlite = self.db.sqlite_file()
        for place, what in ((sqlite, "study database"), (sqlite.parent if sqlite else None, "study database's folder"),
                            (self.results_dir, "results folder"), (self.artifacts.study_dir(study), "study's folder")):
            if place is not None and place.exists() and not os.access(place, os.W_OK | (os.X_OK * place.is_dir())):
                raise UserError(f"cannot write to the {what} {place} (read-only or not yours); nothing was read or written")

    def open_study(self, name: str, meta: dict) -> int:
        """Create the study or check it matches; a name that cannot be a folder here is refused
        before the study exists."""
        self.artifacts.study_dir(name)
        study_id = self.studies.open(name, meta)
        self.trials.all(name)  # a resumed study's damaged record stops it here, before any trial (`stored`)
        return study_id
