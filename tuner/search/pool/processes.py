"""How a search's helper processes (its workers, its checks) start. On TensorFlow they are forked
from one server process that imported TensorFlow, Keras and the engines once (multiprocessing's
forkserver, preloading `tuner.search.pool.preload`): a worker is then ready in well under a second
instead of 5-8 s of imports of its own, which on a 2-core CPU also took those seconds from the
checks' training beside them. Elsewhere (JAX and PyTorch, whose runtimes are not safe to fork
into; Python 3.10, whose server would import a user's `tuner.py` or `optuna.py` from the working
folder; $TUNE_START_METHOD=spawn) each helper is spawned and imports its own.

multiprocessing already gives each child the parent's working folder and import path; what it
does not give a forked child is the parent's environment as it is now (the server keeps the one
it started with), so each helper takes that first (`_as_the_parent_is`)."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from multiprocessing.context import BaseContext
from typing import Any, Callable

from tuner import config
from tuner.keras_backend import selected_backend

PRELOAD = "tuner.search.pool.preload"


def helper_context() -> BaseContext:
    """The multiprocessing context that helpers start from (`start_helper`)."""
    if start_method() == "forkserver" and _server_running():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def start_method() -> str:
    """$TUNE_START_METHOD if set, else forkserver on TensorFlow where the platform has it, else spawn."""
    chosen = config.start_method()
    if chosen == "forkserver" and not _forkable():
        chosen = None
    if chosen is None:
        chosen = "forkserver" if _forkable() else "spawn"
    return chosen


def _forkable() -> bool:
    """Only TensorFlow is safe to fork once imported; Python 3.11's -P keeps the working folder off
    the server's import path."""
    return ("forkserver" in multiprocessing.get_all_start_methods() and sys.version_info >= (3, 11)
            and selected_backend() == "tensorflow")


def start_preloading() -> None:
    """Start the server now, so its imports overlap what the command does before its first helper."""
    if start_method() == "forkserver":
        _server_running()


def wait_until_ready(deadline: float | None = None) -> None:
    """Wait, signals live, until the server has imported and forks (a helper's start would wait for
    it with signals held: a Ctrl-C then took 5-7 s to act), or until `deadline` (monotonic) passes."""
    if helper_context().get_start_method() != "forkserver" or _READY.is_set():
        return
    threading.Thread(target=_probe, name="forkserver-probe", daemon=True).start()
    while not _READY.wait(0.2):
        if deadline is not None and time.monotonic() >= deadline:
            return


def start_helper(target: Callable[..., None], args: tuple, name: str) -> Any:
    """A daemon process that runs `target(*args)` with this process's environment, started. A server
    that ended before it forked (killed, out of memory) leaves this and later helpers spawned."""
    context = helper_context()
    process = _helper_process(context, target, args, name)
    try:
        process.start()
    except (EOFError, ConnectionError) as e:
        if context.get_start_method() != "forkserver":
            raise
        _UNAVAILABLE.append(OSError(f"the helpers' server ended: {type(e).__name__}"))
        process = _helper_process(multiprocessing.get_context("spawn"), target, args, name)
        process.start()
    return process


_UNAVAILABLE: list[OSError] = []  # why the server could not start or went away: helpers spawn
_READY = threading.Event()  # the server forked once: its imports are done


def _server_running() -> bool:
    """Start the server unless it runs (it is started again if it died). Its socket lives in the
    temporary folder: one that cannot hold it (read-only, full, a path too long for a socket)
    leaves helpers to spawn, as they did before there was a server."""
    from multiprocessing import forkserver

    if _UNAVAILABLE:
        return False
    multiprocessing.get_context("forkserver").set_forkserver_preload([PRELOAD])
    saved = os.environ.get("PYTHONSAFEPATH")
    # The server is `python -c`, which puts the working folder first on its import path: a user's
    # tuner.py or optuna.py there was imported in place of ours (the helpers failed, or ran another copy).
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        forkserver.ensure_running()
    except OSError as e:
        _UNAVAILABLE.append(e)
        return False
    finally:
        if saved is None:
            os.environ.pop("PYTHONSAFEPATH", None)
        else:
            os.environ["PYTHONSAFEPATH"] = saved
    return True


def _probe() -> None:
    try:
        probe = multiprocessing.get_context("forkserver").Process(target=_nothing, name="tune-probe", daemon=True)
        probe.start()
        probe.join()
    except Exception:  # the server is gone: the helper's own start falls back to spawn
        pass
    _READY.set()


def _nothing() -> None:
    pass


def _helper_process(context: BaseContext, target: Callable[..., None], args: tuple, name: str) -> Any:
    return context.Process(target=_as_the_parent_is, args=(dict(os.environ), target, args), name=name, daemon=True)


def _as_the_parent_is(environment: dict[str, str], target: Callable[..., None], args: tuple) -> None:
    os.environ.clear()
    os.environ.update(environment)
    config.quiet_tensorflow()  # what the server's import set, gone with its environment
    target(*args)
