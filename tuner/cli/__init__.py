"""`tune`: the command line. One module per command; user errors through `abort`.

Keras is imported only by the commands that train or predict, so `tune --help`, `tune spaces`
and `tune leaderboard` start fast.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn

import click

from tuner import __version__
from tuner.errors import Interrupted, SearchStopped, UserError, describe_fault

if TYPE_CHECKING:
    from tuner.store import SearchStore

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def abort(message: str, code: int = 2) -> NoReturn:
    """The one way a command reports an error: one line on stderr, then the exit code (2: the
    input; 1: the search stopped or the system refused; 130 Ctrl-C; 143 SIGTERM)."""
    line = " ".join(str(message).split()) or "failed"
    try:
        from tuner.ui.terminal import Terminal

        Terminal().error(line)
    except BaseException:  # interrupted while importing, say: the line must still come out
        sys.stderr.write(f"error: {line}\n")
    if code in (130, 143):
        # A signal may have cut native code (TensorFlow's threads) short, which can crash the
        # interpreter's teardown: leave at once, with what was written flushed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def store_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--storage and --results-dir, shared by every command that reads or writes studies."""
    func = click.option("--results-dir", type=click.Path(file_okay=False), default="results",
                        envvar="TUNE_RESULTS_DIR", show_default=True, show_envvar=True, callback=_not_empty,
                        help="Folder for the default SQLite file and each trial's artifacts.")(func)
    return click.option("--storage", envvar="TUNE_STORAGE", show_envvar=True, metavar="URL",
                        help="SQLAlchemy URL of the study database (default: sqlite:///<results-dir>/tune.db), "
                             "e.g. postgresql://user:pass@host/db for several workers.")(func)


def _not_empty(ctx: Any, param: Any, value: Any) -> Path:
    if not str(value).strip():
        raise click.BadParameter("an empty path; give a folder (default: results)")
    return Path(value)


def open_store(storage: str | None, results_dir: Path, heartbeat: bool = False, create: bool = False) -> SearchStore:
    """The store; only `create` (the search) may create a database or a results folder."""
    from tuner.store import SearchStore

    return SearchStore(storage, results_dir, heartbeat=heartbeat, create=create)


def pick_study(store: Any, study: str | None) -> str:
    """The named study, or the only one in the storage."""
    if study is not None:
        store.studies.require(study)
        return study
    names = store.studies.names()
    if len(names) == 1:
        return names[0]
    raise UserError("no studies in the storage yet; run `tune search` first" if not names else
                    f"several studies in the storage; pick one with --study ({', '.join(names)})")


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


def _environment_help() -> str:
    from tuner.config import VARIABLES

    return "\b\nEnvironment variables:\n" + "\n".join(f"  {name:24} {what}" for name, what in VARIABLES.items())


@click.group(context_settings=CONTEXT, epilog=_environment_help())
@click.version_option(__version__, prog_name="tune")
def cli() -> None:
    """Hyperparameter search for Keras 3 image classifiers.

    \b
    Quick start (offline, a few minutes on a laptop CPU):
      tune search --space digits --trials 20
      tune best --study digits --export models/digits
    \b
    Spaces are YAML files: `tune spaces` lists the built-in ones. Studies live in a
    database (SQLite under results/ by default) and resume when a command is run again.
    """


def _register() -> None:
    from tuner.cli import best, ensemble, leaderboard, search, spaces, studies

    for module in (search, leaderboard, studies, spaces, ensemble, best):
        cli.add_command(module.command)


def main(argv: list[str] | None = None) -> None:
    from tuner import interrupts

    try:
        with interrupts.exiting_on_signals():
            _register()
            cli.main(args=argv, prog_name="tune", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except (click.Abort, KeyboardInterrupt) as e:
        _interrupted(interrupts.cause(e))
    except Interrupted as e:
        _interrupted(str(e))
    except click.ClickException as e:
        abort(e.format_message(), 2)
    except UserError as e:
        abort(str(e), 2)
    except SearchStopped as e:
        abort(str(e), 1)
    except MemoryError:
        abort("out of memory (a dataset or a space file too large for this machine?)", 1)
    except Exception as e:
        if describe_fault(e) is not None:
            abort(scrub_all(describe_fault(e), sys.argv[1:] if argv is None else argv), 1)
        if interrupts.stop_requested():  # the signal broke what it interrupted: still an interrupt
            _interrupted(interrupts.cause(e))
        abort(f"internal error, a bug in tune ({type(e).__name__}: {e}); the traceback is in {_crash_log()}", 1)
    sys.exit(0)


def _interrupted(how: str) -> NoReturn:
    from tuner import interrupts

    abort(f"interrupted ({how}); any running trial is marked failed. Resume with the same command",
          interrupts.EXIT_CODES[how])


def scrub_all(text: str, args: list[str]) -> str:
    """`text` without the secrets of the storage URL the command was given."""
    from tuner.store import scrub

    url = os.environ.get("TUNE_STORAGE", "")
    for i, arg in enumerate(args):
        if arg == "--storage" and i + 1 < len(args):
            url = args[i + 1]
        elif arg.startswith("--storage="):
            url = arg.partition("=")[2]
    return scrub(text, url) if url else text


def _crash_log() -> str:
    """The current exception's traceback in a file of its own, for a bug report."""
    import tempfile
    import traceback

    try:
        fd, path = tempfile.mkstemp(prefix="tune-crash-", suffix=".log")
        with os.fdopen(fd, "w") as f:
            f.write(traceback.format_exc())
        return path
    except OSError:
        traceback.print_exc()
        return "the lines above"

