"""How helper processes start (`tuner.search.pool.processes`): forked from a server that imported
TensorFlow once, or spawned; either way with the parent's environment as it is at their start,
ending with the parent, and spawned when the server cannot run."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings, strategies as st

from tuner import config
from tuner.errors import UserError
from tuner.interrupts import exit_with_parent
from tuner.search.pool import processes

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("variable, backend, expected", [
    (None, "tensorflow", "forkserver"),
    ("forkserver", "tensorflow", "forkserver"),
    ("spawn", "tensorflow", "spawn"),
    (" spawn ", "tensorflow", "spawn"),
    (None, "jax", "spawn"),
    (None, "torch", "spawn"),
    ("forkserver", "jax", "spawn"),  # only TensorFlow is safe to fork once imported
    ("", "tensorflow", "forkserver"),
])
def test_the_start_method_by_variable_and_backend(variable, backend, expected, monkeypatch):
    if variable is None:
        monkeypatch.delenv("TUNE_START_METHOD", raising=False)
    else:
        monkeypatch.setenv("TUNE_START_METHOD", variable)
    monkeypatch.setenv("KERAS_BACKEND", backend)
    assert processes.start_method() == expected


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
               max_size=30).filter(lambda text: text.strip() not in ("", *config.START_METHODS)))
def test_any_other_start_method_is_one_line_naming_the_variable(text):
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("TUNE_START_METHOD", text)
        with pytest.raises(UserError, match=r"^TUNE_START_METHOD=.*expected one of forkserver, spawn$") as caught:
            config.check()
    assert "\n" not in str(caught.value).replace(repr(text), "")


def _report_environment(send, names) -> None:
    send.send({name: os.environ.get(name) for name in names} | {"cwd": os.getcwd(), "ppid": os.getppid()})


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_a_helper_takes_the_parent_environment_as_it_is_at_its_start(method, monkeypatch, tmp_path):
    """The server keeps the environment it started with; a helper forked from it later must see
    the parent's: a variable set since, one removed since, and the working folder."""
    monkeypatch.setenv("TUNE_START_METHOD", method)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("TUNE_PROBE_REMOVED", "server's")
    context = processes.helper_context()  # the server starts here with TUNE_PROBE_REMOVED set
    assert context.get_start_method() == method
    monkeypatch.setenv("TUNE_PROBE_ADDED", "parent's")
    monkeypatch.delenv("TUNE_PROBE_REMOVED")
    monkeypatch.chdir(tmp_path)
    receive, send = context.Pipe(duplex=False)
    processes.wait_until_ready()
    helper = processes.start_helper(_report_environment,
                                    (send, ["TUNE_PROBE_ADDED", "TUNE_PROBE_REMOVED", "TF_CPP_MIN_LOG_LEVEL"]), "probe")
    seen = receive.recv()
    helper.join(60)
    assert helper.exitcode == 0
    assert seen["TUNE_PROBE_ADDED"] == "parent's" and seen["TUNE_PROBE_REMOVED"] is None
    assert seen["TF_CPP_MIN_LOG_LEVEL"] is not None  # TensorFlow's first op in the helper stays quiet
    assert Path(seen["cwd"]) == tmp_path
    assert (seen["ppid"] == os.getpid()) == (method == "spawn")  # forked by the server, not by this process


def test_a_server_that_cannot_start_leaves_helpers_to_spawn(monkeypatch):
    from multiprocessing import forkserver

    def no_socket() -> None:
        raise OSError("AF_UNIX path too long")

    monkeypatch.setenv("TUNE_START_METHOD", "forkserver")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setattr(processes, "_UNAVAILABLE", [])
    monkeypatch.setattr(forkserver, "ensure_running", no_socket)
    assert processes.helper_context().get_start_method() == "spawn"
    processes.start_preloading()  # no error, once or again
    assert processes.helper_context().get_start_method() == "spawn"


def test_a_temporary_folder_too_long_for_a_socket_spawns_helpers(tmp_path):
    deep = tmp_path / ("x" * 120)
    deep.mkdir()
    script = ("from tuner.search.pool import processes as p; "
              "print(p.start_method(), p.helper_context().get_start_method())")
    out = subprocess.run([sys.executable, "-c", script], env={**os.environ, "TMPDIR": str(deep),
                                                               "KERAS_BACKEND": "tensorflow"},
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["forkserver", "spawn"]


def test_a_failing_import_does_not_fail_the_server():
    script = ("import tuner.keras_backend as k\n"
              "def broken(): raise RuntimeError('no Keras here')\n"
              "k.load_keras = broken\n"
              "import tuner.search.pool.preload\n"
              "print('served')")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         start_new_session=True)  # the preload moves its process to a group of its own
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "served"


def _watch(parent: int) -> None:
    exit_with_parent(parent)
    time.sleep(600)


@pytest.mark.parametrize("parent", [2**22 + 12345, "a zombie"])  # no such process; ended, not yet collected
def test_a_helper_whose_parent_is_gone_at_its_start_ends(parent):
    zombie = subprocess.Popen([sys.executable, "-c", "pass"]) if parent == "a zombie" else None
    if zombie is not None:
        _wait_for(lambda: psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE, 60)
        parent = zombie.pid
    helper = multiprocessing.get_context("spawn").Process(target=_watch, args=(parent,))
    helper.start()
    helper.join(60)
    assert helper.exitcode == 3
    if zombie is not None:
        zombie.wait()


def _watch_parent_then_wait(parent: int, path: str) -> None:
    exit_with_parent(parent)
    Path(path).write_text(f"{os.getpid()} {os.getppid()}")
    time.sleep(600)


PARENT = """
import os, sys, time
sys.path.insert(0, {tests!r})
from tuner.search.pool.processes import start_helper
from test_processes import _watch_parent_then_wait
start_helper(_watch_parent_then_wait, (os.getpid(), {path!r}), "probe")
time.sleep(600)
"""


@pytest.mark.slow  # the server imports TensorFlow first
def test_a_helper_forked_by_the_server_ends_with_its_parent(tmp_path):
    """The helper's parent is the server, not the command: killed outright (no cleanup runs), the
    command closes the server's pipe, the server ends, and the helper follows within seconds."""
    path = tmp_path / "helper"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TUNE_START_METHOD": "forkserver"}
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(tests=str(ROOT / "tests" / "search"), path=str(path))],
                              env=env, cwd=ROOT)
    try:
        helper, forked_by = _wait_for(lambda: path.exists() and path.read_text(), 180).split()
        assert int(forked_by) != parent.pid and psutil.Process(int(forked_by)).ppid() == parent.pid
        os.kill(parent.pid, signal.SIGKILL)  # and not collected until the helper is gone: a zombie meanwhile
        _wait_for(lambda: not _running(int(helper)) and not _running(int(forked_by)), 60)
    finally:
        parent.kill()


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for(condition, seconds: float):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s")


def _report_modules(path: str) -> None:
    import optuna
    import tuner

    Path(path).write_text(f"{tuner.__file__}\n{optuna.__file__}")


SHADOWED = """
import sys, time
sys.path.insert(0, {tests!r})
from tuner.search.pool.processes import helper_context, start_helper
from test_processes import _report_modules
if __name__ == "__main__":  # a helper imports this file again
    assert helper_context().get_start_method() == "forkserver"
    start_helper(_report_modules, ({path!r},), "probe").join()
    from tuner.search.pool import processes
    assert not processes._UNAVAILABLE, processes._UNAVAILABLE  # forked, not spawned after the server failed
"""


@pytest.mark.slow  # the server imports TensorFlow first
def test_a_tuner_or_optuna_module_in_the_working_folder_is_not_what_helpers_import(tmp_path):
    """The server is `python -c`, which put the working folder first on its import path: a
    `tuner.py` there failed every helper ("'tuner' is not a package"), an `optuna.py` every
    worker, another checkout's `tuner/` ran instead of the command's own."""
    folder = tmp_path / "project"
    folder.mkdir()
    for name in ("tuner.py", "optuna.py"):
        (folder / name).write_text("raise SystemExit('the folder\\'s own module was imported')\n")
    path = tmp_path / "modules"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TUNE_START_METHOD": "forkserver", "PYTHONPATH": str(ROOT)}
    script = tmp_path / "parent.py"  # run as a file, like the `tune` script: its own folder first on its path
    script.write_text(SHADOWED.format(tests=str(ROOT / "tests" / "search"), path=str(path)))
    out = subprocess.run([sys.executable, str(script)], env=env, cwd=folder, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    tuner_file, optuna_file = path.read_text().splitlines()
    assert Path(tuner_file).is_relative_to(ROOT / "tuner") and not Path(optuna_file).is_relative_to(folder)


def test_a_server_gone_before_it_forked_leaves_the_helper_spawned(monkeypatch):
    """Killed (or out of memory) between the connection and the fork, the server's end read as
    EOFError out of the start, which reached the command as Ctrl-C (exit 130)."""
    from multiprocessing import popen_forkserver

    def gone(self, process_obj):
        raise EOFError

    monkeypatch.setenv("TUNE_START_METHOD", "forkserver")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setattr(processes, "_UNAVAILABLE", [])
    monkeypatch.setattr(popen_forkserver.Popen, "_launch", gone)
    receive, send = multiprocessing.Pipe(duplex=False)
    helper = processes.start_helper(_report_environment, (send, []), "probe")
    seen = receive.recv()
    helper.join(60)
    assert helper.exitcode == 0 and seen["ppid"] == os.getpid()  # spawned by this process
    assert processes._UNAVAILABLE and processes.helper_context().get_start_method() == "spawn"


def test_waiting_for_the_server_ends_at_the_deadline(monkeypatch):
    monkeypatch.setenv("TUNE_START_METHOD", "forkserver")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setattr(processes, "_READY", __import__("threading").Event())
    monkeypatch.setattr(processes, "_probe", lambda: None)  # a server that never gets ready
    start = time.monotonic()
    processes.wait_until_ready(start + 0.5)
    assert 0.5 <= time.monotonic() - start < 5
