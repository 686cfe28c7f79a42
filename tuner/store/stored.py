"""What the store reads back from a study database, checked against the kinds tune writes.

The database may be another program's, or a damaged file: a value of the wrong kind would
otherwise fail several modules later (a board that cannot format a loss, an estimate that cannot
add a string). Here it is one line naming the study, the trial and the key (`DamagedRecord`).
A key tune does not write is left alone: an older or newer tune may have written it.
"""

from __future__ import annotations

import contextlib
import math
from typing import Annotated, Any, Iterator

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict, is_typeddict  # pydantic reads typing's TypedDict from Python 3.12 only

from tuner.errors import UserError

_STRICT = ConfigDict(strict=True)  # no "1.5" for a number, no true for a count
Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Figure = float | None  # a loss or an accuracy: NaN is what a diverged trial records


def _a_share(value: float) -> float:
    if not (math.isnan(value) or 0 <= value <= 1):  # an accuracy of 5 printed as 500.00%
        raise ValueError("not between 0 and 1")
    return value


Share = Annotated[float, AfterValidator(_a_share)] | None  # an accuracy; NaN as for a figure
Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]  # an ensemble member's


def _one_length(history: dict[str, list]) -> dict[str, list]:
    if len({len(values) for values in history.values()}) > 1:  # one entry per epoch in every list
        raise ValueError("lists of unequal lengths")
    return history


History = Annotated[dict[str, list[Figure]], AfterValidator(_one_length)]


def _adapters(kinds: dict[str, Any]) -> dict[str, TypeAdapter]:
    # A TypedDict carries its own config (`__pydantic_config__`); pydantic refuses a second one.
    return {key: TypeAdapter(kind) if is_typeddict(kind) else TypeAdapter(kind, config=_STRICT)
            for key, kind in kinds.items()}


VALUE_KINDS = _adapters({"value": Figure})  # a trial's objective value, in Optuna's own table
TRIAL_KINDS = _adapters({
    "params": dict[str, Any],
    "history": History,
    "best_epoch": Count | None,
    "val_loss": Figure,
    "val_accuracy": Share,
    "reason": str | None,
    "seconds": Seconds | None,
    "timings": dict[str, Any],  # each entry checked by `TrialRecord` (an unusable one is left out)
    "seed": int | None,
    "max_epochs": Count | None,
    "val_class_accuracy": list[Share] | None,
    "val_predicted": list[Count] | None,
})


class _Space(TypedDict, total=False):  # what the study's record keeps of its space
    __pydantic_config__ = _STRICT  # type: ignore[misc]

    name: str
    dataset: str
    params: dict[str, Any]
    training: dict[str, Any]
    start: list[dict[str, Any]]


class _Split(TypedDict, total=False):
    __pydantic_config__ = _STRICT  # type: ignore[misc]

    class_names: list[str] | None
    test_fingerprint: str | None


class _Selection(TypedDict, total=False):
    __pydantic_config__ = _STRICT  # type: ignore[misc]

    members: dict[str, Weight]
    metric: str
    val_accuracy: Share
    val_loss: float
    best_trial: int
    candidates: list[int]
    temperatures: dict[str, float]
    flips: dict[str, bool]


class _TestFigures(TypedDict, total=False):
    __pydantic_config__ = _STRICT  # type: ignore[misc]

    accuracy: Share
    loss: float
    per_class_accuracy: dict[str, Share]


class _Evaluation(TypedDict, total=False):
    __pydantic_config__ = _STRICT  # type: ignore[misc]

    when: str
    selection: _Selection
    n_finished: int
    n_test: int
    test: dict[str, _TestFigures]
    files: dict[str, dict[str, Any]] | None


STUDY_KINDS = _adapters({
    "tune": dict[str, Any],
    "evaluations": list[_Evaluation],
    "test_reads": Count,
    "checks": list[Any],
})
META_KINDS = _adapters({  # inside the study's "tune" record
    "engine": str, "sampler": str, "space": _Space, "split": _Split, "format": Count,
})


class DamagedRecord(UserError):
    """A stored value of a kind tune never writes."""


def recorded(meta: dict[str, Any], study: str, key: str) -> dict[str, Any]:
    """The study record's 'space' or 'split' (every study tune makes records both; their kinds
    are checked with the record's other values, `META_KINDS`)."""
    if not isinstance(meta.get(key), dict):
        raise DamagedRecord(f"study {study}'s record has no {key}, which tune always writes; the database was "
                            f"written by another program or is damaged")
    return meta[key]


@contextlib.contextmanager
def reading(where: str) -> Iterator[None]:
    """Around Optuna's own reading of the database: what its records cannot be built from (a
    value that is not JSON, a trial's value that is text, a state that is none of Optuna's) is
    one `DamagedRecord` line too. Errors of the database itself (a locked or full file) pass."""
    try:
        yield
    except (AssertionError, TypeError, ValueError, LookupError) as e:  # JSONDecodeError is a ValueError
        detail = f": {str(e)[:80]}" if str(e) else ""
        raise DamagedRecord(f"{where}: a record Optuna cannot read ({type(e).__name__}{detail}); the "
                            f"database was written by another program or is damaged") from None


def checked(values: dict[str, Any], kinds: dict[str, TypeAdapter], where: str) -> dict[str, Any]:
    """`values` (a record's attributes) as they are, once each key of `kinds` is of its kind."""
    for key, kind in kinds.items():
        if key in values and not _of_kind(values[key], kind):
            raise DamagedRecord(f"{where}: its '{key}' is not what tune writes ({_shown(values[key])}); the "
                                f"database was written by another program or is damaged")
    return values


def _of_kind(value: Any, kind: TypeAdapter) -> bool:
    try:
        kind.validate_python(value)
    except ValidationError:
        return False
    return True


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
