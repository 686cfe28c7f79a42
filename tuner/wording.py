"""How counts and times read in messages: "1 trial", "2 trials", "3:05"."""

from __future__ import annotations


def plural(n: int, noun: str, many: str | None = None) -> str:
    return f"{n} {noun if n == 1 else many or noun + 's'}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(int(round(seconds)), 0)  # a deadline already past reads 0:00
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def short_duration(seconds: float) -> str:
    """An epoch's time: tenths of a second under 10 s (digits' epochs take a fraction of one)."""
    return f"{seconds:.1f} s" if seconds < 10 else duration(seconds)
