"""What the store keeps, as typed records: a trial's state and record, a study's summary, and
one test-set evaluation. Records are immutable; JSON is how they are written."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from tuner.store import migrate


class TrialState(str, Enum):
    """A trial's state; the values are what the terminal and the JSON outputs show."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"
    RUNNING = "running"
    WAITING = "waiting"  # queued (a start point), not started yet

    @property
    def finished(self) -> bool:
        """Counts toward `--trials N`: a pruned trial finished its (shortened) budget."""
        return self in (TrialState.COMPLETE, TrialState.PRUNED)

    @classmethod
    def of_optuna(cls, name: str) -> "TrialState":
        return cls.FAILED if name == "FAIL" else cls[name]

    def optuna_name(self) -> str:
        return "FAIL" if self is TrialState.FAILED else self.name


_MOST = 1e15  # past any timing or count a trial records (seconds in 30 million years); sums of more overflow


def _counts(stored: Any) -> dict[str, float]:
    """The entries of `stored` that are non-negative numbers below `_MOST`, as floats."""
    if not isinstance(stored, dict):
        return {}
    return {k: float(v) for k, v in stored.items() if isinstance(k, str) and type(v) in (int, float) and 0 <= v < _MOST}


@dataclass(frozen=True)
class TrialRecord:
    """A trial as the store keeps it; finished ones never change."""

    number: int
    state: TrialState
    value: float | None  # the space's objective at the best epoch (last reported, if pruned)
    params: dict[str, Any]
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None  # plain accuracy, whatever the objective (with test-time flips if asked)
    reason: str | None = None  # why it failed, or why it was cut short (a deadline)
    seconds: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    seed: int | None = None  # the training seed: with params and max_epochs, enough to run the trial again
    max_epochs: int | None = None  # the epochs it was given (its schedule's length); None: the space's
    started: dt.datetime | None = None
    # At the best epoch, per class in the model's output order: accuracy (None: no validation
    # image of it) and how many validation images it was predicted for (0: never predicted).
    val_class_accuracy: list[float | None] | None = None
    val_predicted: list[int] | None = None
    # Running, but its process on this machine has ended (killed with its search): the next search fails it.
    process_ended: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", TrialState(self.state))  # 'complete' (from JSON) is COMPLETE
        # Read from a database another program or a damaged file may have written: one unusable
        # figure would otherwise fail every later trial's time estimate.
        object.__setattr__(self, "timings", _counts(self.timings))

    @property
    def epochs(self) -> int:
        return len(self.history.get("val_loss", []))

    @property
    def finished(self) -> bool:
        return self.state.finished

    @property
    def ranks(self) -> bool:
        """Competes for the leaderboard, the models kept and the ensemble: complete, or cut short
        by a deadline with its best epoch's figures (a pruner's trial has no best epoch)."""
        done = self.state is TrialState.COMPLETE or self.state is TrialState.PRUNED and self.best_epoch is not None
        return done and self.value is not None

    @property
    def val_balanced_accuracy(self) -> float | None:
        """The mean of the per-class accuracies at the best epoch."""
        known = [a for a in self.val_class_accuracy or [] if a is not None]
        return sum(known) / len(known) if known else _at_best(self.history.get("val_balanced_accuracy"), self.best_epoch)

    def never_predicted(self) -> list[int]:
        """Classes with validation images that this trial predicted for none of them."""
        acc = self.val_class_accuracy or []
        return [c for c, n in enumerate(self.val_predicted or []) if n == 0 and c < len(acc) and acc[c] is not None]

    def user_attrs(self) -> dict[str, Any]:
        """What the store writes into Optuna's storage for this trial."""
        keys = ("params", "history", "best_epoch", "val_loss", "val_accuracy", "reason", "seconds", "timings", "seed", "max_epochs",
                "val_class_accuracy", "val_predicted")
        return {k: getattr(self, k) for k in keys if getattr(self, k) not in (None, {}, [])}


@dataclass(frozen=True)
class StudyInfo:
    name: str
    meta: dict[str, Any]  # engine, sampler, space, split, created, format
    counts: dict[str, int]  # by TrialState value
    best_value: float | None


@dataclass(frozen=True)
class Selection:
    """The ensemble chosen on validation data: members, weights, and how each is applied."""

    members: dict[int, float]  # trial number -> weight (sums to 1)
    metric: str
    val_accuracy: float
    val_loss: float
    best_trial: int
    best_val_accuracy: float
    best_val_loss: float
    candidates: list[int]
    temperatures: dict[int, float] = field(default_factory=dict)  # trial number -> T (1: as trained)
    flips: dict[int, bool] = field(default_factory=dict)  # trial number -> averaged with its mirror images
    val_balanced_accuracy: float | None = None  # None in an older study's evaluations
    best_val_balanced_accuracy: float | None = None


@dataclass(frozen=True)
class FileEntry:
    """One file a record names: its path inside the study folder and its checksum."""

    path: str
    sha256: str


@dataclass(frozen=True)
class Evaluation:
    """One evaluation on the held-out test split; each is kept, none is overwritten."""

    when: str
    selection: Selection
    n_finished: int  # finished trials when it was made
    n_test: int
    test: dict[str, dict[str, Any]]  # 'ensemble', 'best' and, after a refit, 'refit': accuracy, loss, per class
    files: dict[str, FileEntry]  # 'model.keras', 'best_trial.keras', ...
    refit: dict[str, Any] | None = None
    class_names: list[str] | None = None  # in the models' output order; None in an older study's evaluations
    test_reads: int | None = None  # the study's reads of its test split so far, this one included

    @property
    def gain(self) -> float:
        """The ensemble's test accuracy over the single best trial's."""
        return self.test["ensemble"]["accuracy"] - self.test["best"]["accuracy"]

    @property
    def refit_gain(self) -> float | None:
        return self.test["refit"]["accuracy"] - self.test["ensemble"]["accuracy"] if "refit" in self.test else None

    @property
    def final(self) -> str:
        """Which test result is the exported model.keras: 'refit' or 'ensemble'."""
        return "refit" if "refit" in self.test else "ensemble"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(gain=self.gain, refit_gain=self.refit_gain)  # for readers of the raw JSON
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Evaluation":
        data = migrate.evaluation(data)
        selection = Selection(**{k: _int_keys(v) if isinstance(v, dict) else v for k, v in data["selection"].items()})
        _trial_number(selection.best_trial)
        for number in selection.candidates:
            _trial_number(number)
        if not selection.members:
            raise ValueError("an ensemble of no members")
        files = {name: FileEntry(**entry) for name, entry in data["files"].items()}
        return cls(data["when"], selection, data["n_finished"], data["n_test"], data["test"], files, data.get("refit"),
                   data.get("class_names"), data.get("test_reads"))


def _at_best(values: list[float] | None, best_epoch: int | None) -> float | None:
    """A per-epoch figure at the best epoch, or the last one reported (a pruned trial)."""
    if not values:
        return None
    return values[best_epoch] if best_epoch is not None and best_epoch < len(values) else values[-1]


def _int_keys(mapping: dict[Any, Any]) -> dict[int, Any]:
    """JSON made the trial numbers strings; they are ints again. Any other key is not a trial
    number tune wrote (`0/../../x` would reach a path): ValueError."""
    return {_trial_number(k): v for k, v in mapping.items()}


def _trial_number(key: Any) -> int:
    if isinstance(key, int) and not isinstance(key, bool) and key >= 0:
        return key
    if isinstance(key, str) and key.isascii() and key.isdigit():
        return int(key)
    raise ValueError(f"a trial number reads {str(key)[:40]!r}")
