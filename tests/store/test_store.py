"""SearchStore: study records, mismatches refused, trial records, bounded model files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.errors import UserError
from tuner.space.objective import OBJECTIVES
from tuner.store import SearchStore, TrialRecord, redact
from tuner.store.database import OPTUNA_CORE, OPTUNA_TABLES
from tuner.store.trials import models_to_keep

ACCURACY = OBJECTIVES["accuracy"]

META = {"engine": "optuna", "space": {"params": {"depth": 2}}, "space_fingerprint": "a",
        "split": {"fingerprint": "s1", "source": "x"}}


def test_open_study_is_idempotent_and_refuses_mismatches(tmp_path: Path):
    store = SearchStore(None, tmp_path, create=True)
    first = store.open_study("s", META)
    assert store.open_study("s", META) == first
    with pytest.raises(UserError, match="searched with engine optuna; it cannot mix in keras-tuner"):
        store.open_study("s", {**META, "engine": "keras-tuner"})
    with pytest.raises(UserError, match=r"different space \(params.depth: 2 in the study, 3 now\)"):
        store.open_study("s", {**META, "space": {"params": {"depth": 3}}, "space_fingerprint": "b"})
    with pytest.raises(UserError, match=r"the data at y differs from the study's \(the same counts, other images or "
                                        r"labels: split fingerprint s2 now, s1 then\)"):
        store.open_study("s", {**META, "split": {"fingerprint": "s2", "source": "y"}})


@pytest.mark.parametrize("then, now, said", [
    ({"n_train": 100, "n_val": 25}, {"n_train": 110, "n_val": 27}, "training 110 images now, 100 then; validation 27 images now, 25 then"),
    ({"class_names": ["a", "b"]}, {"class_names": ["a", "b", "c"]}, "3 classes now, 2 then"),
    ({"n_train": 100}, {"n_train": 100}, "the same counts, other images or labels: split fingerprint s2 now, s1 then"),
])
def test_data_that_differs_from_a_studys_is_said_by_what_differs(then, now, said, tmp_path: Path):
    """A resumed study on a folder that gained images or a class was refused quoting two fingerprints alone."""
    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", {**META, "split": {**META["split"], **then}})
    with pytest.raises(UserError) as e:
        store.open_study("s", {**META, "split": {"fingerprint": "s2", "source": "pets/", **now}})
    assert f"the data at pets/ differs from the study's ({said}); search it with the study's data" in str(e.value)


@pytest.mark.parametrize("then, now, said", [
    (["cat", "dog"], ["cat", "dog"], None),
    (["eight", "five"], ["EIGHT-renamed", "five"], 'names its classes ("EIGHT-renamed", "five"), the study ("eight", "five")'),
    ([str(i) for i in range(10)], ["class0", "class1"], 'the study ("0", "1", "2", "3" and 6 more)'),  # a study of an earlier tune
    (["a", "b"], ["b", "a"], 'names its classes ("b", "a")'),  # the same names, in another order: other outputs
])
def test_a_study_refuses_data_whose_classes_it_did_not_search(then, now, said, tmp_path: Path):
    """The split's fingerprint sees images and label numbers, not what the numbers are called: a
    class folder renamed in place was searched on, and shown, under two names."""
    store = SearchStore(None, tmp_path, create=True)
    meta = {**META, "split": {**META["split"], "class_names": then}}
    store.open_study("s", meta)
    again = {**META, "split": {**META["split"], "class_names": now}}
    if said is None:
        store.open_study("s", again)
        return
    with pytest.raises(UserError) as e:
        store.open_study("s", again)
    assert said in str(e.value) and "search under another --study name; nothing was searched" in str(e.value)


def test_add_trial_round_trips_a_record(tmp_path: Path):
    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", META)
    record = TrialRecord(number=-1, state="complete", value=0.9, params={"depth": 2},
                         history={"val_accuracy": [0.8, 0.9], "val_loss": [0.5, 0.3]}, best_epoch=1, val_loss=0.3,
                         seconds=1.5, seed=7)
    assert store.trials.add("s", record) == 0
    assert store.trials.add("s", TrialRecord(-1, "failed", None, {"depth": 1}, reason="NaN")) == 1
    complete, failed = store.trials.all("s")
    assert (complete.state, complete.value, complete.params, complete.epochs, complete.seed) == ("complete", 0.9, {"depth": 2}, 2, 7)
    assert (failed.state, failed.reason, failed.value) == ("failed", "NaN", None)
    assert store.trials.count_finished("s") == 1


def test_model_files_are_kept_for_the_top_k_only(tmp_path: Path):
    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", META)
    for value in (0.5, 0.9, 0.7, 0.6):
        n = store.trials.add("s", TrialRecord(-1, "complete", value, {}, val_loss=1 - value))
        folder = store.artifacts.trial_dir("s", n)
        folder.mkdir(parents=True)
        (folder / "model.keras").write_bytes(b"m")
    running = store.trials.begin("s", {})  # another worker's trial: its model is saved before its record
    store.artifacts.trial_dir("s", running).mkdir(parents=True)
    (store.artifacts.trial_dir("s", running) / "model.keras").write_bytes(b"m")
    keep = models_to_keep(store.trials.all("s"), 2, ACCURACY)
    assert keep == {1, 2, running}
    store.artifacts.keep_models("s", keep)
    assert sorted(int(p.parent.name) for p in (tmp_path / "s" / "trials").glob("*/model.keras")) == [1, 2, running]
    newcomer = [TrialRecord(9, "complete", 0.8, {}, val_loss=0.2)]
    assert models_to_keep(store.trials.all("s") + newcomer, 2, ACCURACY) == {1, 9, running}


def test_half_written_artifacts_are_not_read(tmp_path: Path):
    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", META)
    folder = store.artifacts.trial_dir("s", 0)
    folder.mkdir(parents=True)
    (folder / "val_probs.npy").write_bytes(b"\x93NUMPY trunc")  # a crash mid-write without rename
    assert store.artifacts.val_views("s", 0) is None
    store.artifacts.save_trial_files("s", TrialRecord(0, "complete", 0.5, {"a": 1}), np.ones((3, 2)))
    assert store.artifacts.val_views("s", 0).shape == (1, 3, 2)
    assert not list(folder.glob(".*tmp*"))  # no temporary files left behind


def test_passwords_never_shown():
    assert redact("postgresql://user:s3cret@db:5432/tune") == "postgresql://user:***@db:5432/tune"
    store = SearchStore("postgresql://user:s3cret@127.0.0.1:1/tune", Path("/tmp"))
    with pytest.raises(UserError) as e:
        store.db.storage
    assert "s3cret" not in str(e.value) and "cannot open storage postgresql://user:***@127.0.0.1:1/tune" in str(e.value)


def test_unknown_study_lists_the_known_ones(tmp_path: Path):
    store = SearchStore(None, tmp_path, create=True)
    store.open_study("alpha", META)
    with pytest.raises(UserError, match=r"no study 'beta' .*studies: alpha"):
        store.trials.all("beta")


def test_validation_views_are_kept(tmp_path: Path):
    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", META)
    plain, mirrored = np.full((3, 2), 0.2), np.full((3, 2), 0.8)
    store.artifacts.save_trial_files("s", TrialRecord(0, "complete", 0.5, {"tta_flip": True}), np.stack([plain, mirrored]))
    assert store.artifacts.val_views("s", 0).shape == (2, 3, 2)
    np.testing.assert_allclose(store.artifacts.val_views("s", 0)[1], mirrored)
    store.artifacts.save_trial_files("s", TrialRecord(1, "complete", 0.5, {}), plain)  # a study from before views
    assert store.artifacts.val_views("s", 1).shape == (1, 3, 2)


def test_a_blank_study_left_by_a_killed_search_is_taken_over(tmp_path: Path, monkeypatch):
    """A search killed between creating its study and writing tune's record leaves a study with
    nothing in it; the next search takes it over. One with anything in it stays refused."""
    import optuna

    import tuner.store.studies as studies

    monkeypatch.setattr(studies, "_FOREIGN_WAIT_SECONDS", 0.2)
    store = SearchStore(None, tmp_path, create=True)
    maximize, minimize = [optuna.study.StudyDirection.MAXIMIZE], [optuna.study.StudyDirection.MINIMIZE]
    store.db.storage.create_new_study(maximize, "killed")
    assert store.open_study("killed", META) == store.studies.require("killed")
    assert store.studies.meta("killed")["format"] == 2
    for name, directions, attrs in (("minimized", minimize, {}), ("attributed", maximize, {"owner": "someone"})):
        study_id = store.db.storage.create_new_study(directions, name)
        for key, value in attrs.items():
            store.db.storage.set_study_user_attr(study_id, key, value)
        with pytest.raises(UserError, match="was not made by tune"):
            store.open_study(name, META)
        assert "tune" not in store.db.storage.get_study_user_attrs(study_id)  # left as it was


def test_the_best_are_complete_trials_by_accuracy_then_loss_then_number():
    from tuner.store.trials import best_of

    trials = [TrialRecord(0, "complete", 0.8, {}, val_loss=0.5), TrialRecord(1, "pruned", 0.99, {}),
              TrialRecord(2, "complete", 0.8, {}, val_loss=0.4), TrialRecord(3, "failed", None, {}),
              TrialRecord(4, "complete", 0.9, {}, val_loss=0.9), TrialRecord(5, "complete", 0.8, {}, val_loss=0.4),
              TrialRecord(6, "running", None, {}), TrialRecord(7, "complete", None, {})]
    assert [t.number for t in best_of(trials, 10, ACCURACY)] == [4, 2, 5, 0]  # a pruned trial never ranks
    assert [t.number for t in best_of(trials, 2, ACCURACY)] == [4, 2]
    assert models_to_keep(trials, 1, ACCURACY) == {4, 6}


def test_a_loss_objective_ranks_the_smallest_first():
    from tuner.store.trials import best_of

    trials = [TrialRecord(0, "complete", 0.30, {}, val_loss=0.30), TrialRecord(1, "complete", 0.10, {}, val_loss=0.10),
              TrialRecord(2, "complete", 0.10, {}, val_loss=0.10), TrialRecord(3, "complete", 2.5, {}, val_loss=2.5)]
    assert [t.number for t in best_of(trials, 3, OBJECTIVES["log_loss"])] == [1, 2, 0]
    assert [t.number for t in best_of(trials, 1, OBJECTIVES["balanced_accuracy"])] == [3]  # a larger value is better


def test_a_finished_record_is_written_whole_into_optunas_trial(tmp_path: Path):
    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", META)
    number = store.trials.add("s", TrialRecord(-1, "pruned", 0.7, {"depth": 1},
                                                history={"val_accuracy": [0.5, 0.7], "val_loss": [1.0, 0.8]}))
    failed = store.trials.add("s", TrialRecord(-1, "failed", None, {"depth": 2}, reason="NaN"))
    frozen = store.db.storage.get_all_trials(store.studies.require("s"))
    assert frozen[number].intermediate_values == {0: 0.5, 1: 0.7} and frozen[number].value == 0.7
    assert frozen[number].state.name == "PRUNED" and frozen[failed].state.name == "FAIL" and frozen[failed].value is None
    assert frozen[number].user_attrs["params"] == {"depth": 1}


def test_only_the_running_trials_of_the_processes_named_are_failed_and_counted(tmp_path: Path):
    import os

    from tuner.store.workers import this_worker

    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", META)
    mine = [store.trials.begin("s", {}, {"worker": this_worker()}) for _ in range(2)]
    elsewhere = store.trials.begin("s", {}, {"worker": {**this_worker(), "host": "another-host"}})
    store.trials.add("s", TrialRecord(-1, "complete", 0.5, {}))
    assert store.trials.fail_running_of("s", {os.getpid()}, "gone") == 2
    assert store.trials.fail_running_of("s", {os.getpid()}, "gone") == 0
    states = {t.number: t.state.value for t in store.trials.all("s")}
    assert [states[n] for n in mine] == ["failed", "failed"] and states[elsewhere] == "running"
    assert store.trials.fail_running_of("missing", {os.getpid()}, "gone") == 0


def test_a_trials_files_are_its_params_history_and_validation_views(tmp_path: Path):
    import json

    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", META)
    record = TrialRecord(0, "complete", 0.5, {"depth": 2, "lr": np.float32(0.5)}, history={"val_loss": [0.9, 0.7]})
    store.artifacts.save_trial_files("s", record, np.full((2, 3, 4), 0.25))
    folder = tmp_path / "s" / "trials" / "0"
    assert json.loads((folder / "params.json").read_text()) == {"depth": 2, "lr": 0.5}  # numpy values as JSON numbers
    assert json.loads((folder / "history.json").read_text()) == {"val_loss": [0.9, 0.7]}
    views = store.artifacts.val_views("s", 0)
    assert views.dtype == np.float32 and views.shape == (2, 3, 4) and np.all(views == 0.25)
    assert sorted(p.name for p in folder.iterdir()) == ["history.json", "params.json", "val_probs.npy"]
    store.artifacts.keep_models("s", set())  # no model files yet: nothing to do, no error
    store.artifacts.keep_models("missing", set())


# ---- whose database it is: Database.check on the tables a SQLite file holds -----------------
def _sqlite_with(path: Path, tables: set[str], views: set[str] = frozenset()) -> Path:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("create table if not exists _seed (x int)")  # a real SQLite file, even with no tables
        for name in sorted(tables):
            db.execute(f'create table "{name}" (id int)')
        for name in sorted(views):
            db.execute(f'create view "{name}" as select 1')
        db.execute("drop table _seed")
    return path


FOREIGN = "not an Optuna study database's"
TABLE_CASES = [  # (tables, views, create, the one line, or None: it opens)
    (set(), set(), True, None),  # empty: a search may create Optuna's schema in it
    (set(), set(), False, "no studies yet in"),  # empty: a command that reads has nothing to read
    (set(OPTUNA_TABLES), set(), True, None),  # Optuna's whole schema
    (set(OPTUNA_CORE), set(), True, None),  # its core is enough for a search (Optuna adds the rest)
    # A command that reads needs the whole schema with its version rows (Optuna would write them).
    (set(OPTUNA_TABLES), set(), False, "lacks a row in version_info, a row in alembic_version"),
    (set(OPTUNA_CORE), set(), False, "lacks alembic_version, study_system_attributes"),
    (set(OPTUNA_TABLES) | {"my_notes"}, set(), False, FOREIGN),  # beside a whole schema: another's table still
    (set(OPTUNA_TABLES), {"v"}, False, FOREIGN),  # and a view
    ({"users", "orders"}, set(), True, FOREIGN),  # another application's
    ({"trials"}, set(), True, FOREIGN),  # a table named like one of Optuna's, alone
    ({"version_info", "users"}, set(), True, FOREIGN),
    (set(), {"v"}, True, FOREIGN),  # only a view
    ({"studies", "version_info"}, set(), True, FOREIGN),  # part of Optuna's schema that never completes
]


@pytest.mark.parametrize("tables, views, create, expected", TABLE_CASES)
def test_a_database_is_opened_only_when_empty_or_optunas(tables, views, create, expected, tmp_path, monkeypatch):
    from tuner.store import database

    monkeypatch.setattr(database, "_SCHEMA_WAIT_SECONDS", 0.0)
    path = _sqlite_with(tmp_path / "x.db", tables, views)
    before = path.read_bytes()
    db = database.Database(f"sqlite:///{path}", create=create)
    if expected is None:
        db.check()
    else:
        with pytest.raises(UserError, match=expected):
            db.check()
    assert path.read_bytes() == before  # checking writes nothing


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.sets(st.sampled_from(sorted(OPTUNA_TABLES))), st.sets(st.sampled_from(["users", "orders", "notes"])),
       st.booleans())
def test_any_tables_open_exactly_when_none_or_optunas_core_is_there(optuna_tables, others, create):
    """For a search; a command that reads never opens these (their version tables have no rows)."""
    import tempfile

    from tuner.store import database

    tables = optuna_tables | others
    wait, database._SCHEMA_WAIT_SECONDS = database._SCHEMA_WAIT_SECONDS, 0.0  # hypothesis: not monkeypatch
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = _sqlite_with(Path(folder) / "x.db", tables)
            try:
                before = path.read_bytes()
                database.Database(f"sqlite:///{path}", create=create).check()
                opened = True
            except UserError as e:
                assert FOREIGN in str(e) or not create, str(e)
                opened = False
            assert path.read_bytes() == before
    finally:
        database._SCHEMA_WAIT_SECONDS = wait
    opens = not tables or OPTUNA_CORE <= tables and not others
    assert opened == (opens and create), (sorted(tables), opened)


def _ended_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_an_evaluation_folder_left_by_an_ended_process_of_this_machine_goes_at_the_next_one(tmp_path: Path):
    """A killed `tune ensemble --reevaluate` leaves its model folder, named by no record; the next
    evaluation removes it at once when its process was this machine's (it waited a day), and keeps,
    until they are a day old, another machine's and those of the older name without one."""
    import os
    import time

    from tuner.store.workers import machine_tag

    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", {})
    ended, tag = _ended_pid(), machine_tag()
    cases = {  # folder name -> its age in hours, whether it stays
        f"20260101T000000-{tag}-{ended}": (0, False),
        f"20260101T000001-{tag}-{os.getpid()}": (0, True),  # still running: a concurrent evaluation's
        f"20260101T000002-0badc0de-{ended}": (0, True),  # another machine's: only its age tells
        f"20260101T000003-0badc0de-{ended}": (25, False),
        f"20260101T000004-{ended}": (0, True),  # the name without a machine
        f"20260101T000005-{ended}": (25, False),
    }
    folder = store.evaluations.folder("s")
    for name, (hours, _) in cases.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "model.keras").write_bytes(b"model")
        os.utime(folder / name, (time.time() - hours * 3600,) * 2)
    made = store.evaluations.new_folder("s")
    assert made.name.split("-")[1:] == [tag, str(os.getpid())]
    assert sorted(p.name for p in folder.iterdir() if p != made) == sorted(n for n, (_, stays) in cases.items() if stays)


@settings(derandomize=True, database=None, deadline=None, max_examples=200)
@given(stamp=st.text(max_size=20), tagged=st.booleans(), other=st.text(max_size=12),
       pid=st.one_of(st.integers(-5, 10**30).map(str), st.text(max_size=12)))
def test_any_folder_name_is_an_ended_process_of_this_machine_only_when_it_says_so(stamp, tagged, other, pid):
    """Whatever a folder is named (a user's, a damaged one, a pid past any real one), the check
    answers and never raises; yes only for this machine's tag and a pid that is no process."""
    import os

    from tuner.store.evaluations import _left_by_an_ended_process
    from tuner.store.workers import machine_tag

    tag = machine_tag() if tagged else other
    name = f"{stamp}-{tag}-{pid}"
    answer = _left_by_an_ended_process(Path(name))
    plain = "-" not in stamp + tag and pid.isascii() and pid.isdigit()
    if answer:
        assert plain and tag == machine_tag() and int(pid) != os.getpid()
    if plain and tagged and int(pid) == os.getpid():
        assert not answer
