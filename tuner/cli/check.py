"""`tune check`: the training playbook on a space and its data, before a search spends its budget."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

import click

from tuner.cli.app import Application, abort
from tuner.cli.options import GivenPath, Size, requested_space, space_options
from tuner.paths import check_room_for_files, make_folder, new_folder, outside_data
from tuner.wording import plural


@click.command("check")
@space_options
@click.option("--memory-limit", type=Size(), metavar="SIZE",
              help="Memory one training step of the largest configuration may take, e.g. 4GiB "
                   "(default, and at most: the memory available now).")
@click.option("--out", type=GivenPath(file_okay=False, path_type=Path), metavar="DIR",
              help="Folder for the augmentation picture (default: tune-check/<space>/ in the system's temporary folder).")
@click.option("--json", "as_json", is_flag=True, help="The findings as JSON on stdout (nothing else there).")
@click.pass_obj
def command(app: Application, space: str, data: Path | None, epochs: int | None, sets: tuple[str, ...],
            memory_limit: int | None, out: Path | None, as_json: bool) -> None:
    """Check a space and its data as the course's playbook does, before a search.

    \b
      tune check --space digits
      tune check --space cifar10 --data cifar10.tar.gz
      tune check --space my_space.yaml --data ~/pets/ --json

    \b
    1. the data, split as a study would split it: images per class, exact copies across
       splits (a leak into the held-out figures) and within train, one image under two
       labels, blank images, pixel statistics, files skipped or converted on reading;
    2. the loss at initialization is near ln(classes) (or the priors' entropy with prior_bias);
    3. 100 steps on the images (at most 30 s) reach a clearly lower validation loss than a
       model that ignores its input can (the class shares; else images and labels are unrelated);
    4. one batch of 32 images, augmentation and regularization off, is fitted exactly;
    5. the largest configuration of each model family builds, fits --memory-limit, and trains
       one step;
    6. the learning-rate range test: the loss over a sweep of learning rates, a suggested range,
       and a warning when the space's rates lie outside it;
    7. a picture of training images at the space's strongest augmentation (the path is printed).

    Checks 2-6 train the space's reference configuration: its first start point, the other
    parameters at their defaults. Each check says pass, warn or fail with its figures; the exit
    code is 1 when one fails. The test split is read only to hash its images (for copies); no
    model sees it. `tune search` runs checks 1-5 before a new study's first trial."""
    from tuner import config, interrupts
    from tuner.check import failed
    from tuner.ui.checks import preview_writer

    config.check()
    interrupts.say_on_exit("the checks record nothing, and an --out folder made for the picture is removed")
    loaded = requested_space(space, epochs, sets, app.terminal.warn)
    # A folder that cannot be made is said now, exit 2. One --out this command made goes again if
    # the checks cannot run (refused data, Ctrl-C), and stays with its picture when a check fails.
    # The default one is shared by every check of the space, and stays: another check running
    # now may be writing its picture there.
    default = Path(tempfile.gettempdir()) / "tune-check" / loaded.name
    outside_data(out or default, data, "picture's folder", "--out")
    check_room_for_files(out or default, "--out")
    with new_folder(out) if out is not None else contextlib.nullcontext(make_folder(default)) as folder:
        findings = _checked(app, loaded, data, memory_limit, preview_writer(folder), as_json)
    if failures := failed(findings):
        abort(f"{plural(len(failures), 'check')} failed: {', '.join(f.check for f in failures)}", 1)


def _checked(app: Application, space: Any, data: Path | None, memory_limit: int | None, preview: Any,
             as_json: bool) -> list[Any]:
    """The findings, shown as they come (or as JSON on stdout at the end)."""
    from tuner import config
    from tuner.check import run_checks
    from tuner.ui.checks import CheckView

    if as_json:
        findings = run_checks(space, data, config.cache_dir(), memory_limit=memory_limit, preview=preview)
        click.echo(json.dumps({"space": space.name, "dataset": space.dataset,
                               "findings": [f.to_dict() for f in findings]}, indent=1))
        return findings
    with CheckView(app.terminal) as view:
        return run_checks(space, data, config.cache_dir(), memory_limit=memory_limit, on_finding=view.found,
                          preview=preview)
