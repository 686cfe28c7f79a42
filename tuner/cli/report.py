"""`tune report`: the search as pictures, in one HTML page that opens offline, and PNGs."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from tuner.cli.app import Application
from tuner.cli.options import GivenPath, store_options, study_option


@click.command("report")
@study_option
@click.option("--out", "out_dir", type=GivenPath(file_okay=False, path_type=Path),
              help="Folder for report.html and its PNGs  [default: <results-dir>/<study>/report]")
@click.option("--data", type=GivenPath(exists=True, path_type=Path), help="The study's data, if not where the search found it "
              "(for the image grids; the rest of the report reads records only).")
@click.option("--no-images", is_flag=True, help="Leave out the image grids (they load the train and validation splits).")
@store_options
@click.pass_obj
def command(app: Application, study: str | None, out_dir: Path | None, data: Path | None, no_images: bool,
            storage: str | None, results_dir: Path) -> None:
    """Draw the study: history, per-epoch values, importances, slices, learning curves, where the
    time went, the ensemble's recorded test evaluation, and images as the best trial saw them.
    Reads records (and the train and validation splits for the images); never the test split."""
    from tuner import config
    from tuner.ensemble.evaluate import recorded_source, search_data_of, stored_space
    from tuner.errors import UserError
    from tuner.paths import check_room_for_files, inside, resolved
    from tuner.ui.report import build_report

    if data is not None and no_images:
        raise UserError("--data is read for the image grids only, which --no-images leaves out; drop one of the two")
    if out_dir is not None:
        check_room_for_files(out_dir, "--out")
    store = app.open_store(storage, results_dir)
    name = app.pick_study(store, study)
    if not store.trials.all(name):
        raise UserError(f"study '{name}' has no trials yet")
    default = store.artifacts.study_dir(name) / "report"
    if out_dir is None and not store.results_dir.is_dir():  # only a search creates a results folder
        raise UserError(f"the results folder {store.results_dir} does not exist, so the report has no study folder "
                        f"to go in: pass the --results-dir the search used, or --out DIR")
    out = out_dir or inside(store.results_dir, default)  # not through a link planted at `report`
    if out_dir is None:  # a given --out was checked before the store was opened
        check_room_for_files(out, "the report's folder")
    results, target = resolved(store.results_dir), resolved(out)
    if target != default.resolve() and (target == results or results in target.parents):
        raise UserError(f"--out {out}: inside the results folder {store.results_dir}, where tune keeps its studies; "
                        f"give a folder outside it (the default is {default})")

    @functools.cache
    def images():
        source = data if data is not None else recorded_source(store, name)
        return search_data_of(store, name, stored_space(store, name), source, config.cache_dir())

    if data is not None and not no_images:
        images()  # data the user named must be the study's: said now (exit 2), not only in the page
    report = build_report(store, name, out, None if no_images else images)
    if report.note:
        app.terminal.warn(report.note)
    app.terminal.info(f"report: {report.page} ({report.figures} figures beside it as PNG files)")
