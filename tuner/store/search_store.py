"""`SearchStore`: studies, trial records and artifacts.

Records live in Optuna's RDB storage (SQLite by default, PostgreSQL or any SQLAlchemy URL for
several workers), so the leaderboard, the ensemble and the export read one place whichever
engine ran. This is the only module besides the engines that imports optuna, and only as a
database layer. Artifacts (predictions, models) live under `<results>/<study>/trials/<n>/`,
each file written to a temporary name and renamed, so a half-written folder is never read.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tuner import config
from tuner.errors import UserError
from tuner.store.workers import this_worker
from tuner.paths import check_can_write, check_study_name, inside, make_folder, remove_stale

STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


_SECRET = re.compile(r"pass|pwd|secret|token|key|auth|cred|sig|dsn|options", re.IGNORECASE)  # query keys that carry one
_HIDDEN = "***"


def _raw_userinfo(url: str) -> str | None:
    """What stands before the last '@' of the URL's authority: a password holding an unescaped
    '@' would be cut there by a URL parser, and its rest taken for the host."""
    _, sep, rest = url.partition("://")
    authority = rest.split("/", 1)[0]
    return authority.rpartition("@")[0] if sep and "@" in authority else None


def redact(url: str) -> str:
    """The URL with its password and every credential-bearing query value replaced by ***."""
    from sqlalchemy.engine import make_url

    userinfo = _raw_userinfo(url)
    if userinfo is not None and "@" in userinfo:  # not parseable as its writer meant it
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{userinfo.split(':', 1)[0].split('@')[0]}:***@{rest.split('/', 1)[0].rpartition('@')[2]}/***"
    try:
        parsed = make_url(url)
        query = {k: (_HIDDEN if _SECRET.search(k) else v) for k, v in parsed.query.items()}
        return parsed.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", _HIDDEN)
    except Exception:  # not parseable as a URL: show only its scheme
        return url.split("://")[0] + "://***" if "://" in url else _HIDDEN


def scrub(text: str, url: str) -> str:
    """`text` (an error message, say) with every secret of `url` replaced by ***."""
    from urllib.parse import quote

    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return text.replace(url, redact(url))
    secrets = [str(parsed.password)] if parsed.password else []
    userinfo = _raw_userinfo(url)
    if userinfo and ":" in userinfo:
        secrets.append(userinfo.split(":", 1)[1])
    for key, value in parsed.query.items():
        if _SECRET.search(key):
            secrets += [value] if isinstance(value, str) else list(value)
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, _HIDDEN).replace(quote(secret, safe=""), _HIDDEN)
    return text


def default_storage_url(results_dir: Path) -> str:
    return f"sqlite:///{(results_dir / 'tune.db').resolve()}"


@dataclass(frozen=True)
class TrialRecord:
    """A trial as the store keeps it; finished ones never change."""

    number: int
    state: str  # complete, pruned, failed, running
    value: float | None  # validation accuracy at the best epoch (last reported, if pruned)
    params: dict[str, Any]
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int | None = None
    val_loss: float | None = None
    reason: str | None = None  # why it failed
    seconds: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    seed: int | None = None  # the training seed: with params and max_epochs, enough to run the trial again
    max_epochs: int | None = None  # the epochs it was given (its schedule's length); None: the space's
    started: dt.datetime | None = None

    @property
    def epochs(self) -> int:
        return len(self.history.get("val_loss", []))

    @property
    def finished(self) -> bool:
        return self.state in ("complete", "pruned")

    def user_attrs(self) -> dict[str, Any]:
        """What an engine writes into the storage for this trial."""
        keys = ("params", "history", "best_epoch", "val_loss", "reason", "seconds", "timings", "seed", "max_epochs")
        return {k: getattr(self, k) for k in keys if getattr(self, k) not in (None, {}, [])}


@dataclass(frozen=True)
class StudyInfo:
    name: str
    meta: dict[str, Any]  # engine, sampler, space, split, created
    counts: dict[str, int]
    best_value: float | None


# Optuna fails a trial whose heartbeats stopped without saying so; such a trial had started.
_NO_HEARTBEAT = "interrupted: its worker stopped sending heartbeats"


def _record(frozen: Any) -> TrialRecord:
    attrs = frozen.user_attrs
    state = STATES.get(frozen.state.name, frozen.state.name.lower())
    return TrialRecord(
        number=frozen.number, state=state, value=frozen.value, params=attrs.get("params", dict(frozen.params)),
        history=attrs.get("history", {}), best_epoch=attrs.get("best_epoch"), val_loss=attrs.get("val_loss"),
        reason=attrs.get("reason") or (_NO_HEARTBEAT if state == "failed" and "worker" in attrs else None),
        seconds=attrs.get("seconds"),
        timings=attrs.get("timings", {}), seed=attrs.get("seed"), max_epochs=attrs.get("max_epochs"),
        started=frozen.datetime_start)


# Optuna's schema. A database is written only when it is empty or holds the core of it; any
# other table or view is another application's. A schema part-way through creation (several
# workers opening a fresh database at once) holds some of these and nothing else, for a moment.
OPTUNA_TABLES = frozenset({
    "studies", "version_info", "study_directions", "study_user_attributes", "study_system_attributes", "trials",
    "trial_user_attributes", "trial_system_attributes", "trial_params", "trial_values", "trial_intermediate_values",
    "trial_heartbeats", "alembic_version"})
OPTUNA_CORE = frozenset({"studies", "version_info", "study_directions", "trials", "trial_values"})
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SCHEMA_WAIT_SECONDS = 2.0  # a schema another process is creating is complete within this
_FOREIGN_WAIT_SECONDS = 5.0  # a study another process has just created gets its tune record within this


class SearchStore:
    """One storage URL plus one results folder. Only `create=True` (the search) may create a
    database or its folder; every other command opens what exists, or says there is nothing."""

    def __init__(self, url: str | None, results_dir: Path, heartbeat: bool = False, create: bool = False):
        self.results_dir = results_dir
        self.url = url or default_storage_url(results_dir)
        self.heartbeat = heartbeat
        self.create = create
        self._storage: Any = None

    @property
    def storage(self) -> Any:
        """Optuna's RDBStorage, opened on first use; an unreachable URL is one clear line."""
        if self._storage is None:
            self._storage = self._open()
        return self._storage

    def _open(self) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        kwargs = self.check()
        database = self._parsed().database
        if self._is_sqlite() and database and not Path(database).exists():
            make_folder(Path(database).parent)  # only a search gets here (`check` refuses the rest)
        # A dead worker's trial is failed once its heartbeat is older than the grace period.
        beat: dict[str, int] = {}
        if self.heartbeat:
            interval = config.heartbeat_seconds()
            beat = {"heartbeat_interval": interval, "grace_period": 3 * interval}
        return self._guarded(lambda: _create_storage(self.url, kwargs, beat))

    def check(self) -> dict[str, Any]:
        """Refuse what cannot or must not be opened, creating nothing: a URL that is not one,
        another application's database, a missing one for a command that only reads. Returns
        the engine options for the URL."""
        if self._is_sqlite():
            exists = self._check_sqlite_file(self._parsed().database)
            kwargs: dict[str, Any] = {"connect_args": {"timeout": 120}}  # wait, not 'database is locked'
        else:
            exists = True
            kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
        if exists:
            self._guarded(lambda: self._check_tables(kwargs))
        return kwargs

    def _guarded(self, call: Any) -> Any:
        """`call()`, with any database error turned into one line that shows no secret."""
        try:
            return call()
        except UserError:
            raise
        except Exception as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise UserError(f"cannot open storage {redact(self.url)}: {scrub(reason, self.url)}") from None

    def _is_sqlite(self) -> bool:
        return self._parsed().get_backend_name() == "sqlite"

    def check_writable(self, name: str) -> None:
        """Before a search does any work: its folders can be written (nothing is created)."""
        database = self.sqlite_file()
        for folder in [self.results_dir, self.study_dir(name)] + ([database.parent] if database else []):
            check_can_write(folder)

    def _parsed(self) -> Any:
        from sqlalchemy.engine import make_url

        userinfo = _raw_userinfo(self.url)
        if userinfo is not None and "@" in userinfo:
            raise UserError(f"storage {redact(self.url)}: the user or password holds an '@'; write it as %40")
        try:
            return make_url(self.url)
        except Exception:
            raise UserError(f"storage {redact(self.url)}: not a SQLAlchemy URL (e.g. sqlite:///tune.db)") from None

    def _check_sqlite_file(self, database: str | None) -> bool:
        """Whether the SQLite file exists. It may be missing only for a search, which creates
        it; an existing file must be a SQLite database."""
        if not database or database == ":memory:":
            raise UserError(f"storage {redact(self.url)}: an in-memory database keeps nothing; give a file "
                            f"(sqlite:///path/tune.db)")
        if self._parsed().query:
            raise UserError(f"storage {redact(self.url)}: query options on a SQLite URL are not supported "
                            f"(they can point SQLite at another file); give a plain sqlite:///path/tune.db")
        if database.startswith("file:"):
            raise UserError(f"storage {redact(self.url)}: SQLite URI file names (file:...) are not supported; "
                            f"give a path (sqlite:///path/tune.db)")
        path = Path(database)
        if not path.exists():
            if not self.create:
                raise UserError(f"no studies yet: {path} does not exist (run `tune search` first, or pass the "
                                f"--results-dir or --storage the search used)")
            check_can_write(path.parent)
            return False
        if not path.is_file():
            raise UserError(f"storage {path}: not a file")
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
        if head and head != _SQLITE_MAGIC:
            raise UserError(f"storage {path}: not a SQLite database; refused (tune never writes a file it did not make)")
        return True

    def _check_tables(self, kwargs: dict[str, Any]) -> None:
        """Refuse another application's database before Optuna adds its tables to it."""
        tables = self._tables(kwargs)
        if tables and not tables & OPTUNA_TABLES or tables - OPTUNA_TABLES and not OPTUNA_CORE <= tables:
            raise UserError(self._not_optuna(tables))
        if tables and not OPTUNA_CORE <= tables:  # Optuna's schema part-way: another process creating it?
            time.sleep(_SCHEMA_WAIT_SECONDS)
            if not OPTUNA_CORE <= self._tables(kwargs):
                raise UserError(self._not_optuna(tables))
        if not tables and not self.create:
            raise UserError(f"no studies yet in {redact(self.url)} (run `tune search` first)")

    def _tables(self, kwargs: dict[str, Any]) -> set[str]:
        """The database's tables and views (a view is something of someone else's too)."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url, **kwargs)
        try:
            inspector = sqlalchemy.inspect(engine)
            return set(inspector.get_table_names()) | set(inspector.get_view_names())
        finally:
            engine.dispose()

    def _not_optuna(self, tables: set[str]) -> str:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        return (f"storage {redact(self.url)} holds tables that are not an Optuna study database's ({shown}); "
                f"refused. Point --storage at a database of its own")

    # --- studies -------------------------------------------------------------------------
    def study_id(self, name: str) -> int | None:
        check_study_name(name)
        try:
            return self.storage.get_study_id_from_name(name)
        except KeyError:
            return None

    def require_study(self, name: str) -> int:
        """The id of a study that `tune` made; one line for a missing or a foreign one."""
        study_id = self.study_id(name)
        if study_id is None:
            known = ", ".join(self.study_names()) or "none yet"
            raise UserError(f"no study '{name}' in {redact(self.url)} (studies: {known})")
        if "tune" not in self.storage.get_study_user_attrs(study_id):
            raise UserError(_foreign(name, self.url))
        return study_id

    def study_names(self) -> list[str]:
        """The studies `tune` made (others in the same database are left alone)."""
        return [s.study_name for s in self.storage.get_all_studies() if "tune" in s.user_attrs]

    def foreign_study_names(self) -> list[str]:
        return [s.study_name for s in self.storage.get_all_studies() if "tune" not in s.user_attrs]

    def open_study(self, name: str, meta: dict[str, Any]) -> int:
        """Create the study, or check that an existing one has the same engine, space and split."""
        from optuna.exceptions import DuplicatedStudyError
        from optuna.study import StudyDirection

        study_id = self.study_id(name)
        self.study_dir(name)  # a name that cannot be a folder here is refused before the study exists
        if study_id is None:
            try:
                study_id = self.storage.create_new_study([StudyDirection.MAXIMIZE], name)
                self.storage.set_study_user_attr(study_id, "tune", {**meta, "created": _now()})
                return study_id
            except DuplicatedStudyError:  # another worker created it a moment ago
                study_id = self.study_id(name)
        self._wait_for_record(name, study_id)
        _check_same(name, self.meta(name), meta)
        return study_id

    def _wait_for_record(self, name: str, study_id: Any) -> None:
        """A study without tune's record is another tool's, unless another worker has only just
        created it and is about to write the record."""
        deadline = time.monotonic() + _FOREIGN_WAIT_SECONDS
        while "tune" not in self.storage.get_study_user_attrs(study_id):
            if self.storage.get_all_trials(study_id, deepcopy=False) or time.monotonic() > deadline:
                raise UserError(_foreign(name, self.url))
            time.sleep(0.1)

    def meta(self, name: str) -> dict[str, Any]:
        return self.storage.get_study_user_attrs(self.require_study(name))["tune"]

    def set_study_attr(self, name: str, key: str, value: Any) -> None:
        self.storage.set_study_user_attr(self.require_study(name), key, value)

    def study_attr(self, name: str, key: str, default: Any = None) -> Any:
        return self.storage.get_study_user_attrs(self.require_study(name)).get(key, default)

    def studies(self) -> list[StudyInfo]:
        out = []
        for s in self.storage.get_all_studies():
            if "tune" not in s.user_attrs:
                continue
            trials = self.trials(s.study_name)
            counts = {state: sum(t.state == state for t in trials) for state in ("complete", "pruned", "failed", "running")}
            values = [t.value for t in trials if t.state == "complete" and t.value is not None]
            out.append(StudyInfo(s.study_name, s.user_attrs["tune"], counts, max(values, default=None)))
        return out

    # --- trials --------------------------------------------------------------------------
    def trials(self, name: str) -> list[TrialRecord]:
        trials = self.storage.get_all_trials(self.require_study(name), deepcopy=False)
        # Surplus trials never ran; waiting ones (queued start points) have not run yet.
        return [_record(t) for t in trials if not t.user_attrs.get("surplus") and t.state.name != "WAITING"]

    def count_finished(self, name: str) -> int:
        return sum(t.finished for t in self.trials(name))

    def begin_trial(self, name: str, params: dict[str, Any], attrs: dict[str, Any] | None = None) -> int:
        """Reserve a trial number for a trial that runs outside Optuna (KerasTuner)."""
        from optuna.trial import FrozenTrial, TrialState

        frozen = FrozenTrial(number=-1, state=TrialState.RUNNING, value=None, datetime_start=dt.datetime.now(),
                             datetime_complete=None, params={}, distributions={},
                             user_attrs={"params": params, **(attrs or {})}, system_attrs={}, intermediate_values={},
                             trial_id=-1)
        trial_id = self.storage.create_new_trial(self.require_study(name), template_trial=frozen)
        return self.storage.get_trial_number_from_id(trial_id)

    def finish_trial(self, name: str, record: TrialRecord) -> None:
        """Write a finished trial's record over its reserved number; it is final after this."""
        from optuna.trial import TrialState

        storage = self.storage
        trial_id = storage.get_trial_id_from_study_id_trial_number(self.require_study(name), record.number)
        for key, value in record.user_attrs().items():
            storage.set_trial_user_attr(trial_id, key, value)
        for step, value in enumerate(record.history.get("val_accuracy", [])):
            storage.set_trial_intermediate_value(trial_id, step, value)
        state = TrialState[{v: k for k, v in STATES.items()}[record.state]]
        values = None if state == TrialState.FAIL or record.value is None else [record.value]
        storage.set_trial_state_values(trial_id, state, values)

    def fail_trial(self, name: str, number: int, reason: str) -> bool:
        """Mark a RUNNING trial failed (its worker is gone); False if it finished meanwhile."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.require_study(name), number)
        try:
            self.storage.set_trial_user_attr(trial_id, "reason", reason)
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except (UpdateFinishedTrialError, RuntimeError):  # another worker finished or failed it first
            return False
        return True

    def discard_waiting(self, name: str, number: int) -> None:
        """Take a queued trial that never ran out of the study (hidden like a surplus one)."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.require_study(name), number)
        try:
            self.storage.set_trial_user_attr(trial_id, "surplus", True)
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except (UpdateFinishedTrialError, RuntimeError):  # another process discarded it first
            pass

    def start_point(self, name: str, number: int) -> int | None:
        """Which of the space's start points this trial runs (its recorded origin), or None."""
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.require_study(name), number)
        index = self.storage.get_trial(trial_id).user_attrs.get("start_point")
        return index if isinstance(index, int) else None

    def fail_running_of(self, name: str, pids: set[int], reason: str) -> int:
        """Mark failed the RUNNING trials that these processes of this machine started: no way
        out of a search (a stop, an error, a signal) leaves its own trials running."""
        from optuna.trial import TrialState

        here = this_worker()
        study_id = self.study_id(name)
        if study_id is None:
            return 0
        failed = 0
        for t in self.storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            worker = t.user_attrs.get("worker") or {}
            if (worker.get("host"), worker.get("boot")) == (here["host"], here["boot"]) and worker.get("pid") in pids:
                failed += self.fail_trial(name, t.number, reason)
        return failed

    def fail_running(self, name: str, reason: str) -> int:
        """Mark every RUNNING trial of the study failed (for single-process engines)."""
        return sum(self.fail_trial(name, t.number, reason) for t in self.trials(name) if t.state == "running")

    def add_trial(self, name: str, record: TrialRecord) -> int:
        """Record a finished trial in one step; returns its number."""
        number = self.begin_trial(name, record.params)
        self.finish_trial(name, replace(record, number=number))
        return number

    # --- artifacts -----------------------------------------------------------------------
    def study_dir(self, name: str) -> Path:
        """`<results>/<study>`: every artifact path starts here, so none can land outside. A name
        that is the database's own file (or its journal) is refused: that folder would break it."""
        folder = inside(self.results_dir, self.results_dir / check_study_name(name))
        database = self.sqlite_file()
        if database is not None and database.parent.resolve() == folder.parent.resolve() \
                and name.startswith(database.name):
            raise UserError(f"study name {name!r} is taken by the study database {database} (and its journal files)")
        if folder.exists() and not folder.is_dir():
            raise UserError(f"study name {name!r}: {folder} is a file, not a study folder")
        return folder

    def check_no_links_out(self, name: str) -> None:
        """Before a search writes anything: no link anywhere under the study folder leads outside
        the results folder (KerasTuner's own files and the worker logs are written there too)."""
        folder = self.study_dir(name)
        for dirpath, dirnames, filenames in os.walk(folder) if folder.is_dir() else []:
            for entry in dirnames + filenames:
                path = Path(dirpath) / entry
                if path.is_symlink():
                    inside(self.results_dir, path)

    def artifact_dir(self, name: str, *parts: str) -> Path:
        """A folder under the study's, checked again once links are followed (a link planted below
        the study folder cannot lead outside either)."""
        return inside(self.results_dir, self.study_dir(name).joinpath(*parts))

    def sqlite_file(self) -> Path | None:
        """The SQLite database file, when the storage is one."""
        try:
            database = self._parsed().database if self._is_sqlite() else None
        except UserError:
            return None
        return Path(database) if database and database != ":memory:" else None

    def trial_dir(self, name: str, number: int) -> Path:
        return self.artifact_dir(name, "trials", str(int(number)))

    def write_json(self, path: Path, data: Any) -> None:
        _atomic(inside(self.results_dir, path), lambda tmp: tmp.write_text(json.dumps(data, indent=1, default=_jsonable)))

    def save_trial_files(self, name: str, record: TrialRecord, val_views: np.ndarray | None) -> None:
        """Params, history and the validation predictions, (views, n, classes) or (n, classes)."""
        folder = self.trial_dir(name, record.number)
        self.write_json(folder / "params.json", record.params)
        self.write_json(folder / "history.json", record.history)
        if val_views is not None:
            _atomic(folder / "val_probs.npy", lambda tmp: np.save(tmp, val_views.astype(np.float32), allow_pickle=False),
                    suffix=".npy")

    def save_model(self, name: str, number: int, model: Any) -> None:
        self.save_model_file(self.trial_dir(name, number) / "model.keras", model)

    def save_model_file(self, path: Path, model: Any) -> None:
        _atomic(inside(self.results_dir, path), lambda tmp: model.save(tmp), suffix=".keras")

    def save_val_labels(self, name: str, labels: np.ndarray) -> None:
        """The validation labels, so the ensemble selection reads the store alone."""
        path = inside(self.results_dir, self.study_dir(name) / "val_labels.npy")
        _atomic(path, lambda tmp: np.save(tmp, labels.astype(np.int64), allow_pickle=False), suffix=".npy")

    def val_labels(self, name: str) -> np.ndarray:
        try:
            return np.load(self.study_dir(name) / "val_labels.npy", allow_pickle=False)
        except (OSError, ValueError):
            raise UserError(f"study '{name}': no validation labels under {self.study_dir(name)} "
                            f"(is --results-dir the folder the search wrote to?)") from None

    def evaluation_dir(self, name: str) -> Path:
        return self.artifact_dir(name, "ensemble")

    def new_evaluation_dir(self, name: str) -> Path:
        """A folder of its own for one evaluation's models: a later evaluation, or one killed
        half-way, never touches the files an earlier record names."""
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        folder = self.evaluation_dir(name)
        named = {(self.study_dir(name) / entry["path"]).parent for e in self.study_attr(name, "evaluations", [])
                 for entry in e.get("files", {}).values()}
        remove_stale([p for p in folder.glob("2*-*") if p.is_dir()], keep=named)
        return inside(self.results_dir, make_folder(folder / f"{stamp}-{os.getpid()}"))

    def file_entry(self, name: str, path: Path) -> dict[str, str]:
        """What a record says of one of its files: where it is (in the study folder), its checksum."""
        return {"path": path.relative_to(self.study_dir(name)).as_posix(), "sha256": sha256_of(path)}

    def verified_file(self, name: str, entry: dict[str, str]) -> Path:
        """The recorded file, if it is there and unchanged; else one line."""
        path = inside(self.study_dir(name), self.study_dir(name) / str(entry["path"]))
        if not path.is_file():
            raise UserError(f"study '{name}': {path} is missing; run `tune ensemble --study {name} --reevaluate`")
        if sha256_of(path) != entry["sha256"]:
            raise UserError(f"study '{name}': {path} is not the file its record names (checksum differs); "
                            f"refused. Run `tune ensemble --study {name} --reevaluate`")
        return path

    def add_evaluation(self, name: str, record: dict[str, Any]) -> None:
        """Append a test-set evaluation; every one is kept, none is overwritten."""
        self.set_study_attr(name, "evaluations", self.study_attr(name, "evaluations", []) + [record])

    def model_path(self, name: str, number: int) -> Path | None:
        path = self.trial_dir(name, number) / "model.keras"
        return path if path.is_file() else None

    def val_views(self, name: str, number: int) -> np.ndarray | None:
        """(views, n, classes): the plain images' predictions and, for a trial trained on flips, the
        mirrors'. A study from before views kept one: a flipped trial's average of both."""
        try:
            views = np.load(self.trial_dir(name, number) / "val_probs.npy", allow_pickle=False)
        except (OSError, ValueError):
            return None
        return views[None] if views.ndim == 2 else views  # stores before views kept the average only

    def top_trials(self, name: str, k: int) -> list[TrialRecord]:
        done = [t for t in self.trials(name) if t.state == "complete" and t.value is not None]
        return sorted(done, key=lambda t: (-t.value, t.val_loss if t.val_loss is not None else 0, t.number))[:k]

    def ranks_in_top(self, name: str, value: float, k: int) -> bool:
        """Would a finished trial with this value be among the best k?"""
        top = self.top_trials(name, k)
        return len(top) < k or value > top[-1].value

    def keep_models_of_top(self, name: str, k: int) -> None:
        """Delete model files of trials that left the top k (disk stays bounded)."""
        keep = {t.number for t in self.top_trials(name, k)}
        folder = self.study_dir(name) / "trials"
        for path in folder.glob("*/model.keras") if folder.is_dir() else []:
            if path.parent.name.isdigit() and int(path.parent.name) not in keep:
                path.unlink(missing_ok=True)


def _create_storage(url: str, engine_kwargs: dict[str, Any], beat: dict[str, int]) -> Any:
    """RDBStorage, retried while several workers race to create the same fresh schema."""
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **beat)
        except (IntegrityError, ProgrammingError, OperationalError) as e:
            racing = isinstance(e, (IntegrityError, ProgrammingError)) or any(
                m in str(e) for m in ("locked", "already exists"))
            if not racing or attempt == 5:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


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
                        f"or the same space and settings")
    if old.get("split") and new.get("split") and old["split"]["fingerprint"] != new["split"]["fingerprint"]:
        raise UserError(f"study '{name}': the data differs from the study's (split fingerprint "
                        f"{old['split']['fingerprint']} vs {new['split']['fingerprint']}, source {new['split']['source']})")


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
    return f"{path}: {json.dumps(a)} in the study, {json.dumps(b)} now"


def _atomic(path: Path, write: Any, suffix: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{suffix}")
    if tmp.is_symlink():
        tmp.unlink()  # a link planted at the temporary name is not written through
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink() if tmp.is_file() else shutil.rmtree(tmp, ignore_errors=True)


def sha256_of(path: Path) -> str:
    import hashlib

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


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
