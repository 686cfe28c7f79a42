"""What every part of a running search shares: the study and its data (`SearchContext`), and
what an engine hands the runner (`Proposal`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from tuner.data import SearchData
from tuner.search.observer import SearchObserver
from tuner.space.schema import Space
from tuner.store import SearchStore


@dataclass
class SearchContext:
    store: SearchStore
    study: str
    space: Space
    data: SearchData
    observer: SearchObserver
    keep_models: int = 10  # model files kept for the best K trials (the ensemble's candidates)
    max_failures: int = 5  # consecutive failed trials that stop the search
    # A worker process retires (to be replaced by a fresh one) once its resident memory grew by
    # this fraction over what it was after its first trial; None in a process that stays.
    retire_growth: float | None = None
    deadline: float | None = None  # time.monotonic() of the search's end (--timeout), in this process
    first_result_by: float | None = None  # time.monotonic() by which a deadline's first trial should end
    trial_timeout: float | None = None  # seconds a trial may train (--trial-timeout)
    device: str = "cpu"  # what trains here ("cpu", "gpu", "tpu"): what a trial's cost is first assumed from
    n_trials: int = 1_000_000  # the finished trials the study is searched to (--trials)


def _never(epoch: int, val_accuracy: float) -> bool:
    return False


@dataclass(frozen=True)
class Proposal:
    """A trial an engine wants run: its number (already reserved in the study), its complete
    parameters, its epoch budget, and the pruner's say after each epoch."""

    number: int
    params: dict[str, Any]
    max_epochs: int | None = None  # None: the space's
    should_prune: Callable[[int, float], bool] = field(default=_never)  # (epoch, val accuracy) -> stop now?
    engine_state: Any = None  # what the engine needs back in `tell` (its own trial object)
    # The fewest epochs worth starting it on: a start point run again after a run cut for the first
    # result must train more than that run did, else it is the same trial twice.
    least_epochs: int = 1
    # A start point run again after a run cut short (its known-good configuration): it starts on any
    # epochs past `least_epochs` that fit, where a sampler's draw needs a third of its schedule.
    rerun: bool = False
    # A start point's run right after its run cut for the first result: it may first train to the
    # second result's mark (`tuner.search.budget.second_mark`).
    after_first_result: bool = False
