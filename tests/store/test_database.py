"""`Database`: which storage URLs open, which are refused with which line, and the retry while
workers race to create a fresh schema. Real files and SQLite; fast (no command is started)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tuner.errors import UserError
from tuner.store import database
from tuner.store.database import Database


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _setup(tmp_path: Path, what: str) -> str:
    """A storage URL for the case `what`, with what it points at made in tmp_path."""
    if what == "a directory":
        (tmp_path / "d.db").mkdir()
        return _url(tmp_path / "d.db")
    if what == "a text file":
        (tmp_path / "t.db").write_text("hello")
        return _url(tmp_path / "t.db")
    if what == "an empty file":
        (tmp_path / "e.db").touch()
        return _url(tmp_path / "e.db")
    if what == "a file in place of the folder":
        (tmp_path / "f").write_text("x")
        return _url(tmp_path / "f" / "tune.db")
    if what == "another application's database":
        with sqlite3.connect(tmp_path / "o.db") as db:
            db.execute("create table customers (id integer)")
        return _url(tmp_path / "o.db")
    return {"missing": _url(tmp_path / "new.db"), "a missing folder": _url(tmp_path / "no" / "tune.db"),
            "in memory": "sqlite://", "in memory by name": "sqlite:///:memory:",
            "query options": _url(tmp_path / "q.db") + "?mode=ro&uri=true", "a file: URI": "sqlite:///file:x.db",
            "not a URL": "results/tune.db", "credentials, no scheme": "u:secret@host/db",
            "an @ in the password": "postgresql://u:p@ss@host/db"}[what]


# case, create, own_folder -> the start of the line refusing it, or None (it opens)
CASES = [
    ("missing", False, False, "no studies yet: "),
    ("missing", True, False, None),
    ("a missing folder", True, False, "storage sqlite:///"),
    ("a missing folder", True, True, None),
    ("a file in place of the folder", True, False, "storage sqlite:///"),
    ("a directory", False, False, "storage "),
    ("a text file", False, False, "storage "),
    ("an empty file", True, False, None),
    ("another application's database", True, False, "storage sqlite:///"),
    ("in memory", True, False, "storage sqlite://: an in-memory database keeps nothing"),
    ("in memory by name", True, False, "storage sqlite:///%3Amemory%3A: an in-memory database keeps nothing"),
    ("query options", True, False, "storage sqlite:///"),
    ("a file: URI", True, False, "storage sqlite:///file%3Ax.db: SQLite URI file names (file:...) are not supported"),
    ("not a URL", True, False, "storage results/tune.db: not a URL; a SQLite file there is sqlite:///results/tune.db"),
    ("credentials, no scheme", True, False, "storage ***: not a SQLAlchemy URL"),  # what may hold a password is hidden
    ("an @ in the password", True, False, "storage postgresql://u:***@"),
]
ENDINGS = {"missing": "does not exist (run `tune search` first, or pass the --results-dir or --storage the search used)",
           "a missing folder": "does not exist; create it first (a search creates only its results folder)",
           "a file in place of the folder": "is a file, not a folder (a search creates only its results folder)",
           "a directory": ": not a file",
           "a text file": ": not a SQLite database; refused (tune never writes a file it did not make)",
           "another application's database": "(customers); refused. Point --storage at a database of its own",
           "query options": "give a plain sqlite:///path/tune.db",
           "an @ in the password": "the user or password holds an '@'; write it as %40"}


@pytest.mark.parametrize("what, create, own_folder, refused", CASES)
def test_a_storage_url_opens_or_is_refused_in_one_line_creating_nothing(what, create, own_folder, refused, tmp_path):
    url = _setup(tmp_path, what)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    db = Database(url, create=create, own_folder=own_folder)
    if refused is None:
        kwargs = db.check()
        assert kwargs == {"connect_args": {"timeout": 120}}
        assert db.sqlite_file() == Path(url.removeprefix("sqlite:///"))
    else:
        with pytest.raises(UserError) as e:
            db.check()
        line = str(e.value)
        assert "\n" not in line and line.startswith(refused), line
        assert line.endswith(ENDINGS.get(what, line[-20:])), line
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # check() creates nothing


def test_a_search_opens_a_missing_database_creating_its_folder_and_schema(tmp_path):
    db = Database(_url(tmp_path / "results" / "tune.db"), create=True, own_folder=True)
    assert db.storage.get_all_studies() == []
    assert (tmp_path / "results" / "tune.db").read_bytes()[:16] == b"SQLite format 3\x00"
    assert Database(_url(tmp_path / "results" / "tune.db")).storage.get_all_studies() == []  # now readers open it


def test_postgres_urls_get_pings_and_a_connect_timeout(monkeypatch):
    db = Database("postgresql://u:secret@localhost:1/db")
    monkeypatch.setattr(Database, "_check_tables", lambda self, kwargs: None)
    assert db.check() == {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    assert db.sqlite_file() is None


@pytest.mark.parametrize("error, message", [(RuntimeError("password=hunter2 rejected"), "password=*** rejected"),
                                            (RuntimeError(""), "RuntimeError"),
                                            (RuntimeError("first\nsecond"), "first")])
def test_a_database_error_is_one_line_without_the_secret(error, message):
    db = Database("postgresql://u:hunter2@host/db")

    def fail():
        raise error

    with pytest.raises(UserError) as e:
        db.guarded(fail)
    assert str(e.value) == f"cannot open storage postgresql://u:***@host/db: {message}"


class _Racing:
    """Optuna's RDBStorage failing `fails` times with `error`, then made."""

    def __init__(self, fails: int, error: Exception):
        self.fails, self.error, self.calls = fails, error, 0

    def __call__(self, url, engine_kwargs=None, **beat):
        self.calls += 1
        if self.calls <= self.fails:
            raise self.error
        return ("storage", url, engine_kwargs, beat)


def _operational(text: str):
    from sqlalchemy.exc import OperationalError

    return OperationalError("CREATE TABLE studies", {}, Exception(text))


@pytest.mark.parametrize("fails, error, calls, sleeps", [
    (0, None, 1, []),
    (2, "database is locked", 3, [0.2, 0.4]),
    (5, "table studies already exists", 6, [0.2, 0.4, 0.6, 0.8, 1.0]),
    (6, "database is locked", 6, [0.2, 0.4, 0.6, 0.8, 1.0]),  # the sixth failure is raised
    (1, "no such host", 1, []),  # not a race: raised at once
])
def test_a_fresh_schema_is_retried_only_while_workers_race_to_create_it(fails, error, calls, sleeps, monkeypatch):
    import optuna

    racing = _Racing(fails, _operational(error or "x"))
    slept = []
    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    monkeypatch.setattr(database.time, "sleep", slept.append)
    if calls == fails:
        with pytest.raises(Exception, match=error):
            database._create_storage("sqlite:///x.db", {"a": 1}, {"heartbeat_interval": 5})
    else:
        made = database._create_storage("sqlite:///x.db", {"a": 1}, {"heartbeat_interval": 5})
        assert made == ("storage", "sqlite:///x.db", {"a": 1}, {"heartbeat_interval": 5})
    assert racing.calls == calls and slept == pytest.approx(sleeps)


def test_an_integrity_error_is_a_race_too(monkeypatch):
    import optuna
    from sqlalchemy.exc import IntegrityError

    racing = _Racing(1, IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed: version_info")))
    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    monkeypatch.setattr(database.time, "sleep", lambda s: None)
    assert database._create_storage("sqlite:///x.db", {}, {})[0] == "storage" and racing.calls == 2


def _read_only_write(tmp_path: Path) -> Exception:
    """What Optuna raises when a study database opened read-only is written: its StorageInternalError
    ("... invalid data in the commit ...") from SQLAlchemy's error, from sqlite3's."""
    import optuna

    url = _url(tmp_path / "ro.db")
    study_id = optuna.storages.RDBStorage(url).create_new_study([optuna.study.StudyDirection.MAXIMIZE], "x")
    read_only = optuna.storages.RDBStorage(f"sqlite:///file:{tmp_path / 'ro.db'}?mode=ro&uri=true",
                                           skip_table_creation=True, skip_compatibility_check=True)
    with pytest.raises(Exception) as e:
        read_only.set_study_user_attr(study_id, "k", 1)
    return e.value


@pytest.mark.parametrize("fault, said", [
    (_read_only_write, "the study database refused a write (attempt to write a readonly database); is its disk full"),
    (lambda tmp_path: OSError(28, "No space left on device", str(tmp_path / "f")), "/f: the disk is full"),
    (lambda tmp_path: ValueError("not ours"), None),
])
def test_a_fault_of_the_system_is_one_line_saying_what_happened(fault, said, tmp_path):
    """A read-only database in `tune ensemble --reevaluate` quoted Optuna's wrapper ("invalid data
    in the commit") rather than what SQLite said."""
    from tuner.errors import describe_fault

    line = describe_fault(fault(tmp_path))
    assert line == said if said is None else (said in line and "\n" not in line and "invalid data" not in line)
