"""The one evaluation on the test split: `run_ensemble` is the one place in `tune` that reads
it (`load_test_data`, after the selection and any refit), and `evaluate_on_test` scores it. Its result is recorded in the store as an `Evaluation`, with the ensemble saved as
one Keras model, so that asking again needs no second look at the test set. With a refit
(`tuner.ensemble.refit`) the same members, weights and temperatures, trained again on
train + validation, are scored in the same pass and become model.keras.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from tuner import interrupts
from tuner.ensemble.assembly import combine
from tuner.ensemble.selection import select
from tuner.errors import UserError
from tuner.store import Evaluation, FileEntry, SearchStore, Selection
from tuner.store.stored import recorded
from tuner.store.studies import check_same_classes
from tuner.training.metrics import accuracy, balanced_accuracy, class_accuracy, confusion_matrix, log_loss

if TYPE_CHECKING:
    from tuner.data import SearchData
    from tuner.space.schema import Space


def _scores(probs: np.ndarray, y: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy and loss; per class (by name) its accuracy and image count;
    the confusion matrix (rows: true class, columns: predicted, in `class_names` order). A class
    the test split lacks has no accuracy and a count of 0."""
    accuracies = class_accuracy(probs, y)
    per_class = {name: a for name, a in zip(class_names, accuracies) if a is not None}
    counts = np.bincount(y, minlength=len(class_names)).tolist()
    return {"accuracy": accuracy(probs, y), "balanced_accuracy": balanced_accuracy(probs, y), "loss": log_loss(probs, y),
            "per_class_accuracy": per_class, "per_class_count": dict(zip(class_names, counts)),
            "confusion": confusion_matrix(probs, y)}


@dataclass(frozen=True)
class _Variant:
    """One model the test pass scores: whose files, with which weights, mirrors and temperatures."""

    paths: dict[int, Path]
    weights: dict[int, float]
    flips: dict[int, bool]
    temperatures: dict[int, float] | None
    filename: str


def _variants(store: SearchStore, study: str, selection: Selection, refit: dict[str, Any] | None) -> dict[str, _Variant]:
    """The best trial as trained, the ensemble of search models and, after a refit, the same
    ensemble of refit models (then the one saved as model.keras)."""
    trials = {t.number: t for t in store.trials.all(study)}
    as_trained = {n: bool(trials[n].params.get("tta_flip")) for n in selection.members}
    searched = {n: store.artifacts.model_path(study, n) for n in selection.members}
    best = selection.best_trial
    variants = {
        "ensemble": _Variant(searched, selection.members, {**as_trained, **selection.flips}, selection.temperatures,
                             "search_ensemble.keras" if refit else "model.keras"),
        "best": _Variant({best: store.artifacts.model_path(study, best)}, {best: 1.0},
                         {best: bool(trials[best].params.get("tta_flip"))}, None, "best_trial.keras")}
    if refit:
        paths = {n: Path(refit["models"].get(str(n), searched[n])) for n in selection.members}
        variants["refit"] = replace(variants["ensemble"], paths=paths, filename="model.keras")
    return variants


def evaluate_on_test(store: SearchStore, study: str, selection: Selection, x_test: np.ndarray, y_test: np.ndarray,
                     class_names: list[str], refit: dict[str, Any] | None = None,
                     test_reads: int | None = None) -> Evaluation:
    """Predict the test split with the ensemble, the single best trial and (with `refit`, the
    summary of `tuner.ensemble.refit.refit_members`) the refit ensemble, once; record them all."""
    from tuner.keras_backend import load_keras

    load_keras()
    import keras

    keras.config.set_dtype_policy("float32")
    folder = store.evaluations.new_folder(study)
    with interrupts.removed_on_exit(folder):  # a Ctrl-C's exit, before the record names it
        try:
            results, files = _score_and_save(store, study, selection, refit, x_test, y_test, class_names, folder)
        except BaseException:  # a full disk, a signal: no half-filled folder is left beside the records
            shutil.rmtree(folder, ignore_errors=True)
            raise
        # The record is written after its files, and names them with their checksums: a crash
        # before it leaves the previous record and its own folder as they were.
        evaluation = Evaluation(when=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                selection=selection, n_finished=store.trials.count_finished(study),
                                n_test=int(len(y_test)), test=results, files=files, refit=refit,
                                class_names=list(class_names), test_reads=test_reads)
        with interrupts.holding_signals():  # the record and its folder kept, or neither
            try:
                store.evaluations.add(study, evaluation)
            except BaseException:  # a database that refuses the record: its files go with it
                shutil.rmtree(folder, ignore_errors=True)
                raise
            interrupts.kept_on_exit(folder)
    return evaluation


def _score_and_save(store: SearchStore, study: str, selection: Selection, refit: dict[str, Any] | None,
                    x_test: np.ndarray, y_test: np.ndarray, class_names: list[str],
                    folder: Path) -> tuple[dict[str, Any], dict[str, FileEntry]]:
    """Each variant's test scores, and its combined model saved in `folder` with its checksum."""
    import keras

    from tuner.training.predictor import predict_padded

    results: dict[str, Any] = {}
    files: dict[str, FileEntry] = {}
    for label, variant in _variants(store, study, selection, refit).items():
        models = {n: keras.saving.load_model(variant.paths[n], compile=False) for n in variant.weights}
        model = combine(models, variant.weights, variant.flips, variant.temperatures)
        results[label] = _scores(predict_padded(model, x_test), y_test, class_names)
        store.artifacts.save_model_file(folder / variant.filename, model)
        files[variant.filename] = store.artifacts.file_entry(study, folder / variant.filename)
        keras.backend.clear_session(free_memory=True)
    return results, files


def stored_space(store: SearchStore, study: str) -> Space:
    from tuner.space.schema import parse_space

    return parse_space(recorded(store.studies.meta(study), study, "space"), f"study {study}")


def _split(store: SearchStore, study: str) -> dict[str, Any]:
    return recorded(store.studies.meta(study), study, "split")


def run_ensemble(store: SearchStore, study: str, top: int, size: int, metric: str, data: Path | None,
                 cache_dir: Path, refit: bool = False, progress: Callable[[str], None] = lambda line: None,
                 intro: str | None = None) -> Evaluation:
    """Select on validation data, optionally refit the members on train + validation, then
    evaluate once on the held-out test split and record it. `intro` is said once the study and
    its data are found fit to evaluate (a refusal is its one line)."""
    from tuner.data import load_test_data

    selection = select(store, study, top, size, metric)
    space = stored_space(store, study)
    data = data if data is not None else recorded_source(store, study)
    search_data = search_data_of(store, study, space, data, cache_dir)
    _check_model_files(store, study, selection)
    if intro:
        progress(intro)
    summary = _refit(store, study, selection, search_data, space, cache_dir, progress) if refit else None
    reads = store.evaluations.count_test_read(study)
    interrupts.note_for_exit(f"except its test split's read count, now {reads} (a read is counted before it begins)")
    x_test, y_test = load_test_data(space, data, cache_dir)
    _same_test_split(store, study, x_test, y_test)
    return evaluate_on_test(store, study, selection, x_test, y_test, search_data.class_names, refit=summary,
                            test_reads=reads)


def _check_model_files(store: SearchStore, study: str, selection: Selection) -> None:
    """Each model the test pass loads is a whole .keras file, checked before the read is counted:
    a truncated one failed in the middle of the pass, as an internal error."""
    import zipfile

    for number in sorted({selection.best_trial, *selection.members}):
        path = store.artifacts.model_path(study, number)
        try:
            with zipfile.ZipFile(path) as archive:
                whole = {"config.json", "model.weights.h5"} <= set(archive.namelist()) and archive.testzip() is None
        except (OSError, zipfile.BadZipFile, TypeError):
            whole = False
        if not whole:
            raise UserError(f"study '{study}': trial {number}'s model file {path} is missing or not a whole Keras model "
                            f"(damaged or cut short); nothing was evaluated, the test split was not read")


def recorded_source(store: SearchStore, study: str) -> Path | None:
    """Where the study's data came from, if it is still there (else the usual lookup). A user's
    folder has no other place to be looked for: gone (moved, or a relative path read from
    another folder) it is one line naming it, not the folder space's "needs --data PATH"."""
    source = Path(_split(store, study)["source"])
    if source.exists():
        return source
    if store.studies.meta(study).get("dataset") == "folder":
        raise UserError(f"study '{study}': its data was read from {source}, which is not there now (moved, or a "
                        f"relative path from another folder); pass --data PATH where it is")
    return None


def search_data_of(store: SearchStore, study: str, space: Space, data: Path | None, cache_dir: Path) -> SearchData:
    """The study's train and validation splits, refused unless they are the ones it searched."""
    from tuner.data import load_search_data

    studied = _split(store, study)
    search_data, split = load_search_data(space, data, cache_dir)
    if split.fingerprint != studied["fingerprint"]:
        raise UserError(f"study '{study}': the data at {split.source} does not match the study's split "
                        f"(fingerprint {split.fingerprint}, recorded {studied['fingerprint']})")
    # The test split as far as its labels tell (its images are read once, by the evaluation):
    # another test set would be scored and recorded as this study's.
    now, then = split.class_counts.get("test"), (studied.get("class_counts") or {}).get("test")
    if split.n_test != studied.get("n_test", split.n_test) or (then is not None and now != then):
        raise UserError(f"study '{study}': the test split at {split.source} is not the study's ({split.n_test} images, "
                        f"per class {now}; recorded {studied.get('n_test')}, per class {then}); nothing was evaluated")
    check_same_classes(study, studied, split.class_names, split.source, "evaluated")
    return search_data


def _same_test_split(store: SearchStore, study: str, x_test: np.ndarray, y_test: np.ndarray) -> None:
    """The test split's images and labels are the study's: fingerprinted when it was made (a
    study made before that: at its first evaluation). Other images (a test image swapped for
    another of its class keeps every count `search_data_of` compares) are refused, so a record
    never scores another test set as this study's."""
    from tuner.data import fingerprint_of

    now = fingerprint_of(x_test, y_test)
    then = _split(store, study).get("test_fingerprint") or store.evaluations.test_fingerprint(study)
    if then is None:
        store.evaluations.record_test_fingerprint(study, now)
    elif now != then:
        raise UserError(f"study '{study}': the test split's images are not the ones the study was made with "
                        f"(fingerprint {now}, recorded {then}); nothing was evaluated (the read is counted)")


def _refit(store: SearchStore, study: str, selection: Selection, search_data: SearchData, space: Space, cache_dir: Path,
           progress: Callable[[str], None]) -> dict[str, Any]:
    from tuner.ensemble.refit import refit_members
    from tuner.training.backend import configure

    configure("auto", cache_dir)
    return refit_members(store, study, list(selection.members), search_data, space.training.max_epochs,
                         store.evaluations.folder(study) / "refit", progress)
