"""Several workers, killed workers and Ctrl-C: nothing lost, nothing counted twice."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ENDLESS_SPACE, TINY_SPACE
from tuner.store import SearchStore

pytestmark = pytest.mark.slow  # every test here trains real models


def worker(results: Path, trials: int, storage: str | None = None, epochs: int = 1, study: str = "w",
           space: Path = TINY_SPACE, jobs: int = 1, where: str = "--isolate",
           ignored: tuple[int, ...] = ()) -> subprocess.Popen:
    """`tune search` in a process of its own; `where` (with one job): train in a worker process
    of its own (--isolate, TensorFlow's default) or in that process (--in-process); `ignored`:
    signals it starts with ignored (SIGHUP: as under `nohup`)."""
    args = [sys.executable, "-m", "tuner", "search", "--space", str(space), "--study", study, "--trials",
            str(trials), "--epochs", str(epochs), "--results-dir", str(results), "--no-ensemble", "--jobs", str(jobs),
            "--seed", "0", where]
    if storage:
        args += ["--storage", storage]
    env = {**os.environ, "TUNE_HEARTBEAT_SECONDS": "1", "PYTHONUNBUFFERED": "1"}
    # preexec: a shell that started us in the background leaves SIGINT ignored, and `nohup` SIGHUP;
    # children inherit that. Restore the defaults, so that they reach `tune` as in a terminal.
    def preexec() -> None:
        for signum in (signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        for signum in ignored:
            signal.signal(signum, signal.SIG_IGN)

    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=preexec)


def check_exactly(store: SearchStore, n: int, study: str = "w") -> list:
    trials = store.trials.all(study)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    assert sum(t.finished for t in trials) == n
    assert not [t for t in trials if t.state == "running"]
    return trials


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_three_workers_share_one_study(backend, tmp_path, request):
    storage = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    if storage:  # a fresh study name per run: the server may be shared
        study = f"w{random.randrange(10**9)}"
    else:
        study = "w"
    # With start points: three processes opening one new study queue them once.
    space = yaml.safe_load(TINY_SPACE.read_text())
    space["start"] = [{"width": 5, "dropout": 0.123}, {"width": 7, "dropout": 0.234}]
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    # Three processes, each training in itself: what is shared is the study.
    procs = [worker(tmp_path, 6, storage, study=study, space=tmp_path / "space.yaml", where="--in-process")
             for _ in range(3)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    trials = check_exactly(SearchStore(storage, tmp_path), 6, study)
    # The work was shared: more than one process ran trials.
    ran = [len(re.findall(r"^trial \d+ started", out, re.M)) for out, _ in outputs]
    assert sum(ran) >= 6 and sum(r > 0 for r in ran) >= 2, ran
    assert all(t.state != "failed" for t in trials)
    assert sorted(t.params["dropout"] for t in trials if t.params["dropout"] in (0.123, 0.234)) == [0.123, 0.234]


def _wait_for(condition, timeout: float = 180.0, step: float = 0.05):
    """Poll `condition()` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("the awaited event never came")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _ours(store: SearchStore) -> bool:
    """Study 'w' exists with tune's record (a kill just after its creation leaves it blank until
    the next search takes it over)."""
    study_id = store.studies.id("w")
    return study_id is not None and "tune" in store.db.storage.get_study_user_attrs(study_id)


def _running(store: SearchStore) -> list:
    return [t for t in store.trials.all("w") if t.state == "running"] if _ours(store) else []


def test_killed_workers_lose_nothing(tmp_path):
    """SIGKILL the whole `tune` process group at observed moments: just after the study exists,
    while a trial trains (twice: before and after a trial finished), and just after a trial finished. Each kill while training
    hits a trial seen running; its worker process does not outlive the kill; every finished
    record survives every later kill unchanged; the next run ends with exactly N finished and
    the killed trials failed as interrupted."""
    store = SearchStore(None, tmp_path, create=True)
    finished_before: dict = {}
    hit: list[int] = []
    for moment in ("study created", "training", "trial finished", "training"):
        proc = worker(tmp_path, 5, epochs=2)
        done = len(finished_before)
        if moment == "study created":
            _wait_for(lambda: store.studies.id("w") is not None)
        elif moment == "trial finished":
            _wait_for(lambda: _ours(store) and store.trials.count_finished("w") > done)
        else:
            running = _wait_for(lambda: _running(store))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if moment == "training":
            (trial,) = running
            assert [t.number for t in _running(store)] == [trial.number]  # the kill hit it mid-trial
            hit.append(trial.number)
            pid = store.db.storage.get_trial(store.trials.trial_id("w", trial.number)).user_attrs["worker"]["pid"]
            _wait_for(lambda: not _alive(pid), timeout=15)  # its worker ends too (raises if it does not)
        now = {t.number: t for t in store.trials.all("w") if t.finished} if _ours(store) else {}
        for number, record in finished_before.items():
            assert now[number] == record  # a finished trial survives every later kill unchanged
        finished_before = now
    proc = worker(tmp_path, 5, epochs=2)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    trials = check_exactly(store, 5)
    for number, record in finished_before.items():
        assert next(t for t in trials if t.number == number) == record
    by_number = {t.number: t for t in trials}
    assert len(hit) == 2 and all(by_number[n].state == "failed" and "interrupted" in by_number[n].reason for n in hit)


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_fails_the_running_trials_and_says_how_to_resume(jobs, tmp_path):
    # Trials run until stopped; one job trains in the `tune` process, two in worker processes.
    proc = worker(tmp_path, 50, epochs=1000, jobs=jobs, space=ENDLESS_SPACE, where="--in-process")
    store = SearchStore(None, tmp_path, create=True)
    _wait_for(lambda: _running(store))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Resume with the same command" in err and "Traceback" not in err
    trials = store.trials.all("w")
    assert not [t for t in trials if t.state == "running"]
    interrupted = [t for t in trials if t.state == "failed"]
    # one running trial per worker at most, each failed as interrupted
    assert 1 <= len(interrupted) <= jobs and all("interrupted" in t.reason for t in interrupted)




@pytest.mark.parametrize("nohup", [False, True])
def test_a_closed_terminal_stops_a_search_as_sigterm_does_unless_under_nohup(nohup, tmp_path):
    """SIGHUP (the terminal or SSH session closed) killed `tune` outright, its running trials left
    "running" until their heartbeats went stale. It now stops the search as SIGTERM does: the
    running trials are failed as interrupted, exit 129. Under `nohup` (SIGHUP ignored from the
    start, inherited) the search goes on."""
    # Under nohup one job in this process is enough: the signal is the `tune` process's to ignore.
    jobs, where = (1, "--in-process") if nohup else (2, "--isolate")
    proc = worker(tmp_path, 50, epochs=1000, jobs=jobs, space=ENDLESS_SPACE, where=where,
                  ignored=(signal.SIGHUP,) if nohup else ())
    try:
        store = SearchStore(None, tmp_path, create=True)
        running = _wait_for(lambda: len(_running(store)) == jobs and _running(store))
        proc.send_signal(signal.SIGHUP)
        if nohup:
            epochs = _epochs_of(store, running[0].number)
            _wait_for(lambda: _epochs_of(store, running[0].number) > epochs)  # it trains on
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:  # a search left training endlessly would slow every test after it
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    how, code = ("SIGTERM", 143) if nohup else ("SIGHUP", 129)
    assert proc.returncode == code and f"interrupted ({how})" in err and "Traceback" not in err, err[-2000:]
    trials = store.trials.all("w")
    assert not [t for t in trials if t.state == "running"]
    # The workers are passed SIGTERM (they are in groups of their own, which a hang-up never reaches).
    failed = [t for t in trials if t.state == "failed"]
    assert 1 <= len(failed) <= jobs and all(t.reason.startswith("interrupted") for t in failed), \
        [(t.number, t.reason, t.seconds) for t in failed]

def _epochs_of(store: SearchStore, number: int) -> int:
    """Epochs the trial has ended so far (each is reported to the study as it ends)."""
    return len(store.db.storage.get_trial(store.trials.trial_id("w", number)).intermediate_values)


def test_a_second_ctrl_c_stops_at_once(tmp_path):
    """The first Ctrl-C asks for a stop at the epoch's end; a second, during that same epoch,
    stops at once: no epoch ends after it. Through a worker (TensorFlow's default), whose parent
    passes each press on; the presses come a tenth of a second apart, before the parent's first
    look at its flag. Epochs of one image per step last seconds here."""
    space = yaml.safe_load(ENDLESS_SPACE.read_text())
    space["params"] |= {"batch_size": 1, "depth": 2, "width": 16, "augment": 0.0}
    (tmp_path / "long_epochs.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    proc = worker(tmp_path, 50, epochs=1000, space=tmp_path / "long_epochs.yaml")
    store = SearchStore(None, tmp_path, create=True)
    (trial,) = _wait_for(lambda: _running(store))
    epochs = _wait_for(lambda: _epochs_of(store, trial.number))  # an epoch just ended: the next is under way
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "stopping at the end of this epoch (Ctrl-C again to stop at once)" in err, err[-2000:]
    (failed,) = [t for t in store.trials.all("w") if t.number == trial.number]
    assert failed.state == "failed" and failed.reason == "interrupted (Ctrl-C)"
    assert _epochs_of(store, trial.number) == epochs  # the epoch under way when the presses came never ended


def _descendants(pid: int) -> set[int]:
    """Every living process below `pid` (from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.mark.parametrize("signum, code, group", [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)])
def test_a_signal_during_the_checks_leaves_no_process_behind(signum, code, group, tmp_path, monkeypatch):
    """Ctrl-C (to the terminal's process group) or SIGTERM (to `tune` alone) while the checks train,
    the two workers already started: the command exits with its code, and the checks' process and
    the workers (800 MiB each with TensorFlow) end within seconds; no study is left."""
    monkeypatch.delenv("TUNE_CHECK")  # the checks on, as by default
    proc = worker(tmp_path, 3, jobs=2)
    for line in proc.stdout:
        if "cost of a trial" in line:
            break
    helpers = _wait_for(lambda: (lambda found: found if len(found) >= 3 else None)(_descendants(proc.pid)))
    (os.killpg if group else os.kill)(proc.pid, signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err
    _wait_for(lambda: not any(_alive(pid) for pid in helpers), timeout=15)
    assert not (tmp_path / "tune.db").exists()  # no study, and no database either



@pytest.mark.parametrize("checks", [True, False])
def test_a_signal_while_the_helpers_server_imports_acts_at_once(checks, tmp_path, monkeypatch):
    """The first helper's start waited for the server's imports (5-7 s) with signals held: SIGTERM
    then took that long to end `tune`. The wait is now outside the hold, with signals live."""
    if checks:
        monkeypatch.delenv("TUNE_CHECK")  # the checks' process is the first helper
    monkeypatch.setenv("TUNE_START_METHOD", "forkserver")
    proc = worker(tmp_path, 3, jobs=2)
    try:
        for line in proc.stdout:
            if ("checking space" if checks else "study w") in line:
                break
        time.sleep(0.5)  # the server imports TensorFlow for about 7 s here
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143 and "Traceback" not in err, err[-2000:]
    assert took < 5.0, f"{took:.1f} s from SIGTERM to exit"  # 10.1 s before; a loaded machine gets room


def test_an_interrupted_check_says_what_it_left_and_removes_the_folder_it_made(tmp_path):
    """`tune check` has no study and no export: its interrupted line says what it does leave."""
    out = tmp_path / "made" / "out"
    proc = subprocess.Popen([sys.executable, "-m", "tuner", "check", "--space", str(TINY_SPACE), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if "cost of a trial" in line:
            break
    assert out.is_dir()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert err.endswith("error: interrupted (Ctrl-C); the checks record nothing, and an --out folder made for the "
                        "picture is removed\n"), err[-2000:]
    assert not (tmp_path / "made").exists()

_START_WINDOW = '''
import multiprocessing, os, signal, sys, time
from tuner import interrupts

def child(queue):
    time.sleep(1.0)  # the Ctrl-C below reaches this process while it is still in its parent's group
    interrupts.own_group()
    try:
        time.sleep(0.5)
        queue.put("child lived")
    except KeyboardInterrupt:
        queue.put("child interrupted")

if __name__ == "__main__":
    got = []
    signal.signal(signal.SIGINT, lambda *_: got.append("parent"))
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=child, args=(queue,))
    with interrupts.starting_own_group():
        process.start()
        os.killpg(0, signal.SIGINT)  # a terminal's Ctrl-C, mid-start
        time.sleep(0.2)
        print("during:", got, flush=True)
    time.sleep(0.1)
    print("after:", got, queue.get(timeout=60), flush=True)
    process.join()
    print("exit:", process.exitcode)
'''


def test_a_ctrl_c_while_a_helper_starts_reaches_the_parent_and_not_the_helper(tmp_path):
    """A Ctrl-C that comes while a worker or the checks' process starts (both still in the
    terminal's process group) is handled by `tune` once the start is over, not lost (a search then
    ran on to exit 0), and the helper, which the parent ends or passes the Ctrl-C on to, lives."""
    script = tmp_path / "start_window.py"
    script.write_text(_START_WINDOW)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert run.stdout.splitlines() == ["during: []", "after: ['parent'] child lived", "exit: 0"], run.stderr[-2000:]


_SENT_TO_ANOTHER_THREAD = '''
import os, signal, threading, time
from tuner import interrupts

got = []
for signum in (signal.SIGTERM, signal.SIGINT):
    signal.signal(signum, lambda received, frame: got.append(signal.Signals(received).name))
go = threading.Event()
sender = threading.Thread(target=lambda: (go.wait(), os.kill(os.getpid(), signal.SIGTERM), os.kill(os.getpid(), signal.SIGINT)))
sender.start()  # before the window: a thread that blocks neither signal, as TensorFlow's and rich's do
with interrupts.starting_own_group():
    go.set()
    sender.join()
    time.sleep(0.2)
    print("during:", got, flush=True)
print("after:", sorted(got), flush=True)
'''


def test_a_signal_another_thread_receives_while_a_helper_starts_waits_for_the_start(tmp_path):
    """The kernel hands a signal sent to the process to any thread that does not block it, and
    Python then runs the handler in the main thread: mid-start, where ending the process cut the
    helper's start-up data short (its "EOFError: Ran out of input" traceback)."""
    script = tmp_path / "other_thread.py"
    script.write_text(_SENT_TO_ANOTHER_THREAD)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.stdout.splitlines() == ["during: []", "after: ['SIGINT', 'SIGTERM']"], run.stderr[-2000:]


_EXPORT_STEPS = '''
import os, signal, sys
from pathlib import Path
from tuner import interrupts

folder, when = Path(sys.argv[1]), sys.argv[2]
with interrupts.exiting_on_signals():
    folder.mkdir()
    with interrupts.removed_on_exit(folder):
        (folder / "model.keras").write_text("half")
        if when == "writing":
            os.kill(os.getpid(), signal.SIGTERM)
        with interrupts.holding_signals():
            if when == "renaming":
                os.kill(os.getpid(), signal.SIGTERM)
            folder.rename(folder.with_name("exported"))
            interrupts.note_for_exit("except the export in exported, which is complete")
    print("not reached", flush=True)
'''


@pytest.mark.parametrize("when, left, said", [
    ("writing", set(), "the study's records and any export are as they were\n"),
    ("renaming", {"exported"}, "any export are as they were, except the export in exported, which is complete\n"),
])
def test_a_signal_in_an_export_leaves_no_temporary_folder_and_says_what_was_exported(when, left, said, tmp_path):
    """SIGTERM while the export's temporary folder is written removes it; one that comes during
    the rename waits for it, and the exit line says the export is complete."""
    (tmp_path / "out").mkdir()
    script = tmp_path / "export_steps.py"
    script.write_text(_EXPORT_STEPS)
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "out" / ".tune-export-x"), when],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 143 and run.stdout == "" and run.stderr.endswith(said), run.stderr[-2000:]
    assert {p.name for p in (tmp_path / "out").iterdir()} == left


_AFTER_THE_WORK = '''
import os, signal, sys
from tuner import interrupts

with interrupts.exiting_on_signals(ignore_after=sys.argv[1] == "alone"):
    print("exported", flush=True)
os.kill(os.getpid(), signal.SIGTERM)  # in the teardown, as a late `kill` lands
os.kill(os.getpid(), signal.SIGINT)
print("finished", flush=True)
'''


@pytest.mark.parametrize("how, code, out", [("alone", 0, "exported\nfinished\n"), ("called", -signal.SIGTERM, "exported\n")])
def test_a_signal_after_the_commands_work_leaves_a_finished_command_finished(how, code, out, tmp_path):
    """The `tune` process (main without arguments) ignores signals once its work is done: a late
    one turned a complete export into a silent exit by the signal. Called from Python, the
    caller's handlers come back."""
    script = tmp_path / "after_the_work.py"
    script.write_text(_AFTER_THE_WORK)
    run = subprocess.run([sys.executable, str(script), how], capture_output=True, text=True, timeout=120)
    assert (run.returncode, run.stdout, run.stderr) == (code, out, "")
