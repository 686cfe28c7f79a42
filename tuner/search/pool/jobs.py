"""How many worker processes a machine can run, and how many a search starts by default."""

from __future__ import annotations

import os

from tuner.errors import UserError


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_jobs(jobs: int) -> int:
    """Worker processes beyond the machine's cores only compete for them (and for memory)."""
    cores = usable_cores()
    if jobs > cores:
        raise UserError(f"--jobs {jobs}: this machine runs {cores} at most (its usable cores); "
                        f"start more machines with the same --study to go wider")
    return jobs


def default_jobs(engine: str) -> int:
    """Two workers where the machine has two cores or more. On a GPU one trial compiles or
    validates while the other trains (an H100 was busy 77-82% of a cifar10 search with two); on
    a CPU a small model's trial leaves a core idle in its single-threaded parts (the digits
    quickstart on 2 cores: 1:11 with two, 1:40 with one; BENCHMARKS.md, Quickstart). One with the
    KerasTuner engine, which keeps its oracle in one process."""
    return 2 if engine == "optuna" and usable_cores() >= 2 else 1
