"""What the terminal (or a test) is told while a search runs."""

from __future__ import annotations

from typing import Any, Protocol

from tuner.store import TrialRecord


class SearchObserver(Protocol):
    def search_started(self, setup: dict[str, str]) -> None: ...
    # `plan`: its epochs as planned, what they are estimated to cost, why fewer than asked
    # (`tuner.search.budget.Plan`); None when it ended before its model was built
    def trial_started(self, number: int, params: dict[str, Any], max_epochs: int, plan: Any = None) -> None: ...
    def epoch_ended(self, number: int, epoch: int, metrics: dict[str, float]) -> None: ...
    def trial_finished(self, record: TrialRecord) -> None: ...
    # A worker's memory grew past half of what retires it (`tuner.search.pool`): a standby is readied.
    def memory_grew(self, fraction: float) -> None: ...
    def note(self, message: str) -> None: ...


class QuietObserver:
    def search_started(self, setup: dict[str, str]) -> None:
        pass

    def trial_started(self, number: int, params: dict[str, Any], max_epochs: int, plan: Any = None) -> None:
        pass

    def epoch_ended(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def trial_finished(self, record: TrialRecord) -> None:
        pass

    def memory_grew(self, fraction: float) -> None:
        pass

    def note(self, message: str) -> None:
        pass
