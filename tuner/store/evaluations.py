"""`Evaluations`: each test-set evaluation of a study, its model files in a folder of their
own, and the record naming them with their checksums (written after the files)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from tuner.errors import UserError
from tuner.paths import inside, make_folder, remove_stale
from tuner.store import migrate, stored
from tuner.store.artifacts import Artifacts
from tuner.store.notes import study_note
from tuner.store.records import Evaluation
from tuner.store.studies import Studies
from tuner.store.workers import ended_here, machine_tag

_KEY = "evaluations"  # the study attribute holding the list of records
_READS = "test_reads"  # the study attribute counting reads of its test split
_TEST_FINGERPRINT = "test_fingerprint"  # the test split as its first evaluation read it


class Evaluations:
    def __init__(self, studies: Studies, artifacts: Artifacts):
        self.studies = studies
        self.artifacts = artifacts

    def all(self, name: str) -> list[Evaluation]:
        return [_evaluation(name, i, e) for i, e in enumerate(self.studies.attr(name, _KEY, []))]

    def latest(self, name: str) -> Evaluation | None:
        evaluations = self.all(name)
        return evaluations[-1] if evaluations else None

    def add(self, name: str, evaluation: Evaluation) -> None:
        """Append a record; every one is kept, none is overwritten. The study's dashboard note
        then shows them (`tuner.store.notes`)."""
        self.studies.set_attr(name, _KEY, self.studies.attr(name, _KEY, []) + [evaluation.to_json()])
        self.studies.save_note(name, study_note(self.all(name)))

    def test_reads(self, name: str) -> int:
        """How many times the study's test split has been read (an older study counts its
        evaluations: each read it once)."""
        return migrate.test_reads(self.studies.attr(name, _READS, None), len(self.all(name)))

    def count_test_read(self, name: str) -> int:
        """Count one read of the test split, before it happens (a read cut short by a crash
        counts too); the count so far, this one included."""
        reads = self.test_reads(name) + 1
        self.studies.set_attr(name, _READS, reads)
        return reads

    def test_fingerprint(self, name: str) -> str | None:
        """The test split's fingerprint, as its first evaluation read it."""
        return self.studies.attr(name, _TEST_FINGERPRINT)

    def record_test_fingerprint(self, name: str, fingerprint: str) -> None:
        self.studies.set_attr(name, _TEST_FINGERPRINT, fingerprint)

    def folder(self, name: str) -> Path:
        return self.artifacts.folder(name, "ensemble")

    def new_folder(self, name: str) -> Path:
        """A folder of its own for one evaluation's models: a later evaluation, or one killed
        half-way, never touches the files an earlier record names. Folders no record names are
        removed when a process of this machine left them and has ended, else once a day old."""
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        folder = self.folder(name)
        study_dir = self.artifacts.study_dir(name)
        named = {(study_dir / entry.path).parent for e in self.all(name) for entry in e.files.values()}
        unnamed = [p for p in folder.glob("2*-*") if p.is_dir() and p not in named]
        for left in filter(_left_by_an_ended_process, unnamed):  # a killed evaluation's, on this machine
            shutil.rmtree(left, ignore_errors=True)
        remove_stale(unnamed)  # another machine's, or an older name's: once a day old
        return inside(self.artifacts.results_dir, make_folder(folder / f"{stamp}-{machine_tag()}-{os.getpid()}"))

    def model_files(self, name: str, evaluation: Evaluation) -> tuple[Path, Path]:
        """The record's model.keras and best_trial.keras, checked against its checksums."""
        files = evaluation.files
        if "model.keras" not in files or "best_trial.keras" not in files:
            raise UserError(f"study '{name}': its evaluation of {evaluation.when} names no checksummed model "
                            f"files; run `tune ensemble --study {name} --reevaluate`")
        return (self.artifacts.verified_file(name, files["model.keras"]),
                self.artifacts.verified_file(name, files["best_trial.keras"]))


def _left_by_an_ended_process(folder: Path) -> bool:
    """An evaluation's folder (`<time>-<machine>-<pid>`) whose process, on this machine, has ended."""
    parts = folder.name.split("-")
    return len(parts) == 3 and parts[2].isdigit() and ended_here(parts[1], int(parts[2]))


def _evaluation(study: str, index: int, data: dict) -> Evaluation:
    try:
        evaluation = Evaluation.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # what a record of the wrong shape raises
        raise stored.DamagedRecord(f"study {study}, evaluation {index + 1}: not what tune writes ({type(e).__name__}: "
                                   f"{str(e)[:60]}); the database was written by another program or is damaged") from None
    if problem := _classes_problem(evaluation):  # an export's labels.json would name the wrong outputs
        raise stored.DamagedRecord(f"study {study}, evaluation {index + 1}: {problem}; the database was written by "
                                   f"another program or is damaged")
    return evaluation


def _classes_problem(evaluation: Evaluation) -> str | None:
    names = evaluation.class_names
    if names is None:
        return None  # an older evaluation's
    if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        return "its class names are not a list of names"  # an export's labels.json would be refused by predict
    if len(set(names)) < len(names):
        return "its class names repeat one"
    sizes = sorted({len(r["confusion"]) for r in evaluation.test.values() if isinstance(r.get("confusion"), list)})
    if sizes and sizes != [len(names)]:
        return f"it names {len(names)} classes, but its confusion matrices have {' and '.join(map(str, sizes))} rows"
    return None
