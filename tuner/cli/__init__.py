"""`tune`: the command line. One module per command; user errors through `abort`.

Keras is imported only by the commands that train or predict, so `tune --help`, `tune spaces`
and `tune leaderboard` start fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn

import click

from tuner import __version__
from tuner.errors import SearchStopped, UserError

if TYPE_CHECKING:
    from tuner.store import SearchStore

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def abort(message: str, code: int = 2) -> NoReturn:
    """The one way a command reports a user error: one line on stderr, exit code 2."""
    from tuner.terminal import Terminal

    Terminal().error(message)
    sys.exit(code)


def store_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--storage and --results-dir, shared by every command that reads or writes studies."""
    func = click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), default="results",
                        envvar="TUNE_RESULTS_DIR", show_default=True, show_envvar=True,
                        help="Folder for the default SQLite file and each trial's artifacts.")(func)
    return click.option("--storage", envvar="TUNE_STORAGE", show_envvar=True, metavar="URL",
                        help="SQLAlchemy URL of the study database (default: sqlite:///<results-dir>/tune.db), "
                             "e.g. postgresql://user:pass@host/db for several workers.")(func)


def open_store(storage: str | None, results_dir: Path, heartbeat: bool = False) -> SearchStore:
    from tuner.store import SearchStore

    return SearchStore(storage, results_dir, heartbeat=heartbeat)


def pick_study(store: Any, study: str | None) -> str:
    """The named study, or the only one in the storage."""
    if study:
        store.require_study(study)
        return study
    names = [s.study_name for s in store.storage.get_all_studies()]
    if len(names) == 1:
        return names[0]
    raise UserError("no studies in the storage yet; run `tune search` first" if not names else
                    f"several studies in the storage; pick one with --study ({', '.join(names)})")


@click.group(context_settings=CONTEXT)
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
    _register()
    try:
        cli.main(args=argv, prog_name="tune", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        abort("interrupted", 130)
    except click.ClickException as e:
        abort(e.format_message().replace("\n", " "), 2)
    except UserError as e:
        abort(str(e), 2)
    except SearchStopped as e:
        abort(str(e), 1)
    sys.exit(0)

