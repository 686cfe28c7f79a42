"""A worker process's own side: its log file, its watch on the parent, its share of the
machine, then the search it was given, ending with one exit report."""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

from tuner import config, interrupts
from tuner.errors import SearchStopped, UserError, describe_fault
from tuner.search.observer import SearchObserver
from tuner.search.pool.messages import ExitReport, ExitStatus, Forward, Kind
from tuner.search.request import SearchRequest
from tuner.store import SearchStore

# target(store, request, observer) -> True when the study is done, False when the worker retired
Target = Callable[[SearchStore, SearchRequest, SearchObserver], bool]
WarmUp = Callable[[SearchRequest], None]  # warm_up(request): a standby worker's slow imports


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process is started with (it must pickle: it is sent to the new process)."""

    target: Target
    warm_up: WarmUp
    storage: tuple[str, Path, bool]  # SearchStore's url, results folder, heartbeat
    request: SearchRequest  # as far as known at its start: its go brings the final one
    worker: int  # its number, in start order
    jobs: int  # how many share the machine
    parent: int  # the parent's pid
    log_path: Path


def worker_main(spec: WorkerSpec, outbox: Connection, go: Connection) -> None:
    """Get ready, wait for `go` (its request, the search's deadline in it), search, report how it
    ended."""
    interrupts.own_group()  # a terminal's Ctrl-C reaches the parent only, which forwards it once
    held = _hold_log()
    interrupts.exit_with_parent(spec.parent)  # its trial is failed by the next run
    config.share_machine(spec.jobs)
    try:
        spec.warm_up(spec.request)
        request = go.recv()
    except EOFError:
        return  # not needed after all (a check failed): it leaves no log
    except BaseException:
        _log_to(spec.log_path, held)  # why its warm-up failed
        raise
    _log_to(spec.log_path, held)
    # The parent's deadline stands, on the machine's one monotonic clock (its start counted, and
    # this worker's imports); the timeout is what is left of it now.
    if request.deadline is not None:
        request = dataclasses.replace(request, timeout=max(request.deadline - time.monotonic(), 0.0))
    os.write(2, f"--- worker pid {os.getpid()} started {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
    forward = Forward(outbox, spec.worker)
    forward.send(Kind.EXIT, _search(spec, request, forward))
    outbox.close()
    # Everything is recorded and reported. Python's own teardown would collect the trials'
    # leftovers first: 50 s after a large trial, beside another worker (BENCHMARKS.md).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _search(spec: WorkerSpec, request: SearchRequest, forward: Forward) -> ExitReport:
    try:
        with interrupts.catching_ctrl_c():
            done = spec.target(SearchStore(*spec.storage), request, forward)
        return ExitReport(ExitStatus.DONE if done else ExitStatus.RETIRED)
    except KeyboardInterrupt:
        return ExitReport(ExitStatus.INTERRUPTED)
    except SearchStopped as e:
        return ExitReport(ExitStatus.STOPPED, str(e))
    except UserError as e:
        return ExitReport(ExitStatus.ERROR, str(e))
    except BaseException as e:
        traceback.print_exc()
        fault = describe_fault(e) if isinstance(e, Exception) else None  # a full disk, a read-only database
        return ExitReport(ExitStatus.STOPPED, fault) if fault else ExitReport(ExitStatus.CRASHED, traceback.format_exc())


def _hold_log() -> Any:
    """Until its go, the worker's stderr goes to an unnamed file: a worker spawned while the checks
    run and never released (a check failed) leaves nothing in the results folder."""
    held = tempfile.TemporaryFile()
    os.dup2(held.fileno(), 2)
    return held


def _log_to(path: Path, held: Any) -> None:
    """The worker's stderr (backend warnings, tracebacks) goes to a log file, beginning with what
    it held before its go: in the terminal it would tear the parent's live view."""
    sys.stderr.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)  # never through a link
    held.seek(0)
    os.write(fd, held.read())
    held.close()
    os.dup2(fd, 2)
    os.close(fd)
