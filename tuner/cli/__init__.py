"""`tune`: the command line. One module per command, each handed the one `Application`
(`tuner.cli.app`); user errors through `abort`; shared options in `tuner.cli.options`.

Keras is imported only by the commands that train or predict, so `tune --help`, `tune spaces`
and `tune leaderboard` start fast.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

from tuner import __version__
from tuner.cli.app import Application, abort
from tuner.errors import Interrupted, SearchStopped, UserError, describe_fault
from tuner.paths import loop_error

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _environment_help() -> str:
    from tuner.config import VARIABLES

    variables = "\n".join(f"  {name:24} {what}" for name, what in VARIABLES.items())
    # click's own completion: commands, options and the choices of --engine, --sampler, --pruner, ...
    completion = ('\b\nShell completion (bash; zsh_source and fish_source for the others):\n'
                  '  eval "$(_TUNE_COMPLETE=bash_source tune)"')
    return f"\b\nEnvironment variables:\n{variables}\n\n{completion}"


def _reader_stopped() -> NoReturn:
    """The reader of a pipe stopped reading (`tune leaderboard --csv | head -1`): it had what it
    wanted. Exit 0, as when the output fitted the pipe before the reader stopped (click exits 1,
    so the code depended on timing), with what is still buffered going nowhere."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise click.exceptions.Exit(0)


class _Commands(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # here, where a closed pipe is caught, not at the interpreter's exit
            return result
        except BrokenPipeError:
            _reader_stopped()


@click.group(cls=_Commands, context_settings=CONTEXT, epilog=_environment_help())
@click.version_option(__version__, prog_name="tune")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Hyperparameter search for Keras 3 image classifiers.

    \b
    Quick start (offline, a few minutes on a laptop CPU):
      tune search --space digits --trials 20
      tune best --study digits --export models/digits
      tune predict models/digits my_images/
    \b
    Spaces are YAML files: `tune spaces` lists the built-in ones. Studies live in a
    database (SQLite under results/ by default) and resume when a command is run again.
    """
    ctx.ensure_object(Application)


def _register() -> None:
    from tuner.cli import best, check, ensemble, leaderboard, predict, report, search, spaces, studies

    for module in (check, search, leaderboard, studies, spaces, ensemble, best, predict, report):
        cli.add_command(module.command)


def main(argv: list[str] | None = None) -> None:
    """The `tune` command (`argv` None: the process's own arguments; a list: a call from Python)."""
    from tuner import interrupts

    try:  # a process that is this command alone ignores signals once its work is done (`ignore_after`)
        with interrupts.exiting_on_signals(ignore_after=argv is None):
            _check_working_folder()
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
        if why := loop_error(e):  # met inside a library (matplotlib's cache under a looping `~`)
            abort(f"a loop of symbolic links ({why}); check the paths given and HOME", 2)
        if describe_fault(e) is not None:
            abort(scrub_all(describe_fault(e), sys.argv[1:] if argv is None else argv), 1)
        if interrupts.stop_requested():  # the signal broke what it interrupted: still an interrupt
            _interrupted(interrupts.cause(e))
        abort(f"internal error, a bug in tune ({type(e).__name__}: {e}); the traceback is in {_crash_log()}", 1)
    sys.exit(0)


def _check_working_folder() -> None:
    """Relative paths (results/, a space file, --data) mean nothing in a deleted working folder,
    whose OS error names no path: the shell's $PWD still does."""
    try:
        os.getcwd()
    except FileNotFoundError:
        where = os.environ.get("PWD") or "of this process"
        abort(f"the working folder {where} no longer exists (deleted or moved); cd to a folder that does and "
              f"run the command again", 1)


def _interrupted(how: str) -> NoReturn:
    from tuner import interrupts

    abort(f"interrupted ({how}); any running trial is marked failed. Resume with the same command",
          interrupts.EXIT_CODES[how])


def scrub_all(text: str, args: list[str]) -> str:
    """`text` without the secrets of the storage URL the command was given."""
    from tuner.store import scrub

    from tuner import config

    url = config.storage_url()
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

