"""What the store reads back from a study database, checked against the kinds tune writes.

The database may be another program's, or a damaged file: a value of the wrong kind would
otherwise fail several modules later (a board that cannot format a loss, an estimate that cannot
add a string). Here it is one line naming the study, the trial and the key (`DamagedRecord`).
A key tune does not write is left alone: an older or newer tune may have written it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from tuner.errors import UserError

_STRICT = ConfigDict(strict=True)  # no "1.5" for a number, no true for a count
Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Figure = float | None  # a loss or an accuracy: NaN is what a diverged trial records


def _adapters(kinds: dict[str, Any]) -> dict[str, TypeAdapter]:
    return {key: TypeAdapter(kind, config=_STRICT) for key, kind in kinds.items()}


TRIAL_KINDS = _adapters({
    "params": dict[str, Any],
    "history": dict[str, list[Figure]],
    "best_epoch": Count | None,
    "val_loss": Figure,
    "val_accuracy": Figure,
    "reason": str | None,
    "seconds": Seconds | None,
    "timings": dict[str, Any],  # each entry checked by `TrialRecord` (an unusable one is left out)
    "seed": int | None,
    "max_epochs": Count | None,
    "val_class_accuracy": list[Figure] | None,
    "val_predicted": list[Count] | None,
})
STUDY_KINDS = _adapters({
    "tune": dict[str, Any],
    "evaluations": list[dict[str, Any]],
    "test_reads": Count,
    "checks": list[Any],
})
META_KINDS = _adapters({  # inside the study's "tune" record
    "engine": str, "sampler": str, "space": dict[str, Any], "split": dict[str, Any], "format": Count,
})


class DamagedRecord(UserError):
    """A stored value of a kind tune never writes."""


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
