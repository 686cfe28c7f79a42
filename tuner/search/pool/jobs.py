"""How many worker processes a machine can run, and how many a search starts by default."""

from __future__ import annotations

from tuner.check.findings import COST_CHECK
from tuner.config import usable_cores
from tuner.errors import UserError


def check_jobs(jobs: int) -> int:
    """Worker processes beyond the machine's cores only compete for them (and for memory)."""
    cores = usable_cores()
    if jobs > cores:
        raise UserError(f"--jobs {jobs}: this machine runs {cores} at most (its usable cores); "
                        f"start more machines with the same --study to go wider")
    return jobs


# Multiply-adds an image above which, on a CPU, one worker with every core trains faster than two
# one-thread workers together (2 cores, BENCHMARKS.md "Workers that fit the machine": a 18.3M
# CNN 985 images/s alone against 835 for two; 1.5M digits and 0.67M MLP models 7,238 against 10,596
# and 14,202 against 21,611).
ONE_WORKER_MACS = 5e6


def default_jobs(engine: str, reference: dict[str, float] | None = None, trials: int | None = None) -> int:
    """Two workers where the machine has two cores or more. On a GPU one trial compiles or
    validates while the other trains (an H100 was busy 77-82% of a cifar10 search with two); on
    a CPU a small model's trial leaves a core idle in its single-threaded parts (the digits
    quickstart on 2 cores: 1:11 with two, 1:40 with one; BENCHMARKS.md, Quickstart), but a
    convolutional one of more than `ONE_WORKER_MACS` trains faster on every core alone.
    `reference`: the cost check's figures for the space's reference configuration, if it ran.
    One with the KerasTuner engine, which keeps its oracle in one process, and for a search of one
    trial (a second worker would only take a core from it)."""
    if engine != "optuna" or usable_cores() < 2 or (trials is not None and trials < 2):
        return 1
    reference = reference or {}
    if not reference.get("accelerator", 1.0) and reference.get("macs", 0.0) > ONE_WORKER_MACS:
        return 1
    return 2


def reference_cost(findings: list[dict]) -> dict[str, float] | None:
    """The cost check's figures among a study's recorded findings (`tuner.check`), if it has them."""
    return next((f.get("figures") for f in findings if f.get("check") == COST_CHECK and f.get("figures")), None)
