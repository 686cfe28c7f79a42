"""The checks a new study runs before its first trial (`tuner.check`, what `tune check` runs).
They train, so they run in a process of their own unless the search trains in this one: the
parent of worker processes never imports Keras. Each finding is passed on as it comes, so the
view shows it at once and the search can start its workers while the training checks run."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor, wait
from typing import Any, Callable

from tuner.check import Finding, run_checks
from tuner.search.request import SearchRequest

POLL_SECONDS = 0.1
_outbox: Any = None  # in the checks' process: where its findings go as they come


def run_first_checks(request: SearchRequest, on_finding: Callable[[Finding], None]) -> list[Finding]:
    if request.jobs == 1 and not request.isolate:
        return run_checks(request.space, request.data, request.cache_dir, on_finding=on_finding, quick=True)
    context = multiprocessing.get_context("spawn")
    findings = context.SimpleQueue()
    with ProcessPoolExecutor(1, mp_context=context, initializer=_send_to, initargs=(findings,)) as pool:
        done = pool.submit(_checks_sent, request)
        _pass_on(findings, done, on_finding)
        return done.result()  # an error there (bad data, its process killed) is raised here


def _pass_on(findings: Any, done: Future, on_finding: Callable[[Finding], None]) -> None:
    """Each finding to `on_finding` as it comes, until the checks' process has finished."""
    while not (done.done() and findings.empty()):
        if findings.empty():
            wait([done], POLL_SECONDS)
        else:
            on_finding(findings.get())


def _send_to(findings: Any) -> None:
    global _outbox
    _outbox = findings


def _checks_sent(request: SearchRequest) -> list[Finding]:
    return run_checks(request.space, request.data, request.cache_dir, on_finding=_outbox.put, quick=True)
