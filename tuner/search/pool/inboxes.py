"""The parent's side of the workers' report pipes: one per worker, read as reports arrive."""

from __future__ import annotations

from multiprocessing.connection import Connection, wait
from typing import Callable

from tuner.search.pool.messages import Report

Dispatch = Callable[[Report], None]


class Inboxes:
    def __init__(self, dispatch: Dispatch):
        self.dispatch = dispatch
        self.open: dict[int, Connection] = {}  # worker -> the read end of its reports

    def add(self, worker: int, inbox: Connection) -> None:
        self.open[worker] = inbox

    def receive_ready(self, timeout: float) -> None:
        """Dispatch a report of each worker that has one, waiting up to `timeout` for the first."""
        senders = {conn: worker for worker, conn in self.open.items()}
        for conn in wait(list(senders), timeout=timeout):
            self._receive(senders[conn])

    def drain(self, worker: int) -> None:
        """Dispatch what an exited worker left in its pipe."""
        while worker in self.open and self._receive(worker):
            pass

    def _receive(self, worker: int) -> bool:
        """Dispatch one report of `worker`; False (and its inbox closed) once it has no more."""
        conn = self.open[worker]
        try:
            report = conn.recv()
        except (EOFError, OSError):  # it exited (or was killed mid-write: a torn report is dropped)
            conn.close()
            del self.open[worker]
            return False
        self.dispatch(report)
        return True
