"""Trials in worker processes.

`--jobs N` runs N worker processes on one study at once. They cooperate through the store
exactly as workers on several machines do, so on one GPU one trial compiles while another
trains. A worker also retires, and a fresh process takes its slot, once its resident memory
grew by `RETIRE_GROWTH` (`spawner`) over what it was after its first trial: TensorFlow keeps every traced
trial's graphs for the life of its process (tensorflow/tensorflow#61791), so on that backend
even one job trains in a worker. A worker that dies (out of host memory, a crash in native
code) costs its running trial only; another takes its place.

The parent never imports Keras. It shows what its workers report, forwards Ctrl-C to them
once per press (they run in their own process group) and turns their exit reports back into
the errors an in-process search raises. Each worker reports through a pipe of its own: a worker
killed while it writes (the out-of-memory killer's SIGKILL) must not hold a lock that the others'
reports wait on, as one shared multiprocessing.Queue's writer lock would.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from tuner import interrupts
from tuner.errors import SearchStopped, UserError
from tuner.search.observer import SearchObserver
from tuner.search.pool.inboxes import Inboxes
from tuner.search.pool.messages import ExitReport, ExitStatus, Kind, Report, deliver
from tuner.search.pool.spawner import Spawner
from tuner.search.request import SearchRequest
from tuner.search.runner import fail_own_trials
from tuner.store import SearchStore

STOP_WAIT_SECONDS = 30.0  # after a second Ctrl-C: time for workers to record their trial
POLL_SECONDS = 0.5


def run_workers(store: SearchStore, request: SearchRequest, observer: SearchObserver, spawner: Spawner) -> None:
    """Run the spawner's target in `request.jobs` worker processes until the study is done. Raises
    KeyboardInterrupt after Ctrl-C, SearchStopped or UserError as a worker reported it."""
    Supervisor(store, request, observer, spawner).run()


class CrashCount:
    """Workers that died in a row, without a trial finishing in between: past the limit, the
    search stops (a space whose trials kill their process would otherwise loop for ever)."""

    def __init__(self, limit: int):
        self.limit, self.count = limit, 0

    def trial_finished(self) -> None:
        self.count = 0

    def died(self) -> bool:
        """Count one; True when that was one too many."""
        self.count += 1
        return self.count >= self.limit


class Supervisor:
    """Keeps `jobs` workers running until the study is done: replaces the ones that retire or
    die, stops them all on a fatal report or a signal, and fails what they left running."""

    def __init__(self, store: SearchStore, request: SearchRequest, observer: SearchObserver, spawner: Spawner):
        self.store, self.request, self.observer, self.spawner = store, request, observer, spawner
        self.inboxes = Inboxes(self._dispatch)
        self.workers: dict[int, Any] = {}  # worker number -> its running process
        self.reports: dict[int, ExitReport] = {}  # worker -> how it said it ended
        self.deadline = request.deadline
        self.announced = False
        self.crashes = CrashCount(request.max_failures)
        self.fatal: Exception | None = None
        self.forwarded = False
        self.next_reap = 0.0
        self.pids: set[int] = set()  # of every worker started: their trials are failed if left running
        self.growing: set[int] = set()  # workers halfway to retiring: a standby is kept while there are any

    def run(self) -> None:
        try:
            for _ in range(self.request.jobs):
                self._start()
            while self.workers:
                self._step()
        except KeyboardInterrupt as e:
            # Their second Ctrl-C, or SIGTERM passed on: they fail their running trial now.
            self._signal(signal.SIGTERM if interrupts.ended_by_signal(interrupts.cause(e)) else interrupts.STOP_NOW)
            raise
        finally:
            self._wait_or_kill()
            fail_own_trials(self.store, self.request.study, self.pids)
        if self.fatal is not None:
            raise self.fatal
        if interrupts.requested():
            raise KeyboardInterrupt

    def log_path(self, worker: int) -> Path:
        return self.spawner.log_path(worker)

    def _step(self) -> None:
        if interrupts.requested() and not self.forwarded:
            self.forwarded = True
            self._signal(signal.SIGINT)
        self.inboxes.receive_ready(POLL_SECONDS)
        if time.monotonic() >= self.next_reap:  # also while busy workers report without pause
            self.next_reap = time.monotonic() + POLL_SECONDS
            self._reap()

    def _start(self) -> None:
        launch = self.spawner.take()
        self.inboxes.add(launch.number, launch.inbox)
        self.spawner.release(launch)
        self.workers[launch.number] = launch.process
        self.pids.add(launch.process.pid)
        self._ready_a_standby()

    def _ready_a_standby(self) -> None:
        """Only for a worker that may retire soon: a standby imports for seconds, beside the
        workers' own start and training (on two cores, every search's start paid for one that a
        short search never used)."""
        if self.growing and self._may_continue():
            self.spawner.keep_standby()

    def _dispatch(self, report: Report) -> None:
        if report.kind is Kind.EXIT:
            self.reports[report.worker] = report.payload
        elif report.kind is Kind.MEMORY_GREW:
            self.growing.add(report.worker)
            self._ready_a_standby()
        elif report.kind is Kind.SEARCH_STARTED:
            if not self.announced:
                self.announced = True
                self.observer.search_started({**report.payload, "jobs": str(self.request.jobs)})
        else:
            if report.kind is Kind.TRIAL_FINISHED:
                self.crashes.trial_finished()
            deliver(report, self.observer)

    def _reap(self) -> None:
        for worker, process in list(self.workers.items()):
            if process.is_alive():
                continue
            process.join()
            self.inboxes.drain(worker)  # its last reports may still be in the pipe
            del self.workers[worker]
            self.growing.discard(worker)
            self._after_exit(worker, self.reports.pop(worker, None), process.exitcode)

    def _after_exit(self, worker: int, report: ExitReport | None, exitcode: int | None) -> None:
        report = report or ExitReport(ExitStatus.DIED, f"exit code {exitcode}")
        status, message = report.status, report.message
        if status in (ExitStatus.DONE, ExitStatus.INTERRUPTED):
            return
        if status is ExitStatus.STOPPED:
            return self._fail(SearchStopped(message))
        if status is ExitStatus.ERROR:
            return self._fail(UserError(message))
        if status is not ExitStatus.RETIRED and not interrupts.requested():
            last = message.strip().splitlines()[-1] if message.strip() else "no message"
            self.observer.note(f"worker {worker} ended unexpectedly ({last}); its running trial is marked failed"
                               f"; log: {self.log_path(worker)}")
            if self.crashes.died():
                return self._fail(SearchStopped(f"{self.crashes.count} worker processes died in a row; stopping"))
        if self._may_continue():
            self._start()

    def _may_continue(self) -> bool:
        late = self.deadline is not None and time.monotonic() >= self.deadline
        return self.fatal is None and not interrupts.requested() and not late

    def _fail(self, error: Exception) -> None:
        if self.fatal is None:
            self.fatal = error
            self._signal(signal.SIGINT)  # the others stop at their epoch's end

    def _signal(self, signum: int) -> None:
        for process in self.workers.values():
            if process.is_alive() and process.pid is not None:
                try:
                    os.kill(process.pid, signum)
                except ProcessLookupError:
                    pass

    def _wait_or_kill(self) -> None:
        self.spawner.close()
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while any(p.is_alive() for p in self.workers.values()) and time.monotonic() < deadline:
            self.inboxes.receive_ready(0.1)  # a worker blocked on a full pipe could not end
        for process in self.workers.values():
            if process.is_alive():
                process.kill()  # its trial is failed later: its pid is gone (tuner.store.workers)
            process.join()
