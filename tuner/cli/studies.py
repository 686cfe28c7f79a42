"""`tune studies`: the studies in a storage, with their trial counts and best accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tuner.cli.app import Application
from tuner.cli.options import store_options


@click.command("studies")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
@store_options
@click.pass_obj
def command(app: Application, as_json: bool, storage: str | None, results_dir: Path) -> None:
    """List the studies in the storage."""
    from rich.table import Table

    from tuner.store import redact

    store = app.open_store(storage, results_dir)
    studies = [store.trials.summary(name) for name in store.studies.names()]
    if as_json:
        rows = [{"study": s.name, "engine": s.meta.get("engine"), "sampler": s.meta.get("sampler"),
                 "dataset": s.meta.get("dataset"), "counts": s.counts, "best_val_accuracy": s.best_value,
                 "created": s.meta.get("created")} for s in studies]
        click.echo(json.dumps(rows, indent=1))
        return
    table = Table(title=f"studies in {redact(store.url)}", title_justify="left")
    for name in ("study", "dataset", "engine", "complete", "pruned", "failed", "best val acc", "created"):
        table.add_column(name, justify="right" if name in ("complete", "pruned", "failed", "best val acc") else "left")
    for s in studies:
        best = "-" if s.best_value is None else f"{100 * s.best_value:.2f}%"
        engine = f"{s.meta.get('engine', '?')}/{s.meta.get('sampler', '?')}"
        table.add_row(s.name, s.meta.get("dataset", "?"), engine, str(s.counts["complete"]), str(s.counts["pruned"]),
                      str(s.counts["failed"]), best, s.meta.get("created", "")[:16])
    terminal = app.terminal
    terminal.console.print(table)
    others = store.studies.foreign_names()
    if others:
        terminal.info(f"{len(others)} {'study' if len(others) == 1 else 'studies'} in this storage "
                      f"{'was' if len(others) == 1 else 'were'} not made by tune (left alone): {', '.join(others)}")
