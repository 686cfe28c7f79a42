"""`tune studies`: the studies in a storage, with their trial counts and best values."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tuner.cli.app import Application
from tuner.cli.options import store_options
from tuner.space.objective import objective_of
from tuner.store.records import StudyInfo


def _summaries(store) -> tuple[list[StudyInfo], list[tuple[str, str]]]:
    """Each study's summary; one that cannot be read (damaged, or from a newer tune) is named with
    why, and the others still listed."""
    from tuner.errors import UserError

    studies, damaged = [], [(name, str(why)) for name, why in store.studies.unreadable()]
    for name in store.studies.names():
        try:
            studies.append(store.trials.summary(name))
        except UserError as e:
            damaged.append((name, str(e)))
    return studies, damaged


@click.command("studies")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
@store_options
@click.pass_obj
def command(app: Application, as_json: bool, storage: str | None, results_dir: Path) -> None:
    """List the studies in the storage."""
    from tuner.store import redact
    from tuner.ui.tables import studies_table

    store = app.open_store(storage, results_dir)
    studies, damaged = _summaries(store)
    if as_json:
        rows = [{"study": s.name, "engine": s.meta.get("engine"), "sampler": s.meta.get("sampler"),
                 "dataset": s.meta.get("dataset"), "counts": s.counts,
                 "objective": objective_of(s.meta.get("space")).name, "best_value": s.best_value,
                 "created": s.meta.get("created")} for s in studies]
        click.echo(json.dumps(rows + [{"study": name, "damaged": why} for name, why in damaged], indent=1))
        return
    terminal = app.terminal
    terminal.console.print(studies_table(studies, redact(store.url)))
    for _, why in damaged:
        terminal.warn(f"not listed: {why}")
    others = store.studies.foreign_names()
    if others:
        terminal.info(f"{len(others)} {'study' if len(others) == 1 else 'studies'} in this storage "
                      f"{'was' if len(others) == 1 else 'were'} not made by tune (left alone): {', '.join(others)}")
