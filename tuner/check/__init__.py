"""`run_checks`: the training playbook of the course, run before a search spends its budget.

1. the data audit (`audit`): the splits as the study makes them;
2-5. on the space's reference configuration (`playbook`): the loss at initialization, an
   input-independent baseline, overfitting one batch, and the largest configurations the space
   can propose (they build, fit the memory, and one step runs);
6. the learning-rate range test (`playbook`);
7. training images after the space's strongest augmentation, as a picture (`preview`).

Each check gives a `Finding`: pass, warn or fail with its figures. The test split is read here
only to hash its images for copies of other splits' images; nothing is trained or scored on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from tuner.check.audit import Splits, audit
from tuner.check.findings import COST_CHECK, Finding, Status, failed, first_line
from tuner.check.preview import Writer, augmentation
from tuner.data import SearchData, load_all_splits
from tuner.space.schema import Space

__all__ = ["COST_CHECK", "Finding", "Status", "failed", "run_checks"]


def load_splits(space: Space, data_path: Path | None, cache_dir: Path) -> tuple[SearchData, Splits]:
    data, split, (x_test, y_test) = load_all_splits(space, data_path, cache_dir)
    return data, Splits({"train": data.x_train, "validation": data.x_val, "test": x_test},
                        {"train": data.y_train, "validation": data.y_val, "test": y_test},
                        list(data.class_names), tuple(split.notes))


def run_checks(space: Space, data_path: Path | None, cache_dir: Path, *, memory_limit: int | None = None,
               on_finding: Callable[[Finding], None] | None = None, preview: Writer | None = None,
               quick: bool = False) -> list[Finding]:
    """The checks on the space and its data, in order; `on_finding` is told each as it comes.
    `quick`: checks 1-5 only (what a search runs first), else also the learning-rate range test
    and, given a `preview` writer, the augmentation picture."""
    from tuner.check import playbook

    found: list[Finding] = []

    def keep(*findings: Finding) -> None:
        for finding in findings:
            found.append(finding)
            if on_finding is not None:
                on_finding(finding)

    data, splits = load_splits(space, data_path, cache_dir)
    keep(*audit(splits))
    del splits  # the test images: hashed, no longer needed
    _start_keras(cache_dir)
    seed, reference = space.training.seed, playbook.reference_params(space)
    keep(_guarded(COST_CHECK, lambda: playbook.trial_cost(reference, data)))
    for name, check in (("loss at initialization", playbook.initialization),
                        ("input-independent baseline", playbook.baseline), ("overfit one batch", playbook.one_batch)):
        keep(_guarded(name, lambda: check(reference, data, seed)))
    # Never above what is free: the step runs in this process, and past it the process is killed.
    keep(*playbook.largest(space, reference, data, seed, min(memory_limit or 2**62, _available_memory())))
    if quick:
        return found
    keep(_guarded("learning-rate range", lambda: playbook.learning_rates(space, reference, data, seed)))
    if preview is not None:
        keep(_guarded("augmentation preview", lambda: augmentation(space, reference, data, seed, preview)))
    return found


def _guarded(name: str, check: Callable[[], Finding]) -> Finding:
    """A check that raises has found a pipeline that breaks: a fail with the error's first line."""
    try:
        return check()
    except Exception as e:
        return Finding(name, Status.FAIL, f"could not run: {type(e).__name__}: {first_line(e)}")


def _start_keras(cache_dir: Path) -> None:
    from tuner.training.backend import configure

    configure("auto", cache_dir)


def _available_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().available)
