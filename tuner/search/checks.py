"""The checks a new study runs before its first trial (`tuner.check`, what `tune check` runs).
They train, so they run in a process of their own unless the search trains in this one: the
parent of worker processes never imports Keras. Each finding is passed on as it comes, so the
view shows it at once and the search can start its workers while the training checks run. The
checks count toward --timeout: past the deadline they stop, and so does the search, as it does when
they leave too little time for a first trial (`_check_room`)."""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from multiprocessing.connection import Connection
from typing import Callable

from tuner.check import COST_CHECK, Finding, run_checks
from tuner.errors import SearchStopped
from tuner.interrupts import exit_with_parent, own_group, starting_own_group
from tuner.search.pool.processes import start_helper, wait_until_ready
from tuner.search.request import SearchRequest
from tuner.wording import duration, plural

OnFinding = Callable[[Finding], None]


def run_first_checks(request: SearchRequest, on_finding: OnFinding) -> list[Finding]:
    """The quick checks' findings, each told to `on_finding` as it comes. Raises SearchStopped
    once the search's deadline passes, and what the checks raised (bad data: UserError)."""
    told = _until_deadline(request, on_finding)
    if request.jobs == 1 and not request.isolate:
        findings = run_checks(request.space, request.data, request.cache_dir, on_finding=told, quick=True)
    else:
        findings = _in_own_process(request, told)
    _check_room(request, findings)
    return findings


def _in_own_process(request: SearchRequest, told: OnFinding) -> list[Finding]:
    receive, send = multiprocessing.Pipe(duplex=False)  # a pipe is the same for every start method
    wait_until_ready(request.deadline)  # with signals live: the start below holds them
    _check_deadline(request, 0)
    with starting_own_group():
        process = start_helper(_checks_process, (request, send, os.getpid()), "tune-checks")
    send.close()  # the child holds the only write end: its end reads as end of file here
    try:
        return _receive(receive, told, request)
    finally:  # a result, an error, Ctrl-C or the deadline: the process ends with the checks
        process.kill()
        process.join()
        receive.close()


def _until_deadline(request: SearchRequest, on_finding: OnFinding) -> OnFinding:
    done: list[Finding] = []

    def told(finding: Finding) -> None:
        done.append(finding)
        on_finding(finding)
        _check_deadline(request, len(done))

    return told


def _check_deadline(request: SearchRequest, done: int) -> None:
    if request.deadline is not None and time.monotonic() >= request.deadline:
        raise SearchStopped(f"--timeout {request.timeout:g} s passed during the checks before the first trial "
                            f"({plural(done, 'check')} done); give it more time, or skip them with --no-check; nothing was searched")


# From the checks' end to the first trial's plan: the study opened, the data loaded in the parent
# and again in each worker. 4-6 s measured on the 2-core CPU (digits, 2 workers); twice that.
SEARCH_START_SECONDS = 10.0


def _check_room(request: SearchRequest, findings: list[Finding]) -> None:
    """Stop when the time the checks left cannot hold the first trial: the search's start, the
    trial's estimated start-up and one epoch of the reference configuration, or the least subset
    of a long one (`tuner.search.budget`; the cost check's figures). Started anyway, the search
    would set every proposal aside in an empty study."""
    from tuner.search.budget import least_first_trial

    figures = next((f.figures for f in findings if f.check == COST_CHECK and "epoch_seconds" in f.figures), None)
    if request.deadline is None or figures is None:
        return
    left = request.deadline - time.monotonic()
    needed = SEARCH_START_SECONDS + least_first_trial(figures["fixed_seconds"], figures["epoch_seconds"],
                                                      figures.get("validation_seconds", 0.0),
                                                      request.space.training.max_epochs, left - SEARCH_START_SECONDS)
    if left < needed:
        raise SearchStopped(f"--timeout {request.timeout:g} s: {duration(max(left, 0.0))} left after the checks, less "
                            f"than a first trial's estimated {duration(needed)} (the search's start, the trial's and "
                            f"one epoch of the reference configuration, or a part of a long one); give it more time, "
                            f"or skip the checks with --no-check; nothing was searched")


def _receive(receive: Connection, told: OnFinding, request: SearchRequest) -> list[Finding]:
    done = 0
    while True:
        wait = None if request.deadline is None else max(request.deadline - time.monotonic(), 0.0)
        if not receive.poll(wait):
            _check_deadline(request, done)
            continue
        try:
            kind, value = receive.recv()
        except EOFError:
            raise SearchStopped("the checks' process ended before its result (killed? out of memory?); "
                                "--no-check skips the checks") from None
        if kind == "raised":
            raise value
        if kind == "done":
            return value
        done += 1
        told(value)


def _checks_process(request: SearchRequest, send: Connection, parent: int) -> None:
    own_group()  # a terminal's Ctrl-C reaches the parent only, which ends this process
    exit_with_parent(parent)
    try:
        findings = run_checks(request.space, request.data, request.cache_dir, quick=True,
                              on_finding=lambda finding: _send(send, ("finding", finding)))
    except Exception as e:
        _send_error(send, e)
    else:
        _send(send, ("done", findings))


def _send_error(send: Connection, error: Exception) -> None:
    try:
        _send(send, ("raised", error))
    except Exception:  # it does not pickle: its text, with where it came from
        _send(send, ("raised", RuntimeError(f"in the checks: {traceback.format_exc()}")))


def _send(send: Connection, message: tuple) -> None:
    try:
        send.send(message)
    except (BrokenPipeError, EOFError):  # the parent is gone (SIGTERM, killed): nothing to tell, no one to tell it
        os._exit(3)
