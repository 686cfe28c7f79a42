"""What a search optimizes: the space's `training.objective`, with the validation figure it
names and its direction. The samplers, the pruner, the leaderboard's ranking, the models kept
and the ensemble's candidates all follow it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Objective:
    name: str  # as a space file writes it
    metric: str  # the per-epoch history key, and the name Optuna's tools show
    maximize: bool
    label: str  # a column heading

    def out_of_range(self, value: float) -> bool:
        """Whether no trial can score `value` (NaN, a failed figure, is in range)."""
        return value < 0 or (self.maximize and value > 1)  # accuracies are shares; a log loss is >= 0

    def rank_key(self, value: float) -> float:
        """Smaller is better: a sort key for trial values."""
        return -value if self.maximize else value


OBJECTIVES = {
    "accuracy": Objective("accuracy", "val_accuracy", True, "val acc"),
    "balanced_accuracy": Objective("balanced_accuracy", "val_balanced_accuracy", True, "val bal acc"),
    "log_loss": Objective("log_loss", "val_loss", False, "val loss"),
}
DEFAULT = "accuracy"


def objective_of(space: dict[str, Any] | None) -> Objective:
    """The objective a stored space (a study's record) names; an older study's is accuracy."""
    name = ((space or {}).get("training") or {}).get("objective", DEFAULT)
    return OBJECTIVES.get(name, OBJECTIVES[DEFAULT])
