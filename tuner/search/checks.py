"""The checks a new study runs before its first trial (`tuner.check`, what `tune check` runs).
They train, so they run in a process of their own unless the search trains in this one: the
parent of worker processes never imports Keras."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

from tuner.check import Finding, run_checks
from tuner.search.request import SearchRequest


def run_first_checks(request: SearchRequest, on_finding: Callable[[Finding], None]) -> list[Finding]:
    if request.jobs == 1 and not request.isolate:
        return run_checks(request.space, request.data, request.cache_dir, on_finding=on_finding, quick=True)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        findings = pool.submit(run_checks, request.space, request.data, request.cache_dir, quick=True).result()
    for finding in findings:
        on_finding(finding)
    return findings
