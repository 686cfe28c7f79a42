"""How counts, times and names read in messages: "1 trial", "2 trials", "3:05", a file name as text."""

from __future__ import annotations


def plural(n: int, noun: str, many: str | None = None) -> str:
    return f"{n:,} {noun if n == 1 else many or noun + 's'}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(int(round(seconds)), 0)  # a deadline already past reads 0:00
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def short_duration(seconds: float) -> str:
    """An epoch's time: tenths of a second under 10 s (digits' epochs take a fraction of one)."""
    return f"{seconds:.1f} s" if seconds < 10 else duration(seconds)


def printable(name: str) -> str:
    """A name (a file's, a class's) as text a terminal shows as written, one text per name: bytes
    that are not UTF-8 as \\xff, control characters (a terminal's escape sequences) as \\x1b."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def clipped(text: str, most: int = 120) -> str:
    """`text`, or its start and end with its length where it is longer than `most` characters
    (a 5,000-character path is not a message)."""
    if len(text) <= most:
        return text
    return f"{text[:most * 2 // 3]}...{text[-(most // 3):]} ({len(text):,} characters)"


def listed(items: list[str], most: int = 4) -> str:
    """'a, b, c, d and 3 more': the first `most` items, and how many were left out."""
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more
