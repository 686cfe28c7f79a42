"""`tune leaderboard`: the best trials of a study, from the storage (also while searching)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click

from tuner.cli.app import Application
from tuner.cli.options import store_options, study_option


@click.command("leaderboard")
@study_option
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many trials to show (--csv has every trial).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
@click.option("--csv", "as_csv", is_flag=True,
              help="Print every trial as CSV (a spreadsheet, pandas): its figures, then one column per parameter.")
@store_options
@click.pass_obj
def command(app: Application, study: str | None, top: int, as_json: bool, as_csv: bool, storage: str | None,
            results_dir: Path) -> None:
    """Show the best trials of a study, ranked by the space's objective (validation accuracy by
    default); a trial cut short by --timeout ranks too."""
    from tuner.errors import UserError
    from tuner.ui.board import build_board, trial_rows

    if as_json and as_csv:
        raise UserError("--json and --csv: choose one")
    store = app.open_store(storage, results_dir)
    name = app.pick_study(store, study)
    if as_csv:
        header, rows = trial_rows(store, name)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
        return
    board = build_board(store, name, top)
    if as_json:
        click.echo(json.dumps(board.to_json(), indent=1, default=str))
        return
    app.terminal.print_board(board)
    if board.ranked > len(board.rows):
        app.terminal.info(f"the best {len(board.rows)} of {board.ranked} ranked trials; --top {board.ranked} "
                          f"shows them all, --csv every trial")
