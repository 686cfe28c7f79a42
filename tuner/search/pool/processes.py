"""How a search's helper processes (its workers, its checks) start. On TensorFlow they are forked
from one server process that imported TensorFlow, Keras and the engines once (multiprocessing's
forkserver, preloading `tuner.search.pool.preload`): a worker is then ready in well under a second
instead of 5-8 s of imports of its own, which on a 2-core CPU also took those seconds from the
checks' training beside them. Elsewhere (JAX and PyTorch, whose runtimes are not safe to fork
into, or $TUNE_START_METHOD=spawn) each helper is spawned and imports its own.

multiprocessing already gives each child the parent's working folder and import path; what it
does not give a forked child is the parent's environment as it is now (the server keeps the one
it started with), so each helper takes that first (`_as_the_parent_is`)."""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.context import BaseContext
from typing import Any, Callable

from tuner import config
from tuner.keras_backend import selected_backend

PRELOAD = "tuner.search.pool.preload"


def helper_context() -> BaseContext:
    """The multiprocessing context that helpers start from (`helper_process`)."""
    if start_method() == "forkserver" and _server_running():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def start_method() -> str:
    """$TUNE_START_METHOD if set, else forkserver on TensorFlow where the platform has it, else spawn."""
    chosen = config.start_method()
    if chosen == "forkserver" and selected_backend() != "tensorflow":
        chosen = None  # only TensorFlow is safe to fork once imported: the others spawn
    if chosen is None:
        forkable = "forkserver" in multiprocessing.get_all_start_methods()
        chosen = "forkserver" if forkable and selected_backend() == "tensorflow" else "spawn"
    return chosen


def start_preloading() -> None:
    """Start the server now, so its imports overlap what the command does before its first helper."""
    if start_method() == "forkserver":
        _server_running()


_UNAVAILABLE: list[OSError] = []  # why the server could not start in this process: helpers spawn


def _server_running() -> bool:
    """Start the server unless it runs (it is started again if it died). Its socket lives in the
    temporary folder: one that cannot hold it (read-only, full, a path too long for a socket)
    leaves helpers to spawn, as they did before there was a server."""
    from multiprocessing import forkserver

    if _UNAVAILABLE:
        return False
    multiprocessing.get_context("forkserver").set_forkserver_preload([PRELOAD])
    try:
        forkserver.ensure_running()
    except OSError as e:
        _UNAVAILABLE.append(e)
        return False
    return True


def helper_process(context: BaseContext, target: Callable[..., None], args: tuple, name: str) -> Any:
    """A daemon process of `context` that runs `target(*args)` with this process's environment."""
    return context.Process(target=_as_the_parent_is, args=(dict(os.environ), target, args), name=name, daemon=True)


def _as_the_parent_is(environment: dict[str, str], target: Callable[..., None], args: tuple) -> None:
    os.environ.clear()
    os.environ.update(environment)
    config.quiet_tensorflow()  # what the server's import set, gone with its environment
    target(*args)
