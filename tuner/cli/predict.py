"""`tune predict`: an exported model on new images, with class names."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from tuner.cli.app import Application
from tuner.cli.options import GivenPath
from tuner.wording import clipped, plural

if TYPE_CHECKING:
    from tuner.ensemble.predict import Inputs

PROGRESS_SECONDS = 10.0  # between progress lines without a terminal


@click.command("predict")
@click.argument("export", type=GivenPath(path_type=Path))
@click.argument("paths", nargs=-1, required=True, type=GivenPath(path_type=Path))
@click.option("--top", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many of the most probable classes to show per image.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts: names as they are (a byte that is not UTF-8 as \\udcXX).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: file, rank, class, probability; names as they are, quoted where needed.")
@click.pass_obj
def command(app: Application, export: Path, paths: tuple[Path, ...], top: int, as_json: bool, as_csv: bool) -> None:
    """Classify image files with a model exported by `tune best --export DIR`.

    EXPORT is that folder (its model.keras: the ensemble evaluated on the test set) or one of its
    .keras files (best_trial.keras: the best trial alone). PATHS are image files or folders
    (searched recursively, hidden files left out); a file named twice is predicted once. Images of
    any size and mode are converted and resized as the training images were; files that are not
    readable images, and entries of a folder that are not files (a dangling link), are counted in
    one warning line each."""
    from tuner.ensemble.predict import image_files, model_changed, predict_files, read_export
    from tuner.errors import UserError
    from tuner.ui.tables import predictions_table

    if as_json and as_csv:
        raise UserError("--json and --csv: choose one")
    exported = read_export(export)
    inputs = image_files(list(paths))
    predictions, unreadable = predict_files(exported, inputs.files, min(top, len(exported.labels)), _progress(app))
    if not predictions:
        raise UserError(f"no readable image among {plural(len(inputs.files), 'file')} (damaged, not an image, or over "
                        f"Pillow's {_pixel_limit()} pixels): {clipped(', '.join(map(str, paths)))}")
    if model_changed(exported):  # said once there are predictions: a refused command is one line
        app.terminal.warn(f"{exported.model_path} is not the model this export recorded (its checksum differs "
                          f"from metrics.json): its predictions are not the evaluated model's")
    if unreadable:
        what = "file that is not a readable image" if len(unreadable) == 1 else "files that are not readable images"
        app.terminal.warn(f"skipped {len(unreadable)} {what} (damaged, not an image, or over Pillow's "
                          f"{_pixel_limit()} pixels; e.g. {unreadable[0]})")
    _say_left_out(app, inputs)
    if as_json:
        click.echo(predictions_json(predictions))
    elif as_csv:
        sys.stdout.flush()
        write_csv(predictions, sys.stdout.buffer)
    else:
        app.terminal.console.print(predictions_table(predictions))


def predictions_json(predictions: list) -> str:
    """Names as they are: JSON escapes a control character, and a byte that is not UTF-8 as the
    surrogate Python reads it as (`os.fsencode` gives the file's own name back)."""
    return json.dumps([{"file": p.file, "top": [{"class": c, "probability": q} for c, q in p.top]}
                       for p in predictions], indent=1)


def write_csv(predictions: list, out: BinaryIO) -> None:
    """Names as they are: csv quotes a tab or a line break, and a name that is not UTF-8 keeps its
    bytes (the file's own name)."""
    text = io.TextIOWrapper(out, encoding="utf-8", errors="surrogateescape", newline="")
    writer = csv.writer(text)
    writer.writerow(["file", "rank", "class", "probability"])
    writer.writerows([p.file, rank, c, f"{q:.6f}"] for p in predictions for rank, (c, q) in enumerate(p.top, 1))
    text.flush()
    text.detach()  # the stream stays open for click


def _say_left_out(app: Application, inputs: Inputs) -> None:
    if inputs.not_files:
        what = "entry that is not a file" if len(inputs.not_files) == 1 else "entries that are not files"
        app.terminal.warn(f"skipped {len(inputs.not_files)} folder {what} (a dangling link, a pipe, a folder that "
                          f"cannot be read; e.g. {inputs.not_files[0]})")
    if inputs.repeated:
        app.terminal.aside(f"{plural(inputs.repeated, 'file')} named more than once, predicted once")
    if inputs.hidden:
        app.terminal.aside(f"left out {plural(inputs.hidden, 'hidden file')} (names starting with '.') under the folders named")


def _pixel_limit() -> str:
    from PIL import Image

    return f"{2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} million"  # twice its warning limit is its error


def _progress(app: Application):
    """Progress on stderr, so stdout stays the predictions: a bar on a terminal, else a line
    every PROGRESS_SECONDS."""
    last = [time.monotonic()]

    def report(done: int, total: int) -> None:
        if done < total and time.monotonic() - last[0] >= PROGRESS_SECONDS:
            last[0] = time.monotonic()
            app.terminal.aside(f"predicted {done}/{total} files")

    return report
