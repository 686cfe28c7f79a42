"""Ctrl-C and SIGTERM that always stop a search, cleanly.

An asynchronous KeyboardInterrupt is unreliable mid-training: Keras converts logs inside a
bare `except:` (the interrupt is lost there) and JAX's gc callbacks print it as ignored. So
while a search runs, the first Ctrl-C only sets a flag, which the training loop checks at
every epoch end and the search loop before every trial and while waiting; a second Ctrl-C
interrupts at once. SIGTERM (what `kill`, systemd, Docker, Kubernetes and Slurm send, with a
short grace period before SIGKILL) interrupts at once, as `Terminated`, and sets the flag too,
in case the exception lands where Keras swallows it. SIGHUP (the terminal or the SSH session
closed) is handled as SIGTERM, unless it was ignored at the start (`nohup`): it stays ignored.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterator

_requested = threading.Event()
_terminated = threading.Event()
_terminated_by = ["SIGTERM"]  # the name of the signal that set `_terminated`
EXIT_CODES = {"Ctrl-C": 130, "SIGHUP": 129, "SIGTERM": 143}
_ENDING = {signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}  # signals that end a command at once
_STDERR = [2]  # the command's own stderr, kept open while a command runs
# A search's second Ctrl-C as its parent passes it on to its workers: stop at once. A signal of its
# own, since a second SIGINT that arrives before a busy worker ran its handler for the first
# merges with it (the kernel keeps one pending signal per kind) and would read as a first press.
STOP_NOW = signal.SIGUSR1


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: handled as a Ctrl-C that stops at once (a KeyboardInterrupt, so every path that
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
    """'SIGTERM', 'SIGHUP' or 'Ctrl-C': what stopped the process, for the trial's reason and exit code."""
    while error is not None:
        if isinstance(error, Terminated):
            return _terminated_by[0]
        error = error.__cause__ or error.__context__
    return _terminated_by[0] if _terminated.is_set() else "Ctrl-C"


def ended_by_signal(how: str) -> bool:
    """Whether `cause` names a signal that ends at once (SIGTERM, SIGHUP), not a first Ctrl-C."""
    return how in _ENDING.values()


def _on_sigterm(signum: int, frame: Any) -> None:
    _terminated_by[0] = _ENDING.get(signum, "SIGTERM")
    _terminated.set()
    _requested.set()
    raise Terminated


def _on_stop_now(signum: int, frame: Any) -> None:
    _requested.set()
    raise KeyboardInterrupt


def _exit_now(signum: int, frame: Any) -> None:
    """Outside a search nothing needs recording: every file tune keeps is written whole or not
    at all (temporary names, then a rename; a record after its files). So leave at once, in one
    line: unwinding through native code (TensorFlow's threads) could crash the teardown."""
    how = _ENDING.get(signum, "Ctrl-C")
    # To the terminal's stderr even while a Keras import has fd 2 captured (keras_backend.load_keras).
    kept = "".join([_EXIT_KEPT[0], *(f", {n}" for n in _EXIT_NOTES)])
    from tuner.paths import remove_path

    for path in _EXIT_REMOVALS:
        remove_path(path)
    os.write(_STDERR[0], f"error: interrupted ({how}); {kept}\n".encode())
    os._exit(EXIT_CODES[how])


_EXIT_KEPT = ["the study's records and any export are as they were"]  # what a signal's exit leaves as it was
_EXIT_NOTES: list[str] = []  # what an interrupted command did change, for its one line


def say_on_exit(kept: str) -> None:
    """What a signal's exit line says this command left as it was (a command with no study)."""
    _EXIT_KEPT[0] = kept
_EXIT_REMOVALS: list[Path] = []  # half-written temporary files and folders an interrupted command removes


def note_for_exit(note: str) -> None:
    """Say in the interrupted line what this command already changed (a counted test read)."""
    _EXIT_NOTES.append(note)


@contextlib.contextmanager
def removed_on_exit(path: Path) -> Iterator[None]:
    """While inside: a Ctrl-C or SIGTERM that ends the command removes `path` (a temporary file
    or folder being written) instead of leaving it for the next run to find stale."""
    _EXIT_REMOVALS.append(path)
    try:
        yield
    finally:
        kept_on_exit(path)


def kept_on_exit(path: Path) -> None:
    """From now on a signal's exit leaves `path` (a record names it now)."""
    if path in _EXIT_REMOVALS:
        _EXIT_REMOVALS.remove(path)


@contextlib.contextmanager
def exiting_on_signals(ignore_after: bool = False) -> Iterator[None]:
    """For a whole command: Ctrl-C and SIGTERM end it at once with one line, except inside
    `catching_ctrl_c` (a search), which records the running trial first. `ignore_after`, for a
    process that is the command alone: once its work is done they are ignored, since one in the
    interpreter's teardown (a second with TensorFlow loaded) would turn a finished command, its
    export complete, into one killed by the signal, silently."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _STDERR[0] = os.dup(2)
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    # An ignored SIGINT (a background job) or SIGHUP (nohup), or a caller's own handler, stays.
    taken = {signal.SIGTERM: previous[signal.SIGTERM], signal.SIGINT: signal.default_int_handler,
             signal.SIGHUP: signal.SIG_DFL}
    for signum, handler in previous.items():
        if handler is taken[signum]:
            signal.signal(signum, _exit_now)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_IGN if ignore_after else handler)
        os.close(_STDERR[0])
        _STDERR[0] = 2


@contextlib.contextmanager
def catching_ctrl_c() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    previous_term = signal.getsignal(signal.SIGTERM)
    previous_hup = signal.getsignal(signal.SIGHUP)
    previous_stop = signal.getsignal(STOP_NOW)

    def handler(signum: int, frame: Any) -> None:
        if _requested.is_set():
            raise KeyboardInterrupt
        _requested.set()
        os.write(2, b"\nstopping at the end of this epoch (Ctrl-C again to stop at once)\n")

    if previous is not signal.SIG_IGN:  # a background job that ignores Ctrl-C keeps ignoring it
        signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if previous_hup is not signal.SIG_IGN:  # under nohup it stays ignored
        signal.signal(signal.SIGHUP, _on_sigterm)
    signal.signal(STOP_NOW, _on_stop_now)
    _requested.clear()
    _terminated.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGHUP, previous_hup)
        signal.signal(STOP_NOW, previous_stop)
        _requested.clear()



def exit_with_parent(parent: int) -> None:
    """End this helper process (a worker, the checks' process) within a second of its parent's end:
    a parent killed, or one that left through `_exit_now`, runs no cleanup that would end it, and
    an orphan would hold its memory (800 MiB with TensorFlow) for as long as it runs. The parent is
    watched by its pid and start time, not as this process's parent: a helper forked by the
    parent's forkserver (`tuner.search.pool.processes`) is the server's child, and the server
    ends only after its last child."""
    import psutil

    try:
        watched = psutil.Process(parent)
    except psutil.Error:
        os._exit(3)  # gone before the watch began

    def watch() -> None:
        while _alive(watched):
            time.sleep(1.0)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _alive(process: Any) -> bool:
    """Running and not a zombie (ended, waiting for its own parent to collect its status)."""
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


_HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def holding_signals() -> Iterator[list[int]]:
    """Ctrl-C, SIGTERM, SIGHUP and a worker's stop-at-once wait until the block is done, then are
    handled as they would have been: around a step that must finish once begun (a helper's start,
    an export's rename and its note, a trial's creation and its owner). Yields the signals held
    so far, for a block that would undo its step once one came."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    pending: list[int] = []
    handlers = {s: signal.getsignal(s) for s in (*_HELD, STOP_NOW)}
    for signum, handler in handlers.items():
        if callable(handler):  # an ignored Ctrl-C (a background job) stays ignored
            signal.signal(signum, lambda received, frame: pending.append(received))
    try:
        yield pending
    finally:
        for signum, handler in handlers.items():
            if callable(handler):
                signal.signal(signum, handler)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)


@contextlib.contextmanager
def starting_own_group() -> Iterator[None]:
    """Around starting a helper process that puts itself in a process group of its own
    (`own_group`): a handler that ended this process mid-start cut the child's start-up data short
    (its "EOFError: Ran out of input" traceback on the terminal), so the signals are held. They
    are blocked too, for the child to inherit the mask: still in the terminal's group mid-start-up,
    it drops its copy of a Ctrl-C instead of dying. The mask alone is not enough: it is this
    thread's, and the kernel hands a signal sent to the process to any thread that does not block
    it, whose C handler has Python run the handler in this thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with holding_signals():
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(_HELD))
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


def own_group() -> None:
    """In a helper process: a process group of its own, so that a terminal's Ctrl-C reaches its
    parent only (which passes it on, or ends it), and Ctrl-C as Python's KeyboardInterrupt again."""
    os.setpgid(0, 0)
    # A Ctrl-C pending from before the move was its parent's too, which has it: ignoring discards it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, set(_HELD))  # a SIGTERM sent to it ends it now
    signal.signal(signal.SIGINT, signal.default_int_handler)
