"""`tune ensemble`: greedy ensemble selection on validation data, evaluated once on test."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tuner.cli.app import Application
from tuner.cli.options import GivenPath, store_options, study_option


@click.command("ensemble")
@study_option
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Candidates: the best K trials.")
@click.option("--size", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="Greedy selection steps (with replacement); the best prefix is kept. Each step weighs every "
                   "candidate once: past a few dozen the weights barely move.")
@click.option("--metric", type=click.Choice(["auto", "log_loss", "balanced_log_loss", "accuracy", "balanced_accuracy"]),
              default="auto", show_default=True,
              help="What the greedy selection optimizes on the validation split; auto: the log loss, or its "
                   "class-balanced form when the space's objective is balanced_accuracy.")
@click.option("--reevaluate", is_flag=True, help="Select and evaluate on the test split again (recorded too).")
@click.option("--refit", is_flag=True, help="Before the test, train each member again on train + validation (its "
              "parameters, seed and best epoch count); that ensemble becomes model.keras. Costs the members' training.")
@click.option("--data", type=GivenPath(exists=True, path_type=Path), help="The study's data, if not where the search found it.")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation record as JSON.")
@store_options
@click.pass_obj
def command(app: Application, study: str | None, top: int, size: int, metric: str, reevaluate: bool, refit: bool,
            data: Path | None, as_json: bool, storage: str | None, results_dir: Path) -> None:
    """Build the ensemble of the best trials and evaluate it once on the held-out test split."""
    store = app.open_store(storage, results_dir)
    name = app.pick_study(store, study)
    record = app.evaluation(store, name, data, top, size, metric, when="always" if reevaluate else "missing",
                            refit=refit, show=not as_json)
    if as_json:
        click.echo(json.dumps(record.to_json(), indent=1))
