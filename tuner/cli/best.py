"""`tune best`: the best trial and the ensemble, validation and test; `--export DIR`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tuner.cli.app import Application
from tuner.cli.options import GivenPath, store_options, study_option


@click.command("best")
@study_option
@click.option("--export", "export_dir", type=GivenPath(file_okay=False, path_type=Path),
              help="Write model.keras (ensemble), best_trial.keras, labels.json (class names), input.json, "
                   "config.yaml, metrics.json, history.json and README.md to this folder.")
@click.option("--force", is_flag=True, help="With --export: replace a folder that is not empty.")
@click.option("--data", type=GivenPath(exists=True, path_type=Path), help="The study's data, if not where the search found it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@store_options
@click.pass_obj
def command(app: Application, study: str | None, export_dir: Path | None, force: bool, data: Path | None, as_json: bool,
            storage: str | None, results_dir: Path) -> None:
    """Show the best trial and the ensemble with their test figures (evaluating once if needed)."""
    from tuner.ensemble.export import check_export_target, check_exportable, export_study, protected_paths
    from tuner.errors import UserError
    from tuner.ui.board import activity, build_board
    from tuner.ui.tables import class_tables, evaluations_table, params_table, unused_note

    if force and not export_dir:
        raise UserError("--force replaces an export folder: it goes with --export DIR")
    store = app.open_store(storage, results_dir)
    name = app.pick_study(store, study)
    if export_dir:
        check_export_target(export_dir, force, protected_paths(store, name, data))  # before the test split may be read
    board = build_board(store, name, top=1)
    if not board.rows:
        raise UserError(f"study '{name}' has no completed trial yet")
    best = board.rows[0]
    record = store.evaluations.latest(name)
    if export_dir and record is not None:
        check_exportable(store, name, record)  # a damaged record is one line, before anything is shown
    if not as_json or export_dir:  # --json alone shows what is recorded; an export needs a record
        record = app.evaluation(store, name, data, when="missing", show=not as_json)
    evaluations, reads = store.evaluations.all(name), store.evaluations.test_reads(name)
    if as_json:
        names = board.meta.get("split", {}).get("class_names") or []
        per_class = dict(zip(names, best.val_class_accuracy or []))
        click.echo(json.dumps({"study": name, "objective": board.objective.name,
                               "best_trial": {"trial": best.trial, "value": best.value, "val_accuracy": best.val_accuracy,
                                              "val_balanced_accuracy": best.val_balanced_accuracy,
                                              "val_loss": best.val_loss, "val_per_class_accuracy": per_class,
                                              "never_predicted": best.never_predicted, "epochs": best.epochs,
                                              "reason": best.reason, "params": best.params},
                               "data": {"split": board.meta.get("split"), "warnings": board.to_json()["data_warnings"]},
                               "evaluation": record and record.to_json(), "test_reads": reads,
                               "evaluations": [e.to_json() for e in evaluations]}, indent=1))
    else:
        app.terminal.print_data(board.meta)
        applies = activity(board.meta.get("space"))
        app.terminal.console.print(params_table(best, board.objective, applies))
        if note := unused_note(best, applies):
            app.terminal.info(note)
        for table in class_tables(record, best, board.meta.get("split", {})):
            app.terminal.console.print(table)
        if evaluations:
            app.terminal.console.print(evaluations_table(evaluations, reads))
    if export_dir:
        out = export_study(store, name, record, export_dir, force)
        app.terminal.info(f"exported to {out}/ ({', '.join(sorted(p.name for p in out.iterdir()))})")
