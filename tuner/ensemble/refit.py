"""`refit_members`: each ensemble member trained again on train + validation, before the test.

A search model learned from the training split only; the validation split served to choose it,
its ensemble weight, temperature and mirror option. Once those are chosen the validation images
can train too (KerasTuner's guide does this by hand after a search; AutoGluon's `refit_full`):
each member is trained again with its parameters and seed on both splits, for its best epoch + 1
epochs of its own schedule, so its learning rate per epoch is the trial's. The choices made on
validation stay as they were: no held-out data is left to revisit them. One check remains: having
trained on the validation images, a refit model must fit them at least as well as its search model
predicted them unseen; one that does not (an unlucky or unstable run) is dropped for its search
model. The test split is not read here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tuner.wording import plural
from tuner.data import SearchData
from tuner.errors import TrialFailed
from tuner.space.params import complete_params
from tuner.training.metrics import accuracy
from tuner.store import SearchStore, TrialRecord, migrate

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RefitJob:
    """What one member's refit trains: its trial's parameters and seed, for `epochs` of a
    `max_epochs` schedule (and, for a plateau schedule, the learning rates it ran)."""

    trial: int
    params: dict[str, Any]
    seed: int
    epochs: int
    max_epochs: int
    learning_rates: list[float]


def refit_job(record: TrialRecord, space_max_epochs: int) -> RefitJob:
    gap = migrate.cannot_retrain(record.seed, record.best_epoch)
    if gap:
        raise TrialFailed(gap)
    return RefitJob(record.number, complete_params(record.params), record.seed, record.best_epoch + 1,
                    migrate.epoch_budget(record.max_epochs, space_max_epochs), list(record.history.get("lr", [])))


def refit_members(store: SearchStore, study: str, members: list[int], data: SearchData, space_max_epochs: int,
                  folder: Path, progress: Progress = lambda line: None) -> dict[str, Any]:
    """Train each member on train + validation and save it as `folder/trial_<n>.keras`. A member
    whose refit fails (its loss diverged, or `check_fit`) keeps its search model; the returned
    summary says which and why, with each member's epochs and seconds."""
    from tuner.training.memory import free_memory
    from tuner.training.fit import train_final

    trials = {t.number: t for t in store.trials.all(study)}
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    summary: dict[str, Any] = {"n_images": int(len(x)), "models": {}, "epochs": {}, "seconds": {}, "failed": {}}
    for i, number in enumerate(members, 1):
        start = time.perf_counter()
        try:
            job = refit_job(trials[number], space_max_epochs)
            model = train_final(job.params, x, y, data.n_classes, epochs=job.epochs, max_epochs=job.max_epochs,
                                seed=job.seed, learning_rates=job.learning_rates)
            check_fit(model, data, store.artifacts.val_views(study, number))
        except TrialFailed as e:
            summary["failed"][str(number)] = str(e)
            summary["seconds"][str(number)] = round(time.perf_counter() - start, 2)
            free_memory()
            progress(f"refit {i}/{len(members)}: trial {number} not used ({e}); its search model stays")
            continue
        seconds = time.perf_counter() - start
        path = folder / f"trial_{number}.keras"
        store.artifacts.save_model_file(path, model)
        del model
        free_memory()
        summary["models"][str(number)], summary["epochs"][str(number)] = str(path), job.epochs
        summary["seconds"][str(number)] = round(seconds, 2)
        progress(f"refit {i}/{len(members)}: trial {number}, {plural(job.epochs, 'epoch')} on {plural(len(x), 'image')}, {seconds:.1f} s")
    return summary


def check_fit(model: Any, data: SearchData, search_views: np.ndarray | None) -> None:
    """Raise TrialFailed if the refit model fits the validation images, which it trained on, clearly
    worse than its search model predicted them unseen (both without mirror images). Clearly: by
    more than two binomial standard errors, so that two near-equal under-trained models (a 2-epoch
    test, say) are not told apart by noise."""
    from tuner.training.predictor import predict_padded

    if search_views is None:
        return
    refit, searched = accuracy(predict_padded(model, data.x_val), data.y_val), accuracy(search_views[0], data.y_val)
    if refit < searched - 2 * math.sqrt(searched * (1 - searched) / len(data.y_val)):
        raise TrialFailed(f"it fits the validation images it trained on worse ({100 * refit:.2f}%) than its search "
                          f"model predicted them unseen ({100 * searched:.2f}%)")
