"""Ctrl-C and SIGTERM that always stop a search, cleanly.

An asynchronous KeyboardInterrupt is unreliable mid-training: Keras converts logs inside a
bare `except:` (the interrupt is lost there) and JAX's gc callbacks print it as ignored. So
while a search runs, the first Ctrl-C only sets a flag, which the training loop checks at
every epoch end and the engines before every trial and while waiting; a second Ctrl-C
interrupts at once. SIGTERM (what `kill`, systemd, Docker, Kubernetes and Slurm send, with a
short grace period before SIGKILL) interrupts at once, as `Terminated`, and sets the flag too,
in case the exception lands where Keras swallows it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Iterator

_requested = threading.Event()
_terminated = threading.Event()
EXIT_CODES = {"Ctrl-C": 130, "SIGTERM": 143}


class Terminated(KeyboardInterrupt):
    """SIGTERM: handled as a Ctrl-C that stops at once (a KeyboardInterrupt, so every path that
    records an interrupted trial records this one too)."""


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise KeyboardInterrupt (Terminated after SIGTERM) if the search was asked to stop."""
    if _terminated.is_set():
        raise Terminated
    if _requested.is_set():
        raise KeyboardInterrupt


def stop_requested() -> bool:
    """Whether Ctrl-C or SIGTERM arrived: an error after it is that signal's doing (an
    interrupt that lands inside an import can leave a module half-built)."""
    return _requested.is_set() or _terminated.is_set()


def cause(error: BaseException | None) -> str:
    """'SIGTERM' or 'Ctrl-C': what stopped the process, for the trial's reason and exit code."""
    while error is not None:
        if isinstance(error, Terminated):
            return "SIGTERM"
        error = error.__cause__ or error.__context__
    return "SIGTERM" if _terminated.is_set() else "Ctrl-C"


def _on_sigterm(signum: int, frame: Any) -> None:
    _terminated.set()
    _requested.set()
    raise Terminated


@contextlib.contextmanager
def terminating_as_interrupt() -> Iterator[None]:
    """Outside a search too (the ensemble step, an export): SIGTERM raises `Terminated`, so
    the command ends through its normal error path, in one line."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        _requested.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:  # an ignored SIGINT (a background job) stays ignored
        signal.signal(signal.SIGINT, on_sigint)
    _requested.clear()
    _terminated.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


@contextlib.contextmanager
def catching_ctrl_c() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    previous_term = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: Any) -> None:
        if _requested.is_set():
            raise KeyboardInterrupt
        _requested.set()
        os.write(2, b"\nstopping at the end of this epoch (Ctrl-C again to stop at once)\n")

    if previous is not signal.SIG_IGN:  # a background job that ignores Ctrl-C keeps ignoring it
        signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    _requested.clear()
    _terminated.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
        _requested.clear()
