"""Ctrl-C that always stops a search, cleanly.

An asynchronous KeyboardInterrupt is unreliable mid-training: Keras converts logs inside a
bare `except:` (the interrupt is lost there) and JAX's gc callbacks print it as ignored. So
while a search runs, the first Ctrl-C only sets a flag, which the training loop checks at
every epoch end and the engines before every trial and while waiting; a second Ctrl-C
interrupts at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Iterator

_requested = threading.Event()


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed during the search."""
    if _requested.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def catching_ctrl_c() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if _requested.is_set():
            raise KeyboardInterrupt
        _requested.set()
        os.write(2, b"\nstopping at the end of this epoch (Ctrl-C again to stop at once)\n")

    if previous is not signal.SIG_IGN:  # a background job that ignores Ctrl-C keeps ignoring it
        signal.signal(signal.SIGINT, handler)
    _requested.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested.clear()
