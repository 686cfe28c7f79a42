"""Options and value types that several commands share."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable

import click

from tuner.paths import length_problem, loop_problem
from tuner.wording import clipped


def store_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--storage and --results-dir, shared by every command that reads or writes studies."""
    func = click.option("--results-dir", type=GivenPath(file_okay=False, path_type=Path), default="results",
                        envvar="TUNE_RESULTS_DIR", show_default=True, show_envvar=True,
                        help="Folder for the default SQLite file and each trial's artifacts.")(func)
    return click.option("--storage", envvar="TUNE_STORAGE", show_envvar=True, metavar="URL", callback=_given_url,
                        help="SQLAlchemy URL of the study database (default: sqlite:///<results-dir>/tune.db), "
                             "e.g. postgresql://user:pass@host/db for several workers.")(func)


def _given_url(ctx: Any, param: Any, value: str | None) -> str | None:
    """An empty --storage is refused, not read as the default (it lost the default's right to
    create the results folder; an empty TUNE_STORAGE is unset to click)."""
    if value is not None and not value.strip():
        raise click.BadParameter("an empty path or URL; leave --storage out for <results-dir>/tune.db", ctx, param)
    return value


def study_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--study", help="Study name (default: the only study in the storage).")(func)


class GivenPath(click.Path):
    """click.Path, with an empty value refused: `Path("")` is the current folder (an empty
    `--export ""` with `--force` emptied it; `predict EXPORT ""` read every file under it)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, (str, bytes)) and not value.strip():
            self.fail("an empty path; name a file or folder", param, ctx)
        if isinstance(value, (str, bytes, os.PathLike)) and (why := length_problem(value) or loop_problem(value)):
            self.fail(f"{clipped(os.fsdecode(value))}: {why}", param, ctx)
        return super().convert(value, param, ctx)


class Seconds(click.ParamType):
    """A finite number of seconds, at least `low` and at most a year (click's FloatRange lets nan
    through; 1e308 seconds overflowed the epochs a budget holds)."""

    name = "seconds"
    HIGH = 365 * 24 * 3600.0

    def __init__(self, low: float = 1.0):
        self.low = low

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or not self.low <= seconds <= self.HIGH:
            self.fail(f"{value!r}: expected a number of seconds from {self.low:g} to {self.HIGH:g} (a year)", param, ctx)
        return seconds


class Size(click.ParamType):
    """A number of bytes: 2000000, 512MiB, 4GB, 1.5GiB."""

    name = "size"
    UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
             "pb": 10**15, "eb": 10**18,
             "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50, "eib": 2**60}

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        text = str(value).strip().lower().replace(" ", "")
        number = text.rstrip("kmgtpeib")
        unit = text[len(number):]
        try:
            size = float(number) * self.UNITS[unit]
        except (ValueError, KeyError):
            self.fail(f"{value!r} is not a size (e.g. 512MiB, 4GB, 2000000)", param, ctx)
        if not math.isfinite(size) or size < 1 or size > 2**60:
            self.fail(f"{value!r}: expected a size from 1 byte to 1 EiB", param, ctx)
        return int(size)


def space_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--space, --data, --epochs and --set: the space a command searches or checks, and its data."""
    for option in reversed([
        click.option("--space", required=True, help="Built-in space name (see `tune spaces`) or a path to a YAML file. "
                                                     "A space's start points, if any, are its first trials."),
        click.option("--data", type=GivenPath(path_type=Path), help="A .npz, an image folder, or a .zip/.tar.gz of one "
                                                                     "(else $TUNE_DATA_DIR, Keras's cache, /usr/share/datasets, then a download)."),
        click.option("--epochs", type=click.IntRange(min=1), help="Override the space's max epochs (e.g. 1 for a smoke run)."),
        click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
                     help="Fix a parameter instead of searching it (also in the start points)."),
    ]):
        func = option(func)
    return func


def requested_space(space: str, epochs: int | None, sets: tuple[str, ...], warn: Callable[[str], None]) -> Any:
    """The space file named by --space, with --epochs and --set applied (validated again); what in
    it changes nothing is told to `warn`."""
    from tuner.space.files import load_space

    loaded, fixed = load_space(space), parse_sets(sets)
    searched = loaded.searched()
    idle = loaded.idle_under(fixed)
    loaded = loaded.with_overrides(epochs=epochs, fixed=fixed) if epochs or sets else loaded  # refuses bad values
    for name, when in idle.items():
        needs = ", ".join(f"{k} {' or '.join(map(str, v))}" for k, v in when.items())
        warn(f"--set {name} changes nothing: the space uses {name} only with {needs}, which the other --set values rule out")
    for name in fixed:  # the user's to choose, but said: a width of 500 in a 16-96 space went unseen
        value = loaded.fixed().get(name, fixed[name])
        if name in searched and (why := searched[name].refusal(value)) is not None:
            warn(f"--set {name}={value} lies outside what the space searches ({why}); it is used as given")
    for part in loaded.idle_augmentation():
        warn(f"{part} changes nothing in this space: augment, which turns augmentation on, is 0 in every trial "
             f"(search or set augment above 0, or leave {part} out)")
    return loaded


def parse_sets(pairs: tuple[str, ...]) -> dict:
    from tuner.errors import UserError
    from tuner.space.reading import parse_value

    fixed = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UserError(f"--set {pair}: expected NAME=VALUE (e.g. --set optimizer=adam)")
        if name.strip() in fixed:  # as a space file refuses a key given twice
            raise UserError(f"--set {name.strip()} is given twice; give each parameter once")
        fixed[name.strip()] = parse_value(value, f"--set {name.strip()}")  # 3 -> int, 1e-3 -> float, true -> bool
        if isinstance(fixed[name.strip()], dict):  # a space file's searched range would search it, not fix it
            raise UserError(f"--set {name.strip()}={value}: one value fixes a parameter; a range is the space file's")
    return fixed
