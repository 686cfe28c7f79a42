"""Bad input, faults and attacks, one table per class (RELIABILITY.md lists them with their
counts). Every case goes through the real `tune` entry point and must end in one line on
stderr with the documented exit code, no traceback, the existing study's records and files
unchanged and nothing written outside the results folder."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ENDLESS_SPACE, TINY_SPACE, run_main
from tests.data.test_sources import make_folder

STUDY = "existing"
SECRET = "hunter2"


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    """A results folder holding one study, 'existing': 2 trials of 1 epoch and their evaluation."""
    results = tmp_path_factory.mktemp("trust") / "results"
    from tuner.cli import main

    with pytest.raises(SystemExit) as e:
        main(["search", "--space", str(TINY_SPACE), "--study", STUDY, "--trials", "2", "--epochs", "1",
              "--results-dir", str(results), "--seed", "0", "--jobs", "1", "--in-process"])
    assert e.value.code == 0
    return results


def snapshot(results: Path) -> dict[str, object]:
    """Every file under the results folder with its checksum, and every trial record."""
    from tuner.store import SearchStore

    files = {str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(results.rglob("*")) if p.is_file() and p.name != "tune.db"}
    store = SearchStore(None, results)
    trials = [(t.number, t.state, t.value, json.dumps(t.params, sort_keys=True)) for t in store.trials.all(STUDY)]
    return {"files": files, "trials": trials, "studies": store.studies.names(),
            "evaluations": len(store.studies.attr(STUDY, "evaluations", []))}


def tree(folder: Path, skip: Path | None = None) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if skip is None or skip not in (p, *p.parents)}


def one_line(err: str) -> str:
    lines = err.rstrip("\n").splitlines()  # a blank line before it counts as a line too
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def check_refused(args: list[str], expected: str, study_dir: Path, work: Path, capsys, monkeypatch,
                  code: int = 2) -> str:
    """Run `tune ARGS` from `work`: one line containing `expected`, exit `code`, no traceback,
    the study as it was, nothing new in `work` outside the results folder."""
    monkeypatch.chdir(work)
    before, outside = snapshot(study_dir), tree(work, study_dir)
    status, out, err = run_main(args, capsys)
    line = one_line(err)
    assert status == code, (out, err)
    assert out == "", out  # nothing before the one line either (no header of a search that never started)
    assert expected in line, line
    assert "Traceback" not in out + err and SECRET not in out + err
    assert snapshot(study_dir) == before
    assert tree(work, study_dir) == outside, "wrote outside the results folder"
    return line


def search_args(study_dir: Path, *extra: str, jobs: bool = True) -> list[str]:
    return ["search", "--space", str(TINY_SPACE), "--study", STUDY, "--epochs", "1", "--trials", "5",
            "--results-dir", str(study_dir), "--no-ensemble", "--seed", "0", *(["--jobs", "1"] * jobs), *extra]


def _space(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


PIXELS = np.random.default_rng(0).integers(0, 256, (90, 28, 28), dtype=np.uint8)
GOOD = {"x_train": PIXELS[:80], "y_train": np.arange(80) % 10, "x_test": PIXELS[80:], "y_test": np.arange(10)}


# ---- 1. where a study name can write ----------------------------------------------------------
NAME_CASES = [
    ("parent path", lambda d: ["--study", "../../escaped"]),
    ("absolute path", lambda d: ["--study", str(d / "elsewhere" / "abs")]),
    ("through another study", lambda d: ["--study", f"x/../{STUDY}"]),
    ("300 characters", lambda d: ["--study", "a" * 300]),
    ("empty", lambda d: ["--study", ""]),
    ("hidden", lambda d: ["--study", ".hidden"]),
    ("dot dot", lambda d: ["--study", ".."]),
    ("space inside", lambda d: ["--study", "a b"]),
    ("backslash", lambda d: ["--study", "a\\..\\b"]),
    ("newline", lambda d: ["--study", "a\nb"]),
    ("non-ascii", lambda d: ["--study", "caf\u00e9"]),
    ("NUL byte", lambda d: ["--study", "a\x00b"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, extra", NAME_CASES, ids=[c[0] for c in NAME_CASES])
@pytest.mark.parametrize("command", ["search", "leaderboard", "best", "ensemble"])
def test_a_study_name_is_one_plain_folder_name(command, name, extra, study_dir, tmp_path, capsys, monkeypatch):
    args = search_args(study_dir) if command == "search" else [command, "--results-dir", str(study_dir)]
    args = [a for i, a in enumerate(args) if a != "--study" and (i == 0 or args[i - 1] != "--study")]
    check_refused(args + extra(tmp_path), "is not allowed", study_dir, tmp_path, capsys, monkeypatch)


DATABASE_NAMES = ["tune.db", "tune.db-journal", "tune.db-wal"]


@pytest.mark.parametrize("name", DATABASE_NAMES)
def test_a_study_name_cannot_take_the_databases_own_files(name, study_dir, tmp_path, capsys, monkeypatch):
    args = search_args(study_dir)
    args[args.index("--study") + 1] = name
    check_refused(args, "is taken by the study database", study_dir, tmp_path, capsys, monkeypatch)


@pytest.mark.parametrize("where", ["trials", "trials/0", "logs", "logs/worker-0.log", "kt/oracle.json"])
def test_a_link_below_the_study_folder_cannot_lead_outside(where, study_dir, tmp_path, capsys, monkeypatch):
    import shutil

    results = tmp_path / "results"
    shutil.copytree(study_dir, results)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("mine")
    link = results / STUDY / where
    shutil.rmtree(link) if link.is_dir() else link.unlink(missing_ok=True)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside / "victim" if where.endswith((".log", ".json")) else outside)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(search_args(results, "--trials", "3")[:-2] + ["--jobs", "1", "--isolate"], capsys)
    assert code == 2 and "outside the results folder" in one_line(err)
    assert [p.name for p in outside.iterdir()] == ["victim"] and (outside / "victim").read_text() == "mine"


SPACE_NAME_CASES = ["../../evil", "/abs/evil", "a/b", "x" * 101, ""]


@pytest.mark.parametrize("bad", SPACE_NAME_CASES)
def test_a_space_name_that_is_not_a_plain_name_is_refused(bad, study_dir, tmp_path, capsys, monkeypatch):
    text = TINY_SPACE.read_text().replace("name: tiny_digits", f"name: {json.dumps(bad)}")
    args = ["search", "--space", str(_space(tmp_path / "s.yaml", text)), "--results-dir", str(study_dir),
            "--epochs", "1", "--trials", "1", "--no-ensemble", "--jobs", "1"]
    check_refused(args, "name", study_dir, tmp_path, capsys, monkeypatch)


def test_a_link_in_the_results_folder_cannot_lead_outside(tmp_path, capsys):
    from tuner.store import SearchStore
    from tuner.errors import UserError

    results = tmp_path / "results"
    results.mkdir()
    (tmp_path / "outside").mkdir()
    (results / "linked").symlink_to(tmp_path / "outside")
    with pytest.raises(UserError, match="outside the results folder"):
        SearchStore(None, results).artifacts.study_dir("linked")


# ---- 2. storage that is not ours ---------------------------------------------------------------
@pytest.fixture(scope="module")
def foreign(study_dir) -> str:
    """A study of plain Optuna in the same database: minimized, other parameters."""
    storage = f"sqlite:///{study_dir / 'tune.db'}"
    study = optuna.create_study(study_name="plain", storage=storage, direction="minimize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: 45.3812 + t.suggest_float("x", 0, 1), n_trials=3)
    return "plain"


def _plain_trials(study_dir: Path) -> list[tuple]:
    study = optuna.load_study(study_name="plain", storage=f"sqlite:///{study_dir / 'tune.db'}")
    return [(t.number, t.state.name, t.value, t.params) for t in study.trials]


FOREIGN_COMMANDS = [
    ["leaderboard", "--study", "plain"], ["best", "--study", "plain"], ["ensemble", "--study", "plain"],
    ["ensemble", "--study", "plain", "--reevaluate"], ["best", "--study", "plain", "--export", "exp"],
    ["search", "--space", str(TINY_SPACE), "--study", "plain", "--trials", "5", "--epochs", "1", "--jobs", "1"],
]


@pytest.mark.slow
@pytest.mark.parametrize("args", FOREIGN_COMMANDS, ids=[" ".join(a[:2] + a[3:4]) for a in FOREIGN_COMMANDS])
def test_a_study_that_tune_did_not_make_is_refused_and_left_alone(args, foreign, study_dir, tmp_path, capsys,
                                                                 monkeypatch):
    before = _plain_trials(study_dir)
    check_refused(args + ["--results-dir", str(study_dir)], "was not made by tune", study_dir, tmp_path, capsys,
                  monkeypatch)
    assert _plain_trials(study_dir) == before


def test_studies_and_the_default_study_skip_other_tools_studies(foreign, study_dir, capsys):
    code, out, _ = run_main(["studies", "--json", "--results-dir", str(study_dir)], capsys)
    assert code == 0 and [s["study"] for s in json.loads(out)] == [STUDY]
    code, out, _ = run_main(["leaderboard", "--json", "--results-dir", str(study_dir)], capsys)
    assert code == 0 and json.loads(out)["study"] == STUDY  # the only study tune made
    code, out, _ = run_main(["studies", "--results-dir", str(study_dir)], capsys)
    assert code == 0 and "1 study in this storage was not made by tune" in out


def _sql(path: Path, *statements: str) -> Path:
    import sqlite3

    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement)
    return path


def _other_app_db(path: Path) -> Path:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("create table users (id integer primary key, name text)")
        db.execute("insert into users (name) values ('ada')")
    return path


def _optuna_db_with(path: Path, statement: str) -> str:
    """A fresh Optuna database (its whole schema, no study) changed by one SQL statement."""
    optuna.storages.RDBStorage(f"sqlite:///{path}").engine.dispose()
    return f"sqlite:///{_sql(path, statement)}"


STORAGE_CASES = [
    ("another application's SQLite file", lambda d: f"sqlite:///{_other_app_db(d / 'app.db')}", "not an Optuna study database's"),
    ("a table named like Optuna's", lambda d: f"sqlite:///{_sql(d / 't.db', 'create table trials (id int, name text)')}", "not an Optuna study database's"),
    ("version_info beside another table", lambda d: f"sqlite:///{_sql(d / 'v.db', 'create table version_info (id int)', 'create table users (id int)')}", "not an Optuna study database's"),
    ("only a view", lambda d: f"sqlite:///{_sql(d / 'w.db', 'create view v as select 1')}", "not an Optuna study database's"),
    ("Optuna's schema and another table", lambda d: _optuna_db_with(d / "o1.db", "create table notes (x)"), "(notes)"),
    ("Optuna's schema and a trigger", lambda d: _optuna_db_with(
        d / "o2.db", "create trigger wipe after insert on trials begin delete from trial_values; end"), "(trigger wipe)"),
    ("Optuna's schema less a table", lambda d: _optuna_db_with(d / "o3.db", "drop table trial_values"),
     "lacks Optuna's table trial_values"),
    ("a text file", lambda d: f"sqlite:///{_space(d / 'notes.db', 'my notes')}", "not a SQLite database"),
    ("a folder", lambda d: f"sqlite:///{(d / 'dir.db').mkdir() or d / 'dir.db'}", "not a file"),
]
READ_COMMANDS = [["leaderboard"], ["studies"], ["best"], ["ensemble"], ["best", "--export", "exp"]]


@pytest.mark.parametrize("case, url, expected", STORAGE_CASES, ids=[c[0] for c in STORAGE_CASES])
@pytest.mark.parametrize("command", [["search", "--space", str(TINY_SPACE), "--epochs", "1"], *READ_COMMANDS],
                         ids=lambda c: c[0] + (" --export" if "--export" in c else ""))
@pytest.mark.slow
def test_a_database_that_is_not_an_optuna_one_is_never_written(command, case, url, expected, study_dir, tmp_path,
                                                               capsys, monkeypatch):
    from tuner.store import database

    # No other process is creating these schemas: the wait for one (2 s, twice) is not tested here.
    monkeypatch.setattr(database, "_SCHEMA_WAIT_SECONDS", 0.0)
    url = url(tmp_path)
    path = Path(url.removeprefix("sqlite:///"))
    before = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    check_refused(command + ["--storage", url], expected, study_dir, tmp_path, capsys, monkeypatch)
    assert (hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None) == before


URL_CASES = [("in memory", "sqlite://", "an in-memory database keeps nothing"),
             ("in memory, named", "sqlite:///:memory:", "an in-memory database keeps nothing"),
             ("a SQLite URI", "sqlite:///file:x.db", "SQLite URI file names"),
             ("memory by URI", "sqlite:///x.db?mode=memory&uri=true", "query options on a SQLite URL"),
             ("read-only by URI", "sqlite:///x.db?mode=ro&uri=true", "query options on a SQLite URL"),
             ("an ignored option", "sqlite:///x.db?mode=memory", "query options on a SQLite URL"),
             ("a folder that does not exist", "sqlite:///no/such/folder/x.db", "the folder no/such/folder does not exist")]


@pytest.mark.parametrize("case, url, expected", URL_CASES, ids=[c[0] for c in URL_CASES])
@pytest.mark.parametrize("command", [["search", "--space", str(TINY_SPACE), "--epochs", "1"], ["studies"]],
                         ids=lambda c: c[0])
@pytest.mark.slow
def test_storage_that_keeps_nothing_or_hides_a_file_is_refused(command, case, url, expected, study_dir, tmp_path,
                                                               capsys, monkeypatch):
    if command[0] == "studies" and "folder" in case:
        expected = "no studies yet"  # a command that reads says there is nothing before the folder matters
    check_refused(command + ["--storage", url], expected, study_dir, tmp_path, capsys, monkeypatch)
    assert not (tmp_path / "no").exists()  # a typo in a path creates no folders


@pytest.mark.slow
@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: " ".join(c))
def test_commands_that_read_create_nothing(command, study_dir, tmp_path, capsys, monkeypatch):
    check_refused(command + ["--results-dir", "doesnotexist"], "no studies yet", study_dir, tmp_path, capsys,
                  monkeypatch)
    assert not (tmp_path / "doesnotexist").exists()
    empty = tmp_path / "empty.db"
    check_refused(command + ["--storage", f"sqlite:///{empty}"], "no studies yet", study_dir, tmp_path, capsys,
                  monkeypatch)
    assert not empty.exists()


def test_report_creates_no_results_folder(study_dir, tmp_path, capsys, monkeypatch):
    """With --storage elsewhere, a mistyped --results-dir became a new tree holding the report."""
    args = ["report", "--no-images", "--storage", f"sqlite:///{study_dir / 'tune.db'}", "--results-dir", "newres"]
    check_refused(args, "the results folder newres does not exist", study_dir, tmp_path, capsys, monkeypatch)
    assert not (tmp_path / "newres").exists()


INCOMPLETE_SCHEMA = [("DELETE FROM alembic_version", "a row in alembic_version"),
                     ("DELETE FROM version_info", "a row in version_info"),
                     ("DROP TABLE trial_heartbeats", "lacks trial_heartbeats")]


@pytest.mark.parametrize("sql, expected", INCOMPLETE_SCHEMA, ids=[c[0] for c in INCOMPLETE_SCHEMA])
@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: " ".join(c))
def test_commands_that_read_do_not_complete_a_partial_schema(command, sql, expected, study_dir, tmp_path, capsys,
                                                              monkeypatch):
    """Opening a database, Optuna creates the tables it lacks and writes its version rows back."""
    from tuner.store import database

    monkeypatch.setattr(database, "_SCHEMA_WAIT_SECONDS", 0.0)  # a schema part-way is waited for: not here
    results = tmp_path / "results"
    shutil.copytree(study_dir, results)
    database = _sql(results / "tune.db", sql)
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    # The damaged copy cannot be snapshot through tune; nothing else may change under tmp_path.
    check_refused(command + ["--results-dir", str(results)], expected, study_dir, tmp_path, capsys, monkeypatch)
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before


DAMAGE = [  # (whose attribute, key, its JSON in the database): values tune never writes
    ("study", "tune", "null"), ("study", "tune", '"x"'), ("study", "tune", '{"space": [1]}'),
    ("study", "evaluations", '"x"'), ("study", "evaluations", "[1]"), ("study", "evaluations", '[{"when": 1}]'),
    ("study", "test_reads", '"x"'), ("study", "test_reads", "NaN"), ("study", "test_reads", "-1"), ("study", "checks", "{}"),
    ("trial", "params", "null"), ("trial", "params", "[1]"), ("trial", "history", '"x"'),
    ("trial", "history", '{"val_loss": ["x"]}'), ("trial", "seconds", '"x"'), ("trial", "seconds", "NaN"),
    ("trial", "seconds", "-Infinity"), ("trial", "val_accuracy", '"x"'), ("trial", "val_loss", "[1]"),
    ("trial", "val_class_accuracy", "NaN"), ("trial", "val_predicted", "NaN"), ("trial", "best_epoch", "true"),
    ("trial", "max_epochs", "1.5"), ("trial", "reason", "7"),
    ("study", "tune", '{"space": {"params": [1]}}'), ("study", "tune", '{"space": {}, "split": {"class_names": 5}}'),
    ("study", "tune", '{"space": {}, "split": {"test_fingerprint": [1]}}'),
    ("study", "evaluations", '[{"selection": {"members": "x"}}]'), ("study", "evaluations", '[{"test": "x"}]'),
    ("study", "evaluations", '[{"test": {"ensemble": {"accuracy": "hi"}}}]'),
    ("study", "evaluations", '[{"test": {"ensemble": {"accuracy": 5}}}]'), ("trial", "val_accuracy", "-0.5"),
    ("study", "evaluations", '[{"selection": {"members": {"0": -1.0}}}]'), ("trial", "val_class_accuracy", "[0.5, 2]"),
]
NOT_JSON = [("study", "tune", "{bad"), ("trial", "history", "{bad")]
RESUMED = {("study", "tune", "null"), ("study", "test_reads", '"x"'), ("trial", "history", '"x"'),
           ("trial", "seconds", "NaN"), *NOT_JSON}  # a resumed search is tried on these too


@pytest.mark.parametrize("key", ["space", "split"])
def test_a_study_record_without_what_tune_always_writes_is_one_line(key, study_dir, tmp_path, capsys):
    """A study record without its space was an internal error in `best --export` and `report`."""
    import shutil
    import sqlite3

    results = tmp_path / "results"
    shutil.copytree(study_dir, results)
    with contextlib.closing(sqlite3.connect(results / "tune.db")) as db, db:
        db.execute(f"UPDATE study_user_attributes SET value_json = json_remove(value_json, '$.{key}') WHERE key = 'tune'")
    for command in (["best", "--export", str(tmp_path / "exp")], ["report", "--out", str(tmp_path / "report")],
                    ["ensemble", "--reevaluate"]):
        code, out, err = run_main(command + ["--results-dir", str(results)], capsys)
        if code == 0:  # what this command reads of the record is there
            continue
        assert code == 2 and f"record has no {key}, which tune always writes" in one_line(err), (command, err)

def _damage(database: Path, whose: str, key: str, value_json: str) -> None:
    """Set one user attribute of the study, or of its first trial, as raw JSON text in the database."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(database)) as db, db:
        study = db.execute("SELECT study_id FROM studies WHERE study_name = ?", (STUDY,)).fetchone()[0]
        owner = study if whose == "study" else db.execute("SELECT min(trial_id) FROM trials WHERE study_id = ?",
                                                          (study,)).fetchone()[0]
        db.execute(f"DELETE FROM {whose}_user_attributes WHERE {whose}_id = ? AND key = ?", (owner, key))
        db.execute(f"INSERT INTO {whose}_user_attributes ({whose}_id, key, value_json) VALUES (?, ?, ?)",
                   (owner, key, value_json))


@pytest.mark.parametrize("whose, key, value_json", DAMAGE + NOT_JSON)
def test_a_damaged_or_foreign_record_is_one_line_in_every_command_that_reads_it(whose, key, value_json, study_dir,
                                                                                tmp_path, capsys):
    """A value of a kind tune never writes (another program's database, a damaged file) is one
    line naming the study, the record and the key, in each command that reads it; never a crash."""
    import shutil

    results = tmp_path / "results"
    shutil.copytree(study_dir, results)
    _damage(results / "tune.db", whose, key, value_json)
    named = "split" if '"split"' in value_json else "space" if '"space"' in value_json else key  # inside the study's record
    expected = ("a record Optuna cannot read (JSONDecodeError" if (whose, key, value_json) in NOT_JSON else
                f"'{named}' is not what tune writes")
    for command in (["leaderboard"], ["best"], ["studies"]):
        code, out, err = run_main(command + ["--results-dir", str(results)], capsys)
        if code == 0 and command != ["best"]:  # `studies` and the board read fewer records than `best`
            continue
        assert code in (1, 2) and expected in one_line(err) and "internal error" not in err, (command, err)
    if (whose, key, value_json) not in RESUMED:
        return
    search = ["search", "--space", str(TINY_SPACE), "--study", STUDY, "--trials", "3", "--epochs", "1", "--results-dir",
              str(results), "--seed", "0", "--jobs", "1", "--in-process", "--no-check", "--no-ensemble"]
    code, out, err = run_main(search, capsys)
    assert code in (1, 2) and expected in one_line(err), err
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{results / 'tune.db'}") if "bad" not in value_json else None
    assert study is None or len(study.trials) == 2  # stopped before any trial


@pytest.mark.parametrize("alive", [True, False], ids=["its process lives", "its process ended"])
def test_a_running_trial_whose_process_ended_is_said_to_be_so(alive, study_dir, tmp_path, capsys):
    """After a search was killed, `leaderboard` counted its trials as running for ever."""
    import shutil
    import socket
    import sqlite3
    import subprocess
    import sys

    from tuner.store.workers import this_worker

    results = tmp_path / "results"
    shutil.copytree(study_dir, results)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    worker = {**this_worker(), "pid": os.getpid() if alive else int(ended.stdout)}
    assert worker["host"] == socket.gethostname()
    with contextlib.closing(sqlite3.connect(results / "tune.db")) as db, db:
        trial = db.execute("SELECT max(trial_id) FROM trials JOIN studies USING (study_id) WHERE study_name = ?",
                           (STUDY,)).fetchone()[0]  # other tests may have added studies to this database
        db.execute("UPDATE trials SET state = 'RUNNING', datetime_complete = NULL WHERE trial_id = ?", (trial,))
        db.execute("DELETE FROM trial_values WHERE trial_id = ?", (trial,))
        db.execute("INSERT OR REPLACE INTO trial_user_attributes (trial_id, key, value_json) VALUES (?, 'worker', ?)",
                   (trial, json.dumps(worker)))
    before = (results / "tune.db").read_bytes()
    code, out, err = run_main(["leaderboard", "--study", STUDY, "--results-dir", str(results)], capsys)
    said = "1 running (1 of them in a process that has ended; the next search marks them failed)"
    assert code == 0 and "1 running" in out and (said in " ".join(out.split())) != alive, out
    code, out, err = run_main(["leaderboard", "--study", STUDY, "--results-dir", str(results), "--json"], capsys)
    assert json.loads(out)["running_ended"] == (0 if alive else 1)
    assert (results / "tune.db").read_bytes() == before  # said, not changed: a read-only command


@pytest.mark.parametrize("sql", [
    "UPDATE trial_values SET value = NULL", "UPDATE trial_values SET value = 'abc'",
    "UPDATE trials SET state = 'BOGUS'", "UPDATE trials SET datetime_start = 'garbage'",
    "UPDATE trial_params SET param_value = 99 WHERE param_name = 'optimizer'",
])
def test_a_trial_optuna_cannot_read_is_one_line(sql, study_dir, tmp_path, capsys):
    import shutil
    import sqlite3

    results = tmp_path / "results"
    shutil.copytree(study_dir, results)
    with contextlib.closing(sqlite3.connect(results / "tune.db")) as db, db:
        db.execute(sql)
    for command in (["leaderboard"], ["best"], ["studies"]):
        code, out, err = run_main(command + ["--results-dir", str(results)], capsys)
        line = err if command == ["studies"] else one_line(err)  # `studies` lists the rest, and warns
        assert code == (0 if command == ["studies"] else 2), (command, err)
        assert "a record Optuna cannot read" in line or "its 'value' is not what tune writes" in line, (command, err)


INCONSISTENT = [  # (SQL, what the one line says): each record of its kind, but not of one trial or study together
    ("DELETE FROM trial_values", "it is complete but has no value"),
    ("UPDATE trials SET number = 0", "more than one is numbered 0"),
    ("""UPDATE trial_user_attributes SET value_json = '{"loss": [1.0], "val_loss": [1.0, 0.5]}' WHERE key = 'history'""",
     "its 'history' is not what tune writes"),
    ("UPDATE trial_user_attributes SET value_json = '5' WHERE key = 'best_epoch'", "its best epoch (5) is past its history"),
    ("UPDATE trial_user_attributes SET value_json = json_set(value_json, '$.width', 'wide') WHERE key = 'params'",
     "its parameter width: 'wide' is not a whole number"),
    ("""UPDATE study_user_attributes SET value_json = json_set(value_json, '$.format', 99) WHERE key = 'tune'""",
     "was written by a newer tune (its format 99; this one reads up to 2)"),
    ("""UPDATE study_user_attributes SET value_json = json_set(value_json, '$[0].class_names', json('["a", "b"]'))
        WHERE key = 'evaluations'""", "it names 2 classes, but its confusion matrices have 10 rows"),
    ("""UPDATE study_user_attributes SET value_json = json_set(value_json, '$[0].class_names[1]', '0')
        WHERE key = 'evaluations'""", "its class names repeat one"),
    ("UPDATE trial_values SET value = 5", "its value 5 is not one its objective (accuracy) can take"),
    ("UPDATE trial_values SET value = -0.5", "its value -0.5 is not one its objective (accuracy) can take"),
    ("UPDATE study_directions SET direction = 'MINIMIZE'",
     "its direction (minimize) is not its objective's (maximize accuracy)"),
]


@pytest.fixture(scope="module")
def two_studies(study_dir, tmp_path_factory) -> Path:
    """The results folder of `study_dir` with a second study, 'healthy', of one trial."""
    import shutil

    from tuner.cli import main

    results = tmp_path_factory.mktemp("two") / "results"
    shutil.copytree(study_dir, results)
    with pytest.raises(SystemExit) as e:
        main(["search", "--space", str(TINY_SPACE), "--study", "healthy", "--trials", "1", "--epochs", "1",
              "--results-dir", str(results), "--seed", "0", "--jobs", "1", "--in-process", "--no-check", "--no-ensemble"])
    assert e.value.code == 0
    return results


@pytest.mark.parametrize("sql, expected", INCONSISTENT, ids=[c[1][:24] for c in INCONSISTENT])
def test_records_that_disagree_with_each_other_are_one_line(sql, expected, two_studies, tmp_path, capsys):
    """Every command that reads trials (the report's figures too), or evaluations, says what
    disagrees; `studies` lists the other studies and names one whose trials disagree."""
    import shutil
    import sqlite3

    results = tmp_path / "results"
    shutil.copytree(two_studies, results)
    study = f"(SELECT study_id FROM studies WHERE study_name = '{STUDY}')"
    owner = f"study_id IN {study}" if "study_" in sql else f"trial_id IN (SELECT trial_id FROM trials WHERE study_id IN {study})"
    with contextlib.closing(sqlite3.connect(results / "tune.db")) as db, db:  # the study's records, not the healthy one's
        db.execute(sql.replace("WHERE", f"WHERE {owner} AND") if "WHERE" in sql else f"{sql} WHERE {owner}")
    evaluation = "'evaluations'" in sql  # read by the commands that show or export a test figure
    for command in ([["best"], ["report", "--no-images"], ["ensemble"]] if evaluation else
                    [["leaderboard"], ["best"], ["report", "--no-images"], ["ensemble"]]):
        code, out, err = run_main(command + ["--study", STUDY, "--results-dir", str(results)], capsys)
        assert code == 2 and expected in one_line(err), (command, err)
    if evaluation:
        return
    code, out, err = run_main(["studies", "--results-dir", str(results)], capsys)
    assert code == 0 and "healthy" in out and f" {STUDY} " not in out, out
    assert err.startswith(f"warning: not listed: study {STUDY}") and expected in err, err


NOT_JSON_STUDY = [  # Optuna reads every study's attributes at once: one of these hid every study
    "UPDATE study_user_attributes SET value_json = '{bad' WHERE key = 'tune' AND study_id = {study}",
    "INSERT INTO study_system_attributes (study_id, key, value_json) VALUES ({study}, 'other', '{bad')",
]


@pytest.mark.parametrize("sql", NOT_JSON_STUDY, ids=["user attribute", "system attribute"])
def test_a_study_optuna_cannot_read_hides_no_other(sql, two_studies, tmp_path, capsys):
    import shutil
    import sqlite3

    results = tmp_path / "results"
    shutil.copytree(two_studies, results)
    with contextlib.closing(sqlite3.connect(results / "tune.db")) as db, db:
        study = db.execute("SELECT study_id FROM studies WHERE study_name = ?", (STUDY,)).fetchone()[0]
        db.execute(sql.replace("{study}", str(study)))
    code, out, err = run_main(["studies", "--results-dir", str(results)], capsys)
    assert code == 0 and "healthy" in out, (out, err)
    if "user" in sql:  # the study's own record is unreadable: named, not listed
        assert f" {STUDY} " not in out and err.startswith(f"warning: not listed: study {STUDY}: a record Optuna "
                                                          f"cannot read (JSONDecodeError"), err
        code, out, err = run_main(["leaderboard", "--results-dir", str(results)], capsys)
        assert code == 2 and f"several studies in the storage; pick one with --study (healthy, {STUDY})" in one_line(err)
    code, out, err = run_main(["leaderboard", "--study", "healthy", "--results-dir", str(results)], capsys)
    assert code == 0 and "trial" in out, err


def test_a_schema_version_optuna_does_not_know_is_not_blamed_on_an_old_optuna(study_dir, tmp_path, capsys):
    import shutil
    import sqlite3

    results = tmp_path / "results"
    shutil.copytree(study_dir, results)
    with contextlib.closing(sqlite3.connect(results / "tune.db")) as db, db:
        db.execute("UPDATE alembic_version SET version_num = 'v9.9.9'")
    code, out, err = run_main(["leaderboard", "--results-dir", str(results)], capsys)
    assert code == 2 and f"not one that Optuna {optuna.__version__} knows" in one_line(err), err
    assert "set up by" not in err


_JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
                            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                            max_leaves=6)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["params", "history", "best_epoch", "val_loss", "val_accuracy", "reason", "seconds", "timings",
                            "seed", "max_epochs", "val_class_accuracy", "val_predicted"]), value=_JSON_VALUES)
def test_any_stored_trial_value_reads_or_is_one_line(key, value, study_dir, tmp_path_factory, capsys):
    import shutil

    results = tmp_path_factory.mktemp("damaged") / "results"
    shutil.copytree(study_dir, results)
    _damage(results / "tune.db", "trial", key, json.dumps(value))
    for command in (["leaderboard"], ["best"]):
        code, out, err = run_main(command + ["--results-dir", str(results)], capsys)
        assert code == 0 or code == 2 and f"'{key}' is not what tune writes" in one_line(err), (command, err)


# ---- 3. data that is silently wrong --------------------------------------------------------------
def _png16(folder: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(("dark", "light")):
        (folder / name).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(c * 30000, c * 30000 + 20000, (12, 12)).astype(np.uint16)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")
    return folder


DATA_CASES = [
    ("more images than labels", {"x_train": PIXELS[:80], "y_train": np.arange(40) % 10}, "x_train has 80 images but y_train has 40"),
    ("more labels than images", {"y_train": np.arange(120) % 10}, "x_train has 80 images but y_train has 120"),
    ("test lengths disagree", {"y_test": np.arange(7)}, "x_test has 10 images but y_test has 7"),
    ("NaN pixels", {"x_train": np.where(PIXELS[:80] > 250, np.nan, PIXELS[:80] / 255.0)}, "NaN or infinite"),
    ("infinite pixels", {"x_test": np.full((10, 28, 28), np.inf)}, "NaN or infinite"),
    ("standardized pixels", {"x_train": (PIXELS[:80] - 127.5) / 64.0}, "negative values"),
    ("16-bit pixels", {"x_train": PIXELS[:80].astype(np.uint16) * 200}, "pixels reach"),
    ("negative int pixels", {"x_train": PIXELS[:80].astype(np.int16) - 1}, "negative values"),
    ("blank images", {"x_train": np.zeros((80, 28, 28), np.uint8)}, "the images are blank"),
    ("blank float images", {"x_train": np.zeros((80, 28, 28), np.float64)}, "the images are blank"),
    ("soft labels", {"y_train": np.full((80, 10), 0.1)}, "not one-hot rows"),
    ("label matrix", {"y_train": np.ones((80, 2, 2), int)}, "shape (n,)"),
    ("fractional labels", {"y_train": (np.arange(80) % 10) + 0.5}, "whole class indices"),
    ("NaN labels", {"y_train": np.full(80, np.nan)}, "whole class indices"),
    ("string labels", {"y_train": np.array(["cat"] * 80)}, "integer class indices"),
    ("boolean labels", {"y_train": np.arange(80) % 2 == 0}, "integer class indices"),
    ("huge label", {"y_train": np.full(80, 10**12)}, "more than 10000 classes"),
    ("negative labels", {"y_train": -np.ones(80, int)}, "labels must be 0 or more"),
    ("labels out of range", {"y_train": np.arange(80)}, "out of range for 10 classes"),
    ("no images", {"x_train": np.zeros((0, 28, 28), np.uint8), "y_train": np.zeros(0, int)}, "no images"),
    ("images of no pixels", {"x_train": np.zeros((80, 28, 0), np.float32)}, "hold no pixels"),
    ("channels first", {"x_train": PIXELS[:80].reshape(80, 1, 28, 28).repeat(3, 1)}, "channels first"),
    ("complex pixels", {"x_train": PIXELS[:80].astype(np.complex64)}, "pixels must be numbers"),
    ("test images of another shape", {"x_test": PIXELS[80:, :14]}, "test images are 14x28x1"),
    ("images of another shape", {"x_train": PIXELS[:80, :14], "x_test": PIXELS[80:, :14]}, "expects 28x28x1"),
    ("a missing array", {"x_test": None}, "missing arrays ['x_test']"),
    ("an object array", {"y_train": np.array([{"a": 1}] * 80, dtype=object)}, "not a readable .npz"),
]


@pytest.mark.slow
@pytest.mark.parametrize("case, change, expected", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_data_that_would_be_silently_wrong_is_refused_before_any_trial(case, change, expected, study_dir, tmp_path,
                                                                       capsys, monkeypatch):
    arrays = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)  # an object array needs pickling, which tune refuses to load
    check_refused(search_args(study_dir, "--space", "mnist", "--data", str(path)), expected, study_dir, tmp_path,
                  capsys, monkeypatch)


FIXABLE = [
    ("float pixels in [0, 1]", {"x_train": PIXELS[:80] / 255.0}, "scaled to 0-255"),
    ("float pixels in [0, 255]", {"x_train": PIXELS[:80].astype(np.float32)}, "read as 8-bit values"),
    ("int64 pixels", {"x_train": PIXELS[:80].astype(np.int64)}, "read as 8-bit values"),
    ("uint16 pixels up to 255", {"x_train": PIXELS[:80].astype(np.uint16)}, "read as 8-bit values"),
    ("one-hot labels", {"y_train": np.eye(10, dtype=np.float32)[np.arange(80) % 10]}, "one-hot labels"),
    ("column labels", {"y_train": (np.arange(80) % 10)[:, None]}, None),
    ("whole float labels", {"y_train": (np.arange(80) % 10).astype(float)}, "read as class indices"),
]


@pytest.mark.parametrize("case, change, note", FIXABLE, ids=[c[0] for c in FIXABLE])
def test_data_with_one_meaning_is_converted_and_said(case, change, note, tmp_path):
    from tuner.data.sources import find_and_read

    path = _npz(tmp_path / "data.npz", **{**GOOD, **change})
    raw = find_and_read("mnist", (28, 28, 1), path, tmp_path / "cache")
    assert raw.x_train.dtype == np.uint8 and raw.y_train.dtype == np.int64
    assert np.array_equal(raw.x_train[..., 0], PIXELS[:80])  # the same pixels, whatever came in
    assert np.array_equal(raw.y_train, np.arange(80) % 10)
    assert (note is None) == (not raw.notes) and (note is None or any(note in n for n in raw.notes))


def test_16_bit_pngs_keep_their_contrast(tmp_path):
    from tuner.data.sources import find_and_read

    raw = find_and_read("folder", (12, 12, 1), _png16(tmp_path / "png16"), tmp_path / "cache")
    dark, light = raw.x_train[raw.y_train == 0], raw.x_train[raw.y_train == 1]
    # 0-20000 and 30000-50000 of 65535, scaled by 257: means near 39 and 156, not all 255.
    assert 30 < dark.mean() < 50 and 145 < light.mean() < 165 and dark.max() < light.min()


def test_a_corrupt_decode_cache_entry_is_decoded_again(tmp_path):
    from tuner.data.sources import read_image_folder

    folder, cache = make_folder(tmp_path / "imgs"), tmp_path / "cache"
    first = read_image_folder(folder, (16, 16, 3), cache)
    (entry,) = (cache / "decoded").iterdir()
    entry.write_bytes(b"junk")
    again = read_image_folder(folder, (16, 16, 3), cache)
    assert np.array_equal(first.x_train, again.x_train) and entry.stat().st_size > 100  # replaced


def test_an_unwritable_decode_cache_only_costs_time(tmp_path):
    from tuner.data.sources import read_image_folder

    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder would go")  # fails for root too
    raw = read_image_folder(make_folder(tmp_path / "imgs"), (16, 16, 3), blocker)
    assert len(raw.y_train) == 16 and any("cannot write the decode cache" in n for n in raw.notes)


# ---- 4. resources -----------------------------------------------------------------------------
def _zip_of(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _bomb(d: Path) -> Path:
    return _zip_of(d / "bomb.zip", {"a/x.png": bytes(50 << 20), "b/y.png": b"x"})  # 50 MiB of zeros: 50 KB zipped


def _many(d: Path) -> Path:
    return _zip_of(d / "many.zip", {f"{c}/{i}.png": b"x" for c in "ab" for i in range(30)})


def _yaml_bomb(d: Path) -> Path:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefgh"):
        prev = "abcdefgh"[i]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    lines.append("name: bomb\ndataset: digits\nparams: {}")
    return _space(d / "bomb.yaml", "\n".join(lines) + "\n")


RESOURCE_CASES = [
    ("zip bomb", {"TUNE_MAX_EXTRACT_BYTES": str(10 << 20)}, lambda d: ["--space", "folder", "--data", str(_bomb(d))],
     "would extract 0.05 GiB (52428801 bytes), more than the limit of 0.01 GiB"),
    ("too many members", {"TUNE_MAX_EXTRACT_FILES": "50"}, lambda d: ["--space", "folder", "--data", str(_many(d))],
     "60 members, more than the limit of 50"),
    ("YAML alias bomb", {}, lambda d: ["--space", str(_yaml_bomb(d))], "YAML expands to more than 100000 values"),
    ("YAML alias loop", {}, lambda d: ["--space", str(_space(d / "l.yaml", "name: &n [*n]\n"))], "refers to itself"),
    ("YAML nested deep", {}, lambda d: ["--space", str(_space(d / "n.yaml", "a: " + "[" * 5000 + "]" * 5000))],
     "nested"),
    ("a huge space file", {}, lambda d: ["--space", str(_space(d / "h.yaml", "name: x\n" + "#" * (2 << 20)))],
     "a space file is at most"),
    ("64 jobs", {}, lambda d: ["--jobs", "64"], "--jobs 64: this machine runs"),
    ("bad extract limit", {"TUNE_MAX_EXTRACT_BYTES": "lots"}, lambda d: [], "TUNE_MAX_EXTRACT_BYTES='lots'"),
]


@pytest.mark.slow
@pytest.mark.parametrize("case, env, extra, expected", RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES])
def test_resources_are_bounded_before_they_are_spent(case, env, extra, expected, study_dir, tmp_path, capsys,
                                                     monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cache = tmp_path / "cache"
    monkeypatch.setenv("TUNE_CACHE_DIR", str(cache))
    check_refused(search_args(study_dir, jobs=False) + extra(tmp_path), expected, study_dir, tmp_path, capsys, monkeypatch)
    assert not any(p.is_file() for p in cache.rglob("*")), "extracted something"


def test_an_archive_larger_than_the_free_disk_is_refused(tmp_path, monkeypatch):
    import shutil as shutil_module

    from tuner.data.archives import extract
    from tuner.errors import UserError

    monkeypatch.setattr(shutil_module, "disk_usage", lambda p: shutil_module._ntuple_diskusage(10**9, 10**9, 1000))
    with pytest.raises(UserError, match="has 0.00 GiB .* free"):
        extract(_zip_of(tmp_path / "a.zip", {"a/x.png": bytes(5000)}), tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---- 5. exports and records that disagree ---------------------------------------------------------
def _latest(study_dir: Path) -> dict:
    from tuner.store import SearchStore

    return SearchStore(None, study_dir).evaluations.latest(STUDY)


EXPORT_FILES = {"model.keras", "best_trial.keras", "labels.json", "input.json", "config.yaml", "metrics.json", "history.json",
                "README.md"}


def check_export(folder: Path, record: dict) -> None:
    """A complete export whose models are the record's, byte for byte."""
    assert {p.name for p in folder.iterdir()} == EXPORT_FILES
    metrics = json.loads((folder / "metrics.json").read_text())
    for name in ("model.keras", "best_trial.keras"):
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        assert digest == record.files[name].sha256 == metrics["sha256"][name]


def test_an_export_is_complete_and_matches_its_record(study_dir, tmp_path, capsys):
    code, _, err = run_main(["best", "--study", STUDY, "--results-dir", str(study_dir), "--export",
                             str(tmp_path / "exp")], capsys)
    assert code == 0, err
    check_export(tmp_path / "exp", _latest(study_dir))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_an_export_to_the_current_folder_fills_it(study_dir, tmp_path, capsys, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    code, _, err = run_main(["best", "--study", STUDY, "--results-dir", str(study_dir), "--export", "."], capsys)
    assert code == 0, err
    check_export(here, _latest(study_dir))
    assert oct(here.stat().st_mode & 0o777) == "0o755"


def test_export_refuses_a_folder_with_the_users_files_unless_forced(study_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "exp"
    out.mkdir()
    (out / "README.md").write_text("my own notes")
    args = ["best", "--study", STUDY, "--results-dir", str(study_dir), "--export", str(out)]
    check_refused(args, "the folder is not empty (holds README.md)", study_dir, tmp_path, capsys, monkeypatch)
    assert (out / "README.md").read_text() == "my own notes"
    code, _, err = run_main(args + ["--force"], capsys)
    assert code == 0, err
    check_export(out, _latest(study_dir))


TAMPER_CASES = [
    ("junk model", "model.keras", lambda p: p.write_bytes(b"junk!"), "checksum differs"),
    ("other members", "model.keras", lambda p: p.write_bytes(p.read_bytes()[::-1]), "checksum differs"),
    ("best model swapped", "best_trial.keras", lambda p: p.write_bytes(p.read_bytes() + b"x"), "checksum differs"),
    ("model removed", "model.keras", lambda p: p.unlink(), "is missing"),
]


@pytest.mark.parametrize("case, name, tamper, expected", TAMPER_CASES, ids=[c[0] for c in TAMPER_CASES])
def test_an_evaluated_model_that_is_not_its_records_is_never_exported(case, name, tamper, expected, tmp_path, capsys,
                                                                      monkeypatch, study_dir):
    import shutil

    results = tmp_path / "results"
    shutil.copytree(study_dir, results)
    path = results / STUDY / _latest(results).files[name].path
    tamper(path)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(["best", "--study", STUDY, "--results-dir", str(results), "--export", "exp"], capsys)
    assert code == 2 and expected in one_line(err) and out == ""  # refused before anything is shown
    assert not (tmp_path / "exp").exists()


RECORD_TAMPER_CASES = [  # the latest evaluation's record changed: (JSON path, value, what the one line says)
    ("$[#-1].selection.members", '{"55": 1.0}', "names trial 55, which the study does not hold"),
    ("$[#-1].selection.best_trial", "55", "names trial 55, which the study does not hold"),
    ("$[#-1].files.\"model.keras\".path", '"../../../etc/passwd"', "outside"),
    ("$[#-1].selection.members", '{"0/../../x": 1.0}', "not what tune writes"),  # an internal error
    ("$[#-1].selection.temperatures", '{"-1": 1.0}', "not what tune writes"),
    ("$[#-1].selection.best_trial", '"../x"', "not what tune writes"),
    ("$[#-1].selection.candidates", '[0, "x"]', "not what tune writes"),
    ("$[#-1].selection.candidates", "[99]", "names trial 99, which the study does not hold"),  # exported
    ("$[#-1].selection.flips", '{"99": true}', "names trial 99, which the study does not hold"),  # exported
    ("$[#-1].selection.members", "{}", "not what tune writes"),  # an ensemble of no members, exported
    ("$[#-1].class_names", "5", "its class names are not a list of names"),  # an internal error
    ("$[#-1].class_names", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]", "its class names are not a list of names"),  # exported
]


@pytest.mark.parametrize("command", [["best"], ["ensemble"], ["report", "--no-images"]])
def test_a_record_naming_a_trial_the_study_lacks_is_damaged_in_every_command_that_shows_it(command, tmp_path, capsys,
                                                                                          study_dir):
    """Only `best --export` refused it; `best`, `ensemble` and `report` showed "members 99"."""
    import shutil
    import sqlite3

    results = tmp_path / "results"
    shutil.copytree(study_dir, results)
    with contextlib.closing(sqlite3.connect(results / "tune.db")) as db, db:
        db.execute("UPDATE study_user_attributes SET value_json = json_set(value_json, '$[#-1].selection.members', "
                   "json('{\"99\": 1.0}')) WHERE key = 'evaluations'")
    code, out, err = run_main([*command, "--study", STUDY, "--results-dir", str(results), "--out", str(tmp_path / "r")]
                              if command[0] == "report" else [*command, "--study", STUDY, "--results-dir", str(results)],
                              capsys)
    assert code == 2 and "names trial 99, which the study does not hold" in one_line(err), (out, err)


@pytest.mark.parametrize("where, value, expected", RECORD_TAMPER_CASES, ids=[c[0] for c in RECORD_TAMPER_CASES])
def test_an_export_of_a_damaged_record_is_one_line_before_anything_is_shown(where, value, expected, tmp_path, capsys,
                                                                           monkeypatch, study_dir):
    """The best trial's and the evaluation's tables were printed, then the export refused."""
    import shutil
    import sqlite3

    results = tmp_path / "results"
    shutil.copytree(study_dir, results)
    with contextlib.closing(sqlite3.connect(results / "tune.db")) as db, db:
        db.execute(f"UPDATE study_user_attributes SET value_json = json_set(value_json, '{where}', json(?)) "
                   f"WHERE key = 'evaluations'", (value,))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(["best", "--study", STUDY, "--results-dir", str(results), "--export", "exp"], capsys)
    assert code == 2 and expected in one_line(err) and out == "", (out, err)
    assert not (tmp_path / "exp").exists()


EXPORT_PATH_CASES = [
    ("a file on the way", lambda d: str(_space(d / "afile", "x") / "sub"), "is a file, not a folder"),
    ("a file there", lambda d: str(_space(d / "afile", "x")), "is a file"),
    ("the results folder", lambda d: "RESULTS", "which an export would replace"),
    ("above the results folder", lambda d: "RESULTS/..", "which an export would replace"),
    ("inside the results folder", lambda d: f"RESULTS/{STUDY}", "inside the results folder"),
    ("deep inside the results folder", lambda d: f"RESULTS/{STUDY}/trials/0", "inside the results folder"),
    ("the current folder", lambda d: (_space(d / "mine.txt", "x"), ".")[1], "which an export would replace"),  # `--force` replaced it
    ("above the current folder", lambda d: "..", "which an export would replace"),
    # Under PATH_MAX itself, past it with the files inside: its folders were made, then left.
    ("files past PATH_MAX", lambda d: "/".join(["n" * 250] * ((4096 - len(str(d))) // 251)), "too long a path"),
]


@pytest.mark.parametrize("case, target, expected", EXPORT_PATH_CASES, ids=[c[0] for c in EXPORT_PATH_CASES])
def test_an_export_path_that_cannot_be_a_folder_is_one_line(case, target, expected, study_dir, tmp_path, capsys,
                                                             monkeypatch):
    path = target(tmp_path).replace("RESULTS", str(study_dir))
    monkeypatch.chdir(tmp_path)
    before, here = snapshot(study_dir), sorted(tmp_path.rglob("*"))
    code, out, err = run_main(["best", "--study", STUDY, "--results-dir", str(study_dir), "--export", path,
                               "--force"], capsys)
    assert code == 2 and expected in one_line(err) and "Traceback" not in out + err
    assert snapshot(study_dir) == before and sorted(tmp_path.rglob("*")) == here  # no folder made for it


@pytest.mark.parametrize("target", ["{data}", "{data}/cat", "{data}/new", "{data}/.."])
def test_an_export_never_replaces_or_writes_into_the_studys_data(target, study_dir, tmp_path, capsys, monkeypatch):
    """`best --export <the image folder> --force` replaced the training images with the export."""
    from tests.data.test_sources import make_folder

    data = make_folder(tmp_path / "images")
    before = sorted(data.rglob("*"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(["best", "--study", STUDY, "--results-dir", str(study_dir), "--data", str(data),
                               "--export", target.format(data=data), "--force"], capsys)
    assert code == 2 and ("the study's data" in err or "which an export would replace" in err), err
    assert sorted(data.rglob("*")) == before


EMPTY_PATHS = [  # an empty value is the current folder to pathlib: what each would have read or written there
    ["best", "--export", " ", "--force"], ["best", "--export", "", "--force"], ["predict", "EXPORT", ""],
    ["predict", "", "a.png"], ["report", "--out", ""], ["ensemble", "--data", ""], ["leaderboard", "--results-dir", ""],
    ["search", "--space", str(TINY_SPACE), "--data", ""], ["check", "--space", str(TINY_SPACE), "--out", ""],
    ["leaderboard", "--storage", ""], ["search", "--space", str(TINY_SPACE), "--storage", " "],
]


@pytest.mark.parametrize("args", EMPTY_PATHS, ids=lambda a: " ".join(a))
def test_an_empty_path_is_refused_and_the_current_folder_left_alone(args, study_dir, tmp_path, capsys, monkeypatch):
    """`--export "" --force` emptied the folder the command ran in."""
    (tmp_path / "precious.txt").write_text("mine")
    args = [str(study_dir / "exported") if a == "EXPORT" else a for a in args]
    results = [] if "--results-dir" in args or args[0] in ("predict", "check") else ["--results-dir", str(study_dir)]
    line = check_refused(args + results, "an empty path", study_dir, tmp_path, capsys, monkeypatch)
    assert (tmp_path / "precious.txt").read_text() == "mine" and "Invalid value for" in line


@pytest.mark.parametrize("name", ["", " "])
def test_an_empty_space_name_is_refused_not_taken_as_no_name(name, capsys):
    """`tune spaces ""` listed the built-in spaces, as if no name were given."""
    code, out, err = run_main(["spaces", name], capsys)
    assert code == 2 and f"no space {name!r}" in one_line(err) and out == ""


# ---- 6. environment and OS errors -----------------------------------------------------------------
def test_a_missing_backend_names_what_to_install_before_any_work(study_dir, tmp_path, capsys, monkeypatch):
    import importlib.util

    import tuner.keras_backend

    real = importlib.util.find_spec
    monkeypatch.setattr(tuner.keras_backend.importlib.util, "find_spec",
                        lambda name, *a: None if name == "jax" else real(name, *a))
    line = check_refused(search_args(study_dir, "--backend", "jax", "--in-process"), "pip install 'tune[jax]'",
                         study_dir, tmp_path, capsys, monkeypatch)
    assert "needs jax, which is not installed" in line
    assert not (study_dir / STUDY / "logs" / "worker-9.log").exists()


ENV_CASES = [
    ("--results-dir under a file", lambda d: ["--results-dir", str(_space(d / "afile", "x") / "sub")],
     {}, "is a file, not a folder"),
    ("heartbeat not a number", lambda d: [], {"TUNE_HEARTBEAT_SECONDS": "abc"}, "TUNE_HEARTBEAT_SECONDS='abc'"),
    ("heartbeat zero", lambda d: [], {"TUNE_HEARTBEAT_SECONDS": "0"}, "TUNE_HEARTBEAT_SECONDS='0'"),
    ("unknown backend", lambda d: [], {"KERAS_BACKEND": "mxnet"}, "(env var: 'KERAS_BACKEND'): 'mxnet' is not one of 'tensorflow', 'jax', 'torch'"),
    ("heartbeat huge", lambda d: [], {"TUNE_HEARTBEAT_SECONDS": "99999999999999999999999"}, "from 1 to 3600"),
    ("data folder missing", lambda d: [], {"TUNE_DATA_DIR": "/nonexistent/data"}, "TUNE_DATA_DIR='/nonexistent/data': no such folder"),
    ("empty --results-dir", lambda d: ["--results-dir", ""], {}, "an empty path"),
    ("archive with an unwritable cache", lambda d: ["--space", "folder", "--data",
                                                    str(_zip_of(d / "a.zip", {"a/x.png": b"x", "b/y.png": b"y"}))],
     {"TUNE_CACHE_DIR": "FILE"}, "cannot extract into"),
]


@pytest.mark.parametrize("case, extra, env, expected", ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_environment_problems_are_one_line(case, extra, env, expected, study_dir, tmp_path, capsys, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, str(_space(tmp_path / "cachefile", "x")) if value == "FILE" else value)
    args = search_args(study_dir) + extra(tmp_path)
    check_refused(args, expected, study_dir, tmp_path, capsys, monkeypatch)


@contextlib.contextmanager
def tmpfs(kib: int, readonly: bool = False) -> Iterator[Path]:
    """A real file system of `kib` KiB (read-only if asked): a full disk, or EROFS, for real."""
    import subprocess
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="tune-tmpfs-"))
    options = f"size={kib}k" + (",ro" if readonly else "")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True).returncode:
        folder.rmdir()
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        folder.rmdir()


@pytest.mark.parametrize("damage", ["cut short", "not a zip"])
def test_a_damaged_model_file_is_one_line_before_the_test_split_is_read(damage, study_dir, tmp_path, capsys):
    """A truncated model.keras was an internal error in the middle of the test pass, after the
    read had been counted."""
    import shutil

    from tuner.store import SearchStore

    results = tmp_path / "results"
    shutil.copytree(study_dir, results)
    store = SearchStore(None, results)
    best = store.trials.top(STUDY, 1)[0].number
    model = store.artifacts.model_path(STUDY, best)
    model.write_bytes(model.read_bytes()[:100] if damage == "cut short" else b"junk")
    reads = store.evaluations.test_reads(STUDY)
    code, out, err = run_main(["ensemble", "--reevaluate", "--study", STUDY, "--results-dir", str(results)], capsys)
    assert code == 2 and f"trial {best}'s model file" in one_line(err) and out == "", (out, err)
    assert "the test split was not read" in err and store.evaluations.test_reads(STUDY) == reads


@pytest.mark.slow
def test_a_blank_study_left_by_a_killed_search_is_searched_by_the_next(tmp_path, capsys):
    """What a search killed as it created its study leaves (no record, no trials) is taken over;
    an id-based check once refused it as another tool's, and the kill test waited in vain."""
    results = tmp_path / "results"
    results.mkdir()
    optuna.create_study(study_name="tiny_digits", storage=f"sqlite:///{results / 'tune.db'}", direction="maximize")
    code, out, err = run_main(["search", "--space", str(TINY_SPACE), "--trials", "1", "--epochs", "1", "--results-dir",
                               str(results), "--jobs", "1", "--in-process", "--no-check", "--no-ensemble"], capsys)
    assert code == 0 and "1 complete" in out, err


@pytest.mark.slow
def test_another_test_set_is_never_scored_as_the_studys(tmp_path, capsys):
    """`ensemble --reevaluate --data OTHER` scored 100 other test images and recorded them as
    the study's test figure; the split's fingerprint covers train and validation only."""
    from sklearn.datasets import load_digits

    from tuner.store import SearchStore

    digits = load_digits()
    x, y = (digits.images * 255 / 16).astype(np.uint8), digits.target
    for name, test in (("a.npz", slice(1200, 1500)), ("b.npz", slice(1500, 1600))):
        np.savez(tmp_path / name, x_train=x[:1200], y_train=y[:1200], x_test=x[test], y_test=y[test])
    results = tmp_path / "results"
    code, out, err = run_main(["search", "--space", str(TINY_SPACE), "--data", str(tmp_path / "a.npz"), "--trials", "1",
                               "--epochs", "1", "--results-dir", str(results), "--jobs", "1", "--in-process", "--no-check",
                               "--seed", "0"], capsys)
    assert code == 0, err
    store = SearchStore(None, results)
    reads, evaluations = store.evaluations.test_reads("tiny_digits"), len(store.evaluations.all("tiny_digits"))
    code, out, err = run_main(["ensemble", "--reevaluate", "--data", str(tmp_path / "b.npz"), "--results-dir",
                               str(results)], capsys)
    assert code == 2 and "is not the study's (100 images" in one_line(err) and out == "", (out, err)
    assert store.evaluations.test_reads("tiny_digits") == reads and len(store.evaluations.all("tiny_digits")) == evaluations


@pytest.mark.slow
def test_a_full_disk_in_the_ensemble_step_is_one_line_and_keeps_the_record(study_dir, tmp_path, capsys):
    import shutil

    used = sum(p.stat().st_size for p in study_dir.rglob("*") if p.is_file()) // 1024
    with tmpfs(used + 160) as disk:  # room for the study, not for the new evaluation's models
        results = disk / "results"
        shutil.copytree(study_dir, results)
        before, folders = _latest(results), sorted((results / STUDY / "ensemble").iterdir())
        code, out, err = run_main(["ensemble", "--study", STUDY, "--results-dir", str(results), "--reevaluate"],
                                  capsys)
        assert code == 1 and "the disk is full" in one_line(err) and "Traceback" not in out + err
        assert _latest(results) == before  # the record and its files as they were
        assert sorted((results / STUDY / "ensemble").iterdir()) == folders  # no half-filled folder left


@pytest.mark.slow
def test_a_full_disk_under_the_export_names_the_export_and_leaves_nothing_there(study_dir, tmp_path, capsys):
    with tmpfs(64) as disk:  # smaller than the models
        code, out, err = run_main(["best", "--study", STUDY, "--results-dir", str(study_dir), "--export",
                                   str(disk / "exp")], capsys)
        line = one_line(err)
        assert code == 1 and line.startswith(f"error: {disk}/.tune-export-") and "the disk is full" in line, err
        assert str(study_dir) not in line and list(disk.iterdir()) == []


@pytest.mark.slow
def test_a_disk_that_fills_during_a_search_is_one_line(tmp_path, capsys, monkeypatch):
    with tmpfs(160) as disk:  # the database and the first trial's files, not much more
        monkeypatch.chdir(tmp_path)
        code, out, err = run_main(search_args(disk / "results", "--trials", "6")[:-2] + ["--jobs", "1", "--in-process"],
                                  capsys)
        assert code == 1 and "Traceback" not in out + err
        assert "disk is full" in one_line(err) or "is its disk full" in one_line(err)


def test_a_read_only_results_folder_is_one_line(study_dir, tmp_path, capsys, monkeypatch):
    with tmpfs(64, readonly=True) as results:  # root writes anywhere but on a read-only file system
        check_refused(search_args(results), "cannot write to", study_dir, tmp_path, capsys, monkeypatch)
        assert list(results.iterdir()) == []


# ---- 7. signals and stops -------------------------------------------------------------------------
def _start(args: list[str], cwd: Path):
    import signal
    import subprocess
    import sys

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TUNE_HEARTBEAT_SECONDS": "1"}
    return subprocess.Popen([sys.executable, "-m", "tuner", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=cwd, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_line(proc, pattern: str, timeout: float = 240) -> list[str]:
    """Read the process's stdout until a line contains `pattern` (an event, not a sleep)."""
    import selectors
    import time

    seen, deadline = [], time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=1) and (line := proc.stdout.readline()):
                seen.append(line)
                if pattern in line:
                    return seen
            elif proc.poll() is not None:
                break
    raise AssertionError(f"never saw {pattern!r}: {''.join(seen)[-2000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("where", ["--isolate", "--in-process"])
def test_sigterm_fails_the_running_trial_and_exits_143(where, tmp_path):
    import signal

    from tuner.store import SearchStore

    proc = _start(["search", "--space", str(ENDLESS_SPACE), "--study", "t", "--trials", "30",
                   "--results-dir", "r", "--no-ensemble", "--jobs", "1", "--seed", "0", where], tmp_path)
    _wait_for_line(proc, "trial 0 started")  # it trains until it is stopped: the signal finds it running
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "interrupted (SIGTERM)" in one_line(err) and "Traceback" not in err
    trials = SearchStore(None, tmp_path / "r").trials.all("t")
    assert not [t for t in trials if t.state == "running"]
    assert [t.reason for t in trials if t.state == "failed"] == ["interrupted (SIGTERM)"]


DIVERGING = """name: diverging
dataset: digits
training: {max_epochs: 1, patience: 1, seed: 0}
params:
  model: cnn
  depth: 1
  width: {type: int, low: 4, high: 8}
  head_units: 0
  batch_norm: false
  batch_size: 64
  optimizer: sgd
  momentum: 0.9
  l2: 1.0
  learning_rate: 10.0
"""


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_max_failures_stops_in_one_line_and_leaves_nothing_running(jobs, tmp_path, capsys):
    from tuner.store import SearchStore

    space = _space(tmp_path / "diverging.yaml", DIVERGING)  # weights grow x19 a step: a real NaN loss
    code, out, err = run_main(["search", "--space", str(space), "--trials", "6", "--max-failures", "2", "--seed", "0",
                               "--results-dir", str(tmp_path / "r"), "--no-ensemble", "--jobs", jobs], capsys)
    assert code == 1 and "2 trials failed in a row" in one_line(err), err
    trials = SearchStore(None, tmp_path / "r").trials.all("diverging")
    assert trials and not [t for t in trials if t.state == "running"]
    assert all(t.state == "failed" for t in trials)
    assert "training loss became nan at epoch 1" in {t.reason for t in trials}


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_during_the_ensemble_step_is_one_line(signum, code, study_dir, tmp_path):
    import shutil
    import signal

    from tuner.store import SearchStore

    results = tmp_path / "results"
    shutil.copytree(study_dir, results)
    before, reads = _latest(results), SearchStore(None, results).evaluations.test_reads(STUDY)
    proc = _start(["ensemble", "--study", STUDY, "--results-dir", str(results), "--reevaluate"], tmp_path)
    _wait_for_line(proc, "selecting an ensemble")
    proc.send_signal(getattr(signal, signum))
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # it finished first: then its record is whole
        assert _latest(results).when >= before.when
        return
    line = one_line(err)
    assert proc.returncode == code and "interrupted" in line and "Traceback" not in err
    assert _latest(results) == before
    now = SearchStore(None, results).evaluations.test_reads(STUDY)
    # The line tells what changed: a read counted before the signal came is said, with the count.
    assert ("except its test split's read count, now" in line) == (now > reads), (line, reads, now)
    assert now == reads or f"now {now} " in line


def _verify(results: Path, tmp_path: Path, capsys) -> None:
    """After a kill: the record's files are its own, and an export is whole or refused in one line."""
    from tuner.store import SearchStore

    record, store = _latest(results), SearchStore(None, results)
    for entry in record.files.values():
        store.artifacts.verified_file(STUDY, entry)
    out = tmp_path / "verify"
    shutil_rm(out)
    code, _, err = run_main(["best", "--study", STUDY, "--results-dir", str(results), "--export", str(out)], capsys)
    assert code == 0, err
    check_export(out, record)


def shutil_rm(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["ensemble", "export"])
def test_killed_in_the_ensemble_or_export_step_the_record_and_files_agree(command, study_dir, tmp_path, capsys):
    """SIGKILL and SIGTERM, once each, at seeded points of a run's measured length: the import,
    the selection, the test pass, the saving, the copy."""
    import random
    import shutil
    import signal
    import time

    results = tmp_path / "results"
    shutil.copytree(study_dir, results)
    export = tmp_path / "exp"
    args = (["ensemble", "--reevaluate"] if command == "ensemble" else ["best", "--export", str(export), "--force"])
    args += ["--study", STUDY, "--results-dir", str(results)]
    start = time.monotonic()
    first = _start(args, tmp_path)
    assert first.communicate(timeout=300) and first.returncode == 0
    duration = time.monotonic() - start
    rng = random.Random(command)
    for signum in ("SIGKILL", "SIGTERM"):
        proc = _start(args, tmp_path)
        time.sleep(rng.uniform(0.3, 1.0) * duration)
        os.killpg(proc.pid, getattr(signal, signum))
        _, err = proc.communicate(timeout=120)
        if signum == "SIGTERM" and proc.returncode not in (0, -15):  # -15: before Python set its handler
            assert proc.returncode == 143 and "interrupted (SIGTERM)" in one_line(err), (proc.returncode, err)
        if command == "export" and export.exists():
            check_export(export, _latest(results))
        _verify(results, tmp_path, capsys)


# ---- 8. secrets -----------------------------------------------------------------------------------
SECRET_URLS = [
    f"postgresql://tune:{SECRET}@127.0.0.1:9/tune",
    f"postgresql://tune@127.0.0.1:9/tune?password={SECRET}",
    f"postgresql://tune@127.0.0.1:9/tune?sslpassword={SECRET}&sslmode=require",
    f"postgresql+psycopg://tune:{SECRET}@127.0.0.1:9/tune?connect_timeout=1",
    f"mysql://tune@127.0.0.1:9/tune?passwd={SECRET}",
    f"postgresql://tune@127.0.0.1:9/tune?api_token={SECRET}",
    f"postgresql://tune:{SECRET}@127.0.0.1:notaport/tune",
    f"postgresql://tune:{SECRET}@/tune?host=/nonexistent",
    f"postgresql://tune@127.0.0.1:9/tune?dsn=password%3D{SECRET}",
    f"postgresql://tune:{SECRET}@x@127.0.0.1:9/tune",
    f"postgresql://tune@127.0.0.1:9/tune?options=-c%20password%3D{SECRET}",
]


@pytest.mark.parametrize("url", SECRET_URLS)
@pytest.mark.parametrize("command", ["search", "leaderboard", "studies"])
def test_no_secret_of_a_storage_url_is_ever_printed(command, url, study_dir, tmp_path, capsys, monkeypatch):
    args = search_args(study_dir) if command == "search" else [command]
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(args + ["--storage", url], capsys)
    assert code == 2 and one_line(err) and SECRET not in out + err and "Traceback" not in err


def test_the_start_line_shows_the_url_without_its_secrets(capsys):
    from tuner.store import redact

    assert redact(f"postgresql://u:{SECRET}@h/db?password={SECRET}&sslmode=require") == \
        "postgresql://u:***@h/db?password=***&sslmode=require"


# ---- 9. values ------------------------------------------------------------------------------------
def _edited(folder: Path, old: str, new: str) -> list[str]:
    """`--space` with the tiny space's text `old` replaced by `new`."""
    assert old in TINY_SPACE.read_text()
    return ["--space", str(_space(folder / "s.yaml", TINY_SPACE.read_text().replace(old, new)))]


VALUE_CASES = [
    ("timeout nan", lambda d: ["--timeout", "nan"], "expected a number of seconds from 1 to"),
    ("timeout inf", lambda d: ["--timeout", "inf"], "expected a number of seconds from 1 to"),
    ("timeout huge", lambda d: ["--timeout", "1e400"], "expected a number of seconds from 1 to"),
    ("timeout past a year", lambda d: ["--timeout", "1e308"], "(a year)"),  # its epochs overflowed
    ("trial timeout past a year", lambda d: ["--trial-timeout", "31536001"], "(a year)"),
    ("timeout text", lambda d: ["--timeout", "soon"], "is not a number of seconds"),
    ("seed negative", lambda d: ["--seed", "-5"], "--seed"),
    ("seed past 2**32", lambda d: ["--seed", "4294967296"], "--seed"),
    ("a float step too fine", lambda d: _edited(d, "dropout: {type: float, low: 0.0, high: 0.3}", "dropout: {type: float, low: 0.0, high: 0.3, step: 5.0e-324}"), "would give more than"),
    ("--set a range", lambda d: ["--set", "width={type: int, low: 8, high: 9}"], "one value fixes a parameter; a range is the space file's"),  # it searched 8-9
    ("when with no values", lambda d: _edited(d, "when: {optimizer: sgd}", "when: {optimizer: []}"), "would never make this parameter active"),
    ("--set unclosed list", lambda d: ["--set", "optimizer=[adam"], "--set optimizer: cannot read '[adam'"),
    ("--set alias", lambda d: ["--set", "optimizer=*x"], "--set optimizer: cannot read '*x'"),
    ("--set python tag", lambda d: ["--set", "optimizer=!!python/object:os.system x"], "--set optimizer: cannot read"),
    ("--set list", lambda d: ["--set", "width=[1, 2]"], "a list is not a whole number"),
    ("--set null", lambda d: ["--set", "depth=null"], "params.depth: null is not a whole number"),
    ("--set nan", lambda d: ["--set", "dropout=.nan"], "params.dropout"),
    ("--set empty name", lambda d: ["--set", "=3"], "expected NAME=VALUE"),
    ("--set twice", lambda d: ["--set", "depth=2", "--set", "depth=1"], "--set depth is given twice"),
    ("another sampler on resume", lambda d: ["--sampler", "random"], "was searched with sampler tpe; it cannot change"),
    ("another pruner on resume", lambda d: ["--pruner", "none"], "was searched with pruner median; it cannot change"),
    ("seed -1", lambda d: _edited(d, "seed: 0", "seed: -1"),
     "training.seed: Input should be greater than or equal to 0"),
    ("seed 2**40", lambda d: _edited(d, "seed: 0", "seed: 1099511627776"),
     "training.seed: Input should be less than or equal to 4294967295"),
    ("when on a value the parent cannot take", lambda d: _edited(d, "when: {optimizer: sgd}", "when: {optimizer: lion}"), "params.momentum.when.optimizer: 'lion' is not allowed"),
    ("when on a value outside the choices", lambda d: _edited(d, "when: {optimizer: sgd}", "when: {optimizer: rmsprop}"), "'rmsprop' is not among the values optimizer takes"),
    ("int step 1e23", lambda d: _edited(d, "depth: {type: int, low: 1, high: 2}", "depth: {type: int, low: 1, high: 2, step: 1.0e+23}"), "params.depth.step"),
    ("int step past the range", lambda d: _edited(d, "depth: {type: int, low: 1, high: 2}", "depth: {type: int, low: 1, high: 2, step: 1000000}"), "is not a multiple of step"),
    ("int step not dividing", lambda d: _edited(d, "width: {type: int, low: 4, high: 16, log: true}", "width: {type: int, low: 4, high: 16, step: 5}"), "is not a multiple of step"),
    ("float bound nan", lambda d: _edited(d, "dropout: {type: float, low: 0.0, high: 0.3}", "dropout: {type: float, low: .nan, high: 0.3}"), "params.dropout"),
    ("float bound inf", lambda d: _edited(d, "dropout: {type: float, low: 0.0, high: 0.3}", "dropout: {type: float, low: 0.0, high: .inf}"), "params.dropout"),
    ("validation fraction nan", lambda d: _edited(d, "validation_fraction: 0.2", "validation_fraction: .nan"), "training.validation_fraction"),
    ("patience huge", lambda d: _edited(d, "patience: 2", "patience: 100000000000"), "training.patience"),
    ("space in another encoding", lambda d: ["--space", str(_bytes(d / "s.yaml", "name: caf\u00e9\n".encode("latin-1")))],
     "cannot read"),
]


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("case, extra, expected", VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_values_out_of_their_domain_are_one_line(case, extra, expected, study_dir, tmp_path, capsys, monkeypatch):
    check_refused(search_args(study_dir) + extra(tmp_path), expected, study_dir, tmp_path, capsys, monkeypatch)


COMMAND_VALUE_CASES = [
    (["ensemble", "--reevaluate", "--size", "99999999999999999999"], "--size"),  # ran for ever
    (["ensemble", "--size", "1001"], "is not in the range 1<=x<=1000"),
    (["best", "--force"], "--force replaces an export folder: it goes with --export DIR"),  # was ignored
]


@pytest.mark.parametrize("args, expected", COMMAND_VALUE_CASES, ids=lambda c: " ".join(c) if isinstance(c, list) else "")
def test_other_commands_values_out_of_their_domain_are_one_line(args, expected, study_dir, tmp_path, capsys,
                                                                monkeypatch):
    check_refused(args + ["--results-dir", str(study_dir)], expected, study_dir, tmp_path, capsys, monkeypatch)


# ---- 10. labels from the recorded origin ------------------------------------------------------------
def test_a_sampled_trial_equal_to_a_start_point_is_not_labelled_one(tmp_path, capsys):
    import yaml

    from tuner.ui.board import build_board
    from tuner.store import SearchStore
    from tuner.ui.live import SearchView
    from tuner.ui.terminal import Terminal

    space = yaml.safe_load(TINY_SPACE.read_text())
    space["start"] = [{"width": 6, "optimizer": "adam"}]
    path = _space(tmp_path / "start.yaml", yaml.safe_dump(space, sort_keys=False))
    code, _, err = run_main(["search", "--space", str(path), "--trials", "1", "--epochs", "1", "--no-ensemble",
                             "--in-process", "--jobs", "1", "--seed", "0", "--results-dir", str(tmp_path / "r")], capsys)
    assert code == 0, err
    store = SearchStore(None, tmp_path / "r")
    number = store.trials.begin("tiny_digits", {"width": 6, "optimizer": "adam"})  # the same values, sampled
    view = SearchView(Terminal(), store, "tiny_digits", 2)
    view.board = build_board(store, "tiny_digits", 10)
    assert view._start_point(0) == " (start point 1/1)" and view._start_point(number) == ""


@pytest.mark.parametrize("args, code, expected", [
    (["--data", "{tmp}/nope"], 2, "no such file or folder"),  # bad data, found by the checks
    (["--data", "{tmp}/empty"], 2, "class subfolders"),  # a folder of no images
    (["--timeout", "1"], 1, "passed during the checks"),  # checks that leave no time
])
def test_a_search_refused_before_its_first_trial_creates_no_results_folder(args, code, expected, tmp_path, capsys,
                                                                         monkeypatch):
    """The default storage's database is not created until the study is: a search refused by its
    data or its checks leaves no results folder and no tune.db behind."""
    monkeypatch.delenv("TUNE_CHECK", raising=False)  # the checks on, as by default
    (tmp_path / "empty").mkdir()
    results = tmp_path / "results"
    got, _, err = run_main(["search", "--space", str(TINY_SPACE), "--trials", "1", "--results-dir", str(results),
                            *(a.replace("{tmp}", str(tmp_path)) for a in args)], capsys)
    assert got == code and expected in err and len(err.strip().splitlines()) == 1, err
    assert not results.exists()


@pytest.mark.slow
def test_a_deleted_working_folder_is_one_line_naming_it(tmp_path):
    """Run from a folder deleted under it, a search's error named no path."""
    import subprocess
    import sys

    gone = tmp_path / "gone"
    gone.mkdir()
    script = (f"import os, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r}); "
              "from tuner.cli import main; main(['search', '--space', 'digits', '--trials', '1'])")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PWD": str(gone)})
    assert proc.returncode == 1 and proc.stdout == ""
    assert one_line(proc.stderr) == (f"error: the working folder {gone} no longer exists (deleted or moved); cd to a "
                                     f"folder that does and run the command again")
