"""`tune ensemble`: greedy ensemble selection on validation data, evaluated once on test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tuner import config
from tuner.cli import open_store, pick_study, store_options


def show(terminal: Any, record: Any) -> None:
    from tuner.ui.terminal import evaluation_tables

    for table in evaluation_tables(record):
        terminal.console.print(table)


def run_and_show(store: Any, study: str, data: Path | None, terminal: Any, top: int = 10, size: int = 20,
                 metric: str = "log_loss", when: str = "changed", refit: bool = False) -> Any:
    """Show the latest recorded evaluation, or evaluate: `when` is 'changed' (the study has
    finished trials the record does not cover), 'missing' (no record yet) or 'always'; with
    `refit`, a record without a refit counts as missing."""
    from tuner.ensemble.evaluate import run_ensemble

    record = store.evaluations.latest(study)
    finished = store.trials.count_finished(study)
    stale = record is not None and record.n_finished != finished
    if refit and record is not None and record.refit is None:
        record = None
    if record is not None and when != "always" and not (when == "changed" and stale):
        terminal.info(f"recorded evaluation of {record.when}; the test set was not read again"
                      + (f" (the study has {finished - record.n_finished} more finished trials since)" if stale else "")
                      + "; --reevaluate selects and evaluates anew")
    else:
        terminal.info(f"selecting an ensemble among the top {top} trials on validation data"
                      + ("; its members trained again on train + validation" if refit else "")
                      + "; one pass over the test split")
        record = run_ensemble(store, study, top, size, metric, data, config.cache_dir(), refit, terminal.info)
    show(terminal, record)
    return record


@click.command("ensemble")
@click.option("--study", help="Study name (default: the only study in the storage).")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Candidates: the best K trials.")
@click.option("--size", type=click.IntRange(min=1), default=20, show_default=True,
              help="Greedy selection steps (with replacement); the best prefix is kept.")
@click.option("--metric", type=click.Choice(["log_loss", "accuracy"]), default="log_loss", show_default=True,
              help="What the selection optimizes on the validation split.")
@click.option("--reevaluate", is_flag=True, help="Select and evaluate on the test split again (recorded too).")
@click.option("--refit", is_flag=True, help="Before the test, train each member again on train + validation (its "
              "parameters, seed and best epoch count); that ensemble becomes model.keras. Costs the members' training.")
@click.option("--data", type=click.Path(path_type=Path), help="The study's data, if not where the search found it.")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation record as JSON.")
@store_options
def command(study: str | None, top: int, size: int, metric: str, reevaluate: bool, refit: bool, data: Path | None,
            as_json: bool, storage: str | None, results_dir: Path) -> None:
    """Build the ensemble of the best trials and evaluate it once on the held-out test split."""
    from tuner.ensemble.evaluate import run_ensemble
    from tuner.ui.terminal import Terminal

    store, terminal = open_store(storage, results_dir), Terminal()
    name = pick_study(store, study)
    if as_json:
        record = store.evaluations.latest(name)
        if record is None or reevaluate or (refit and record.refit is None):
            record = run_ensemble(store, name, top, size, metric, data, config.cache_dir(), refit)
        click.echo(json.dumps(record.to_json(), indent=1))
        return
    run_and_show(store, name, data, terminal, top, size, metric, when="always" if reevaluate else "missing",
                 refit=refit)
