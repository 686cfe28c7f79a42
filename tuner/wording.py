"""How counts read in messages: "1 trial", "2 trials"."""

from __future__ import annotations


def plural(n: int, noun: str, many: str | None = None) -> str:
    return f"{n} {noun if n == 1 else many or noun + 's'}"
