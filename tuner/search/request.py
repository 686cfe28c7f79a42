"""`SearchRequest`: everything one search was asked to do, and what its study records of it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tuner import __version__, config
from tuner.data import SplitInfo
from tuner.space.schema import Space


@dataclass(frozen=True)
class SearchRequest:
    space: Space
    study: str
    n_trials: int
    engine: str = "optuna"
    sampler: str | None = None
    pruner: str | None = None
    timeout: float | None = None  # seconds: then no trial starts and running ones stop after their current step
    data: Path | None = None
    cache_dir: Path = field(default_factory=config.cache_dir)  # $TUNE_CACHE_DIR, else ~/.cache/tune
    seed: int | None = None  # the sampler's; the split's seed is the space's
    keep_models: int = 10
    max_failures: int = 5
    precision: str = "auto"
    jobs: int = 1  # worker processes sharing the study (and the accelerator)
    isolate: bool = False  # train in a worker process even with one job (see tuner.search.pool.supervisor)
    retire_growth: float | None = None  # in a worker: retire after this memory growth
    trial_timeout: float | None = None  # seconds one trial may train: it stops after its current step past them
    # time.monotonic() at which the search ends (the command's start + timeout): one clock for
    # the parent and its workers on this machine, so data loading and start-up count too.
    deadline: float | None = None
    started: float = field(default_factory=time.monotonic)  # the command's start, on that clock (kept by workers)
    checks: tuple[dict, ...] = ()  # the findings of the checks a new study ran first (`tuner.check`), recorded with it

    def __post_init__(self) -> None:
        if self.timeout is not None and self.deadline is None:
            object.__setattr__(self, "deadline", time.monotonic() + self.timeout)


def study_meta(request: SearchRequest, sampler: str, pruner: str, split: SplitInfo) -> dict:
    """What the study records about itself; a resume must match engine, space and split."""
    space = request.space
    return {"engine": request.engine, "sampler": sampler, "pruner": pruner, "dataset": space.dataset,
            "space_name": space.name, "space": space.to_dict(), "space_fingerprint": space.fingerprint(),
            "split": split.to_dict(), "tune_version": __version__}
