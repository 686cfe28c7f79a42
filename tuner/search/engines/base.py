"""`BaseEngine`: what to try next. An engine maps a space to its own parameters, asks its
sampler for a parameter dict, hands the dict to the shared `TrialRunner` and records the
result in the store. Engines differ in nothing else: model, data and training are shared."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from tuner.search.runner import TrialRunner
from tuner.space.schema import Space
from tuner.store.search_store import SearchStore


class BaseEngine(ABC):
    name: ClassVar[str]

    def __init__(self, runner: TrialRunner, sampler: str, pruner: str, seed: int | None):
        self.runner = runner
        self.ctx = runner.ctx
        self.sampler = sampler
        self.pruner = pruner
        self.seed = seed

    @classmethod
    def queue_start_points(cls, store: SearchStore, study_name: str, space: Space) -> None:
        """Before any trial of a new study: make the space's start points its first trials.
        Runs once per process that opens the study (the parent first, with --jobs), so an
        engine must do nothing when the study already has trials. Default: nothing to queue."""

    @abstractmethod
    def search(self, n_trials: int, timeout: float | None) -> None:
        """Run trials until the study holds `n_trials` finished ones, or no new trial may start
        after `timeout` seconds, or the runner is retiring its process. Raises SearchStopped on
        a fatal condition."""
