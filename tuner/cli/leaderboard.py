"""`tune leaderboard`: the best trials of a study, from the storage (also while searching)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tuner.cli import open_store, pick_study, store_options


@click.command("leaderboard")
@click.option("--study", help="Study name (default: the only study in the storage).")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="How many trials to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
@store_options
def command(study: str | None, top: int, as_json: bool, storage: str | None, results_dir: Path) -> None:
    """Show the best trials of a study, ranked by validation accuracy."""
    from tuner.ui.board import build_board
    from tuner.ui.terminal import Terminal

    store = open_store(storage, results_dir)
    board = build_board(store, pick_study(store, study), top)
    if as_json:
        click.echo(json.dumps(board.to_json(), indent=1, default=str))
    else:
        Terminal().print_board(board)
