"""A search's worker count and its workers' early start. How many workers a search runs depends on
what a trial of its space costs (`tuner.search.pool.jobs`), which the checks measure before their
training steps; the workers start as soon as that is known, so their imports (seconds of
TensorFlow) overlap the training checks instead of following them."""

from __future__ import annotations

from dataclasses import replace

from tuner.check import COST_CHECK, Finding
from tuner.search.pool.jobs import check_jobs, default_jobs, reference_cost
from tuner.search.pool.spawner import Spawner
from tuner.search.request import SearchRequest
from tuner.search.run import start_workers
from tuner.store import SearchStore


class EarlyWorkers:
    """Told each check's finding as it comes (`found`); `final` gives the search's request with its
    jobs, and `spawner` the workers started for it, if any. `close` ends them if the search does
    not start (a check failed, Ctrl-C)."""

    def __init__(self, store: SearchStore, request: SearchRequest, jobs_fixed: bool):
        self.store, self.request, self.jobs_fixed = store, request, jobs_fixed
        self.spawner: Spawner | None = None

    def found(self, finding: Finding) -> None:
        if finding.check == COST_CHECK and self.spawner is None:
            self.request = self._sized(self.request, finding.figures or None)
            self.spawner = start_workers(self.store, self.request)

    def final(self, request: SearchRequest, recorded: list[dict]) -> SearchRequest:
        """`request` (the checks' findings added) with its jobs: those the early workers were
        started for, else by the cost among the `recorded` findings (a resumed study's)."""
        if self.spawner is not None:
            return replace(request, jobs=self.request.jobs)
        return self._sized(request, reference_cost(recorded))

    def close(self) -> None:
        if self.spawner is not None:
            self.spawner.close()

    def _sized(self, request: SearchRequest, reference: dict[str, float] | None) -> SearchRequest:
        if self.jobs_fixed:
            return request
        return replace(request, jobs=check_jobs(default_jobs(request.engine, reference, request.n_trials)))
