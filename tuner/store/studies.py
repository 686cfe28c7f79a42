"""`Studies`: the studies `tune` made in a database, their records (`meta`: engine, space,
split, format) and the checks that a study is resumed with what made it."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from tuner.errors import UserError
from tuner.paths import check_study_name
from tuner.space.objective import objective_of
from tuner.store import migrate, stored
from tuner.store.database import Database
from tuner.store.urls import redact
from tuner.wording import listed

_FOREIGN_WAIT_SECONDS = 5.0  # a study another process has just created gets its tune record within this


CHECKS = "checks"  # the study attribute with what its first checks found

class Studies:
    def __init__(self, db: Database):
        self.db = db

    def id(self, name: str) -> int | None:
        check_study_name(name)
        try:
            return self.db.storage.get_study_id_from_name(name)
        except KeyError:
            return None

    def require(self, name: str) -> int:
        """The id of a study that `tune` made; one line for a missing or a foreign one."""
        return self._own_attrs(name)[0]

    def _own_attrs(self, name: str) -> tuple[int, dict[str, Any]]:
        """The id and the attributes of a study that `tune` made, read once."""
        study_id = self.id(name)
        if study_id is None:
            known = ", ".join(self.names()) or "none yet"
            raise UserError(f"no study '{name}' in {redact(self.db.url)} (studies: {known})")
        with stored.reading(f"study {name}"):
            attrs = self.db.storage.get_study_user_attrs(study_id)
        if "tune" not in attrs:
            raise UserError(_foreign(name, self.db.url))
        return study_id, attrs

    def names(self) -> list[str]:
        """The studies `tune` made (others in the same database are left alone)."""
        return [name for name, attrs in self._all() if isinstance(attrs, dict) and "tune" in attrs]

    def foreign_names(self) -> list[str]:
        return [name for name, attrs in self._all() if isinstance(attrs, dict) and "tune" not in attrs]

    def unreadable(self) -> list[tuple[str, UserError]]:
        """The studies whose attributes Optuna cannot read, each with that line."""
        return [(name, attrs) for name, attrs in self._all() if isinstance(attrs, UserError)]

    def _all(self) -> list[tuple[str, dict[str, Any] | UserError]]:
        """Each study's name and attributes. Optuna reads every study's at once, so one value
        that is not JSON would hide them all: then each is read alone."""
        try:
            with stored.reading("the database's studies"):
                return [(s.study_name, s.user_attrs) for s in self.db.storage.get_all_studies()]
        except UserError:
            return [(name, self._attrs_or_why(study_id, name)) for study_id, name in self.db.study_rows()]

    def _attrs_or_why(self, study_id: int, name: str) -> dict[str, Any] | UserError:
        try:
            with stored.reading(f"study {name}"):
                return self.db.storage.get_study_user_attrs(study_id)
        except UserError as e:
            return e

    def open(self, name: str, meta: dict[str, Any]) -> int:
        """Create the study, or check that an existing one has the same engine, space and split."""
        from optuna.exceptions import DuplicatedStudyError

        study_id = self.id(name)
        if study_id is None:
            try:
                study_id = self.db.storage.create_new_study([_direction(meta)], name)
                record = {**meta, "format": migrate.FORMAT, "created": _now()}
                self.db.storage.set_study_user_attr(study_id, "tune", record)
                self._name_the_metric(name, meta)
                return study_id
            except DuplicatedStudyError:  # another worker created it a moment ago
                study_id = self.id(name)
        if not self._wait_for_record(name, study_id, _direction(meta)):  # what a search killed as it created it left
            self.db.storage.set_study_user_attr(study_id, "tune", {**meta, "format": migrate.FORMAT, "created": _now()})
        _check_same(name, self.meta(name), meta)
        self._name_the_metric(name, meta)
        return study_id

    def _name_the_metric(self, name: str, meta: dict[str, Any]) -> None:
        """Optuna's own tools (the dashboard, plots) show the objective by this name, not
        'Objective 0'; an older study gets it when it is next opened."""
        import warnings

        import optuna

        study = self.optuna_study(name)
        if study.metric_names is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([objective_of(meta.get("space")).metric])

    def _wait_for_record(self, name: str, study_id: Any, direction: Any) -> bool:
        """True once the study has tune's record. Without one it is another tool's, unless another
        worker has only just created it and is about to write the record, or it is blank: no
        trials, no attributes, one value in the objective's direction (False: a search killed between creating its
        study and writing the record left it, and nothing of anyone's is in it)."""
        storage = self.db.storage
        deadline = time.monotonic() + _FOREIGN_WAIT_SECONDS
        while "tune" not in storage.get_study_user_attrs(study_id):
            if storage.get_all_trials(study_id, deepcopy=False):
                raise UserError(_foreign(name, self.db.url))
            if time.monotonic() > deadline:
                blank = not storage.get_study_user_attrs(study_id) and not storage.get_study_system_attrs(study_id) \
                    and storage.get_study_directions(study_id) == [direction]
                if blank:
                    return False
                raise UserError(_foreign(name, self.db.url))
            time.sleep(0.1)
        return True

    def delete(self, name: str) -> None:
        """Remove the study and its trials (a search's own new study that ran none)."""
        import optuna

        optuna.delete_study(study_name=name, storage=self.db.storage)

    def save_note(self, name: str, markdown: str) -> None:
        """The study's note in optuna-dashboard, written by its own `save_note` (versioned, in
        the study's system attributes)."""
        from optuna_dashboard import save_note

        save_note(self.optuna_study(name), markdown)

    def optuna_study(self, name: str) -> Any:
        """The study as an `optuna.Study` (a fixed sampler: nothing is sampled through it)."""
        import optuna

        return optuna.load_study(study_name=name, storage=self.db.storage, sampler=optuna.samplers.RandomSampler())

    def meta(self, name: str) -> dict[str, Any]:
        study_id, attrs = self._checked_attrs(name)  # read once: `trials.all` asks for it on every call
        meta = stored.checked(attrs.get("tune"), stored.META_KINDS, f"study {name}'s record")
        if migrate.version(meta) > migrate.FORMAT:  # its records may mean what this tune cannot tell
            raise UserError(f"study {name} was written by a newer tune (its format {migrate.version(meta)}; this "
                            f"one reads up to {migrate.FORMAT}): upgrade tune-images to read it")
        self._check_direction(name, study_id, meta)
        return meta

    def _check_direction(self, name: str, study_id: int, meta: dict[str, Any]) -> None:
        """Optuna's direction must be the objective's: the samplers, the pruner and `best_trial` follow it."""
        with stored.reading(f"study {name}'s direction"):
            directions = self.db.storage.get_study_directions(study_id)
        if directions != [_direction(meta)]:
            shown = ", ".join(d.name.lower() for d in directions) or "none"
            raise stored.DamagedRecord(
                f"study {name}: its direction ({shown}) is not its objective's ({_direction(meta).name.lower()} "
                f"{objective_of(meta.get('space')).name}); the database was written by another program or is damaged")

    def format(self, name: str) -> int:
        return migrate.version(self.meta(name))

    def record_checks(self, name: str, findings: list[dict[str, Any]]) -> None:
        """What the checks before the study's first trial found (`tuner.check`); kept from the first search."""
        if findings and not self.checks(name):
            self.set_attr(name, CHECKS, findings)

    def checks(self, name: str) -> list[dict[str, Any]]:
        found = self.attr(name, CHECKS)
        return [f for f in found if isinstance(f, dict)] if isinstance(found, list) else []

    def set_attr(self, name: str, key: str, value: Any) -> None:
        self.db.storage.set_study_user_attr(self.require(name), key, value)

    def attr(self, name: str, key: str, default: Any = None) -> Any:
        return self._checked_attrs(name)[1].get(key, default)

    def _checked_attrs(self, name: str) -> tuple[int, dict[str, Any]]:
        # Every key, not the one asked: a damaged record is told by whichever command reads the study.
        study_id, attrs = self._own_attrs(name)
        return study_id, stored.checked(attrs, stored.STUDY_KINDS, f"study {name}")


def _direction(meta: dict[str, Any]) -> Any:
    """The Optuna study direction of the objective `meta`'s space names."""
    from optuna.study import StudyDirection

    return StudyDirection.MAXIMIZE if objective_of(meta.get("space")).maximize else StudyDirection.MINIMIZE


def _foreign(name: str, url: str) -> str:
    return (f"study '{name}' in {redact(url)} was not made by tune (it has no record of its space and split); "
            f"tune leaves it alone: use another --study name")


def _check_same(name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    if old.get("engine") and old["engine"] != new.get("engine"):
        raise UserError(f"study '{name}' was searched with engine {old['engine']}; it cannot mix in "
                        f"{new.get('engine')} (use another --study name)")
    if old.get("space_fingerprint") and old["space_fingerprint"] != new.get("space_fingerprint"):
        diff = _first_difference(old.get("space", {}), new.get("space", {}))
        raise UserError(f"study '{name}' exists with a different space ({diff}); use another --study name "
                        f"or the same space and settings (--epochs and --set are part of the space)")
    if old.get("split") and new.get("split") and old["split"]["fingerprint"] != new["split"]["fingerprint"]:
        raise UserError(f"study '{name}': the data at {new['split'].get('source')} differs from the study's "
                        f"({_split_difference(old['split'], new['split'])}); search it with the study's data, or "
                        f"under another --study name")
    if old.get("split") and new.get("split", {}).get("class_names") is not None:
        check_same_classes(name, old["split"], new["split"]["class_names"], new["split"].get("source"), "searched")


def _split_difference(then: dict[str, Any], now: dict[str, Any]) -> str:
    """What differs between two splits, as a user can check it: the images a split, the classes,
    else that the images themselves differ (the fingerprints)."""
    parts = [f"{part} {now.get(key):,} images now, {then.get(key):,} then" for part, key in
             (("training", "n_train"), ("validation", "n_val"), ("test", "n_test"))
             if isinstance(now.get(key), int) and isinstance(then.get(key), int) and now[key] != then[key]]
    if len(now.get("class_names") or []) != len(then.get("class_names") or []):
        parts.append(f"{len(now.get('class_names') or [])} classes now, {len(then.get('class_names') or [])} then")
    return "; ".join(parts) or (f"the same counts, other images or labels: split fingerprint "
                                f"{now.get('fingerprint')} now, {then.get('fingerprint')} then")


def check_same_classes(name: str, split: dict[str, Any], now: list[str], source: str, what: str) -> None:
    """The classes of the data read now are the study's, by name and order: the split's
    fingerprint sees its images and label numbers, not what the numbers are called (a class folder
    renamed in place, or a study made when a folder under a dataset's space took that dataset's names)."""
    then = split.get("class_names")
    if then is not None and list(then) != list(now):
        raise UserError(f"study '{name}': the data at {source} names its classes {_listed(now)}, the study "
                        f"{_listed(then)}; its models' outputs mean the study's classes: search under another "
                        f"--study name; nothing was {what}")


def _listed(names: list[str]) -> str:
    return f"({listed([json.dumps(n, ensure_ascii=False) for n in names])})"


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
    return f"{path}: {_shown(a)} in the study, {_shown(b)} now"


def _shown(value: Any) -> str:
    """A space value as the message shows it; a setting left out has its default."""
    return "not set (the default)" if value is None else json.dumps(value)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
