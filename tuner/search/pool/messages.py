"""What a worker tells its parent, through a pipe of its own: typed reports, and the observer
that sends them (`Forward`) and the parent's side that hands them to its own (`deliver`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from multiprocessing.connection import Connection
from typing import Any

from tuner.search.observer import SearchObserver
from tuner.store import TrialRecord


class Kind(str, Enum):
    SEARCH_STARTED = "search_started"
    TRIAL_STARTED = "trial_started"
    EPOCH_ENDED = "epoch_ended"
    TRIAL_FINISHED = "trial_finished"
    MEMORY_GREW = "memory_grew"  # halfway to retiring: the parent readies a standby
    EXIT = "exit"


class ExitStatus(str, Enum):
    DONE = "done"  # the study has its trials
    RETIRED = "retired"  # its memory grew: a fresh process takes the slot
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM
    STOPPED = "stopped"  # a fatal condition (failures in a row, a database that refuses writes)
    ERROR = "error"  # the user's input
    CRASHED = "crashed"  # an unexpected exception (its traceback is the message)
    DIED = "died"  # no report at all: killed, or a crash in native code


@dataclass(frozen=True)
class Report:
    kind: Kind
    worker: int
    payload: Any


@dataclass(frozen=True)
class ExitReport:
    status: ExitStatus
    message: str = ""


class Forward:
    """A worker's observer: every event goes to the parent. Notes are dropped: the only ones
    come from opening the study, which the parent did first and showed."""

    def __init__(self, outbox: Connection, worker: int):
        self.outbox, self.worker = outbox, worker

    def search_started(self, setup: dict[str, str]) -> None:
        self.send(Kind.SEARCH_STARTED, setup)

    def trial_started(self, number: int, params: dict[str, Any], max_epochs: int, plan: Any = None) -> None:
        self.send(Kind.TRIAL_STARTED, (number, params, max_epochs, plan))

    def epoch_ended(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        self.send(Kind.EPOCH_ENDED, (number, epoch, metrics))

    def trial_finished(self, record: TrialRecord) -> None:
        self.send(Kind.TRIAL_FINISHED, record)

    def memory_grew(self, fraction: float) -> None:
        self.send(Kind.MEMORY_GREW, fraction)

    def note(self, message: str) -> None:
        pass

    def send(self, kind: Kind, payload: Any) -> None:
        try:
            self.outbox.send(Report(kind, self.worker, payload))
        except (BrokenPipeError, ConnectionResetError):
            # The parent is gone (killed). Raising here would record the running trial as failed
            # with this error; ending at once leaves it running under a dead pid, which the next
            # run marks interrupted, as for a parent killed together with its workers.
            os._exit(3)


def deliver(report: Report, observer: SearchObserver) -> None:
    """Hand a worker's trial event to the parent's observer (search_started and exit reports
    are the supervisor's own business)."""
    if report.kind is Kind.TRIAL_STARTED:
        observer.trial_started(*report.payload)
    elif report.kind is Kind.EPOCH_ENDED:
        observer.epoch_ended(*report.payload)
    elif report.kind is Kind.TRIAL_FINISHED:
        observer.trial_finished(report.payload)
