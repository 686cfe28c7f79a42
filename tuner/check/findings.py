"""What a check finds: a status and one line of evidence (the figures), kept as plain data so a
study records it and `--json` prints it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


COST_CHECK = "cost of a trial"  # the check whose figures size a search (`tuner.search.pool.jobs`)


class Status(str, Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    check: str  # "data: classes", "loss at initialization", ...
    status: Status
    evidence: str
    figures: dict[str, float] = field(default_factory=dict)  # what a search decides by (the cost check's)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finding":
        figures = {str(k): float(v) for k, v in (data.get("figures") or {}).items()}
        return cls(str(data["check"]), Status(data["status"]), str(data["evidence"]), figures)


def failed(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status is Status.FAIL]


def first_line(error: Exception, limit: int = 200) -> str:
    """An error as evidence: its message's first line, or its type when it has none."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:limit]
