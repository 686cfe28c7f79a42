"""How one trial runs, whichever engine chose its parameters.

`TrialRunner.run` trains a complete parameter dict, writes its artifacts, keeps the model only
while it ranks in the top K, frees the backend's memory, and returns a `TrialRecord`. The
engine writes the record into its own bookkeeping and the store, then calls `finish`.
"""

from __future__ import annotations

import ctypes
import gc
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Protocol

from tuner import interrupts
from tuner.data import SearchData
from tuner.errors import SearchStopped, TrialFailed, TrialPruned
from tuner.space.schema import Space
from tuner.store.search_store import SearchStore, TrialRecord

Report = Callable[[int, float], None]  # (epoch, val_accuracy); may raise TrialPruned


class SearchObserver(Protocol):
    """What the terminal (or a test) is told while a search runs."""

    def search_started(self, setup: dict[str, str]) -> None: ...
    def trial_started(self, number: int, params: dict[str, Any], max_epochs: int) -> None: ...
    def epoch_ended(self, number: int, epoch: int, metrics: dict[str, float]) -> None: ...
    def trial_finished(self, record: TrialRecord) -> None: ...
    def note(self, message: str) -> None: ...


class QuietObserver:
    def search_started(self, setup: dict[str, str]) -> None:
        pass

    def trial_started(self, number: int, params: dict[str, Any], max_epochs: int) -> None:
        pass

    def epoch_ended(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def trial_finished(self, record: TrialRecord) -> None:
        pass

    def note(self, message: str) -> None:
        pass


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


class TrialRunner:
    def __init__(self, ctx: SearchContext):
        self.ctx = ctx
        self.consecutive_failures = 0
        self.first_rss: int | None = None
        self.retiring = False  # engines start no new trial once this is set

    def trial_seed(self, number: int) -> int:
        return self.ctx.space.training.seed * 100_003 + number

    def run(self, number: int, params: dict[str, Any], report: Report | None = None,
            max_epochs: int | None = None) -> TrialRecord:
        """Train and record artifacts; never raises for a failed or pruned trial."""
        from tuner.training.fit import train_trial  # imports Keras: only when a trial really runs

        interrupts.check()
        ctx, seed = self.ctx, self.trial_seed(number)
        epochs = max_epochs or ctx.space.training.max_epochs
        ctx.observer.trial_started(number, params, epochs)
        start = time.perf_counter()

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            ctx.observer.epoch_ended(number, epoch, metrics)
            if report is not None:
                report(epoch, metrics["val_accuracy"])

        base = TrialRecord(number=number, state="failed", value=None, params=params, seed=seed, max_epochs=epochs)
        try:
            result = train_trial(params, ctx.data, max_epochs=epochs, patience=ctx.space.training.patience,
                                 seed=seed, on_epoch=on_epoch)
        except TrialPruned as e:
            hist = getattr(e, "history", {})
            record = replace(base, state="pruned", value=(hist.get("val_accuracy") or [None])[-1], history=hist,
                             timings=getattr(e, "timings", {}))
        except TrialFailed as e:
            record = replace(base, reason=str(e), history=getattr(e, "history", {}), timings=getattr(e, "timings", {}))
        else:
            record = replace(base, state="complete", value=result.val_accuracy, history=result.history,
                             best_epoch=result.best_epoch, val_loss=result.val_loss, timings=result.timings)
            if ctx.store.ranks_in_top(ctx.study, result.val_accuracy, ctx.keep_models):
                ctx.store.save_model(ctx.study, number, result.model)
            ctx.store.save_trial_files(ctx.study, record, result.val_views)
            del result
        record = replace(record, seconds=time.perf_counter() - start)
        if record.state != "complete":
            ctx.store.save_trial_files(ctx.study, record, None)
        free_memory()
        return record

    def finish(self, record: TrialRecord) -> None:
        """After the engine recorded `record`: bound the disk, tell the observer, count failures."""
        self.ctx.store.keep_models_of_top(self.ctx.study, self.ctx.keep_models)
        self.ctx.observer.trial_finished(record)
        self.consecutive_failures = self.consecutive_failures + 1 if record.state == "failed" else 0
        self._check_memory()
        if self.consecutive_failures >= self.ctx.max_failures:
            raise SearchStopped(f"{self.consecutive_failures} trials failed in a row (last: {record.reason}); "
                                f"stopping. Check the space or raise --max-failures")

    def _check_memory(self) -> None:
        if self.ctx.retire_growth is None:
            return
        rss = resident_bytes()
        if self.first_rss is None:
            self.first_rss = rss
        self.retiring = rss > self.first_rss * (1 + self.ctx.retire_growth)


def resident_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def free_memory() -> None:
    """Drop the trial's graphs, models and compiled programs, and hand freed heap back to the
    OS: memory stays flat over hundreds of trials."""
    import keras

    keras.backend.clear_session(free_memory=False)  # its gc.collect() is the one below, once
    if keras.backend.backend() == "jax":
        import jax

        jax.clear_caches()  # compiled executables of earlier trials' models
    gc.collect()
    _trim_heap()


def _trim_heap() -> None:
    """glibc keeps freed memory in its arenas; malloc_trim returns it (a no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def fail_own_trials(store: SearchStore, study: str, pids: set[int]) -> None:
    """Best effort: a database that cannot be written now (a full disk) is told by the next run,
    which fails a trial whose process is gone."""
    try:
        store.fail_running_of(study, pids, "interrupted: the search stopped before it ended")
    except Exception:
        pass
