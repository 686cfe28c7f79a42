"""`tune leaderboard`: the best trials of a study, from the storage (also while searching)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tuner.cli.app import Application
from tuner.cli.options import store_options, study_option


@click.command("leaderboard")
@study_option
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="How many trials to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
@store_options
@click.pass_obj
def command(app: Application, study: str | None, top: int, as_json: bool, storage: str | None, results_dir: Path) -> None:
    """Show the best trials of a study, ranked by validation accuracy."""
    from tuner.ui.board import build_board

    store = app.open_store(storage, results_dir)
    board = build_board(store, app.pick_study(store, study), top)
    if as_json:
        click.echo(json.dumps(board.to_json(), indent=1, default=str))
    else:
        app.terminal.print_board(board)
