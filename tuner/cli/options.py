"""Options and value types that several commands share."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import click


def store_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--storage and --results-dir, shared by every command that reads or writes studies."""
    func = click.option("--results-dir", type=click.Path(file_okay=False), default="results",
                        envvar="TUNE_RESULTS_DIR", show_default=True, show_envvar=True, callback=_not_empty,
                        help="Folder for the default SQLite file and each trial's artifacts.")(func)
    return click.option("--storage", envvar="TUNE_STORAGE", show_envvar=True, metavar="URL",
                        help="SQLAlchemy URL of the study database (default: sqlite:///<results-dir>/tune.db), "
                             "e.g. postgresql://user:pass@host/db for several workers.")(func)


def study_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--study", help="Study name (default: the only study in the storage).")(func)


def _not_empty(ctx: Any, param: Any, value: Any) -> Path:
    if not str(value).strip():
        raise click.BadParameter("an empty path; give a folder (default: results)")
    return Path(value)


class Seconds(click.ParamType):
    """A finite number of seconds, at least `low` (click's FloatRange lets nan through)."""

    name = "seconds"

    def __init__(self, low: float = 1.0):
        self.low = low

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds < self.low:
            self.fail(f"{value!r}: expected a finite number of seconds, at least {self.low:g}", param, ctx)
        return seconds
