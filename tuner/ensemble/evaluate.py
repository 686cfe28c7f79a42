"""Greedy ensemble selection on validation predictions, then one evaluation on the test split.

Selection (Caruana et al., 2004: forward selection with replacement, keeping the best prefix)
reads the store's validation predictions and labels only; each candidate is first calibrated by
its own temperature (`calibration.py`), which the ensemble model then applies to its logits, and
a trial trained on flips is averaged with its mirror images where that fits validation better.
`evaluate_on_test` is the one place in `tune` that reads the test split; its result is recorded
in the store, with the ensemble saved as one Keras model, so that asking again needs no second
look at the test set. With a refit (`tuner.ensemble.refit`) the same members, weights and temperatures,
trained again on train + validation, are scored in the same pass and become model.keras.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tuner.ensemble.calibration import fit_temperature, temper
from tuner.errors import UserError
from tuner.training.metrics import accuracy, log_loss
from tuner.store.search_store import SearchStore

METRICS = ("log_loss", "accuracy")


@dataclass(frozen=True)
class Selection:
    members: dict[int, float]  # trial number -> weight (sums to 1)
    metric: str
    val_accuracy: float
    val_loss: float
    best_trial: int
    best_val_accuracy: float
    best_val_loss: float
    candidates: list[int]
    temperatures: dict[int, float] = field(default_factory=dict)  # trial number -> T (1: as trained)
    flips: dict[int, bool] = field(default_factory=dict)  # trial number -> averaged with its mirror images


def greedy_weights(probs: dict[int, np.ndarray], y: np.ndarray, size: int, metric: str = "log_loss") -> dict[int, float]:
    """Forward selection with replacement for `size` steps; the best prefix's member counts."""
    score = (lambda p: log_loss(p, y)) if metric == "log_loss" else (lambda p: -accuracy(p, y))
    total, counts, path = np.zeros_like(next(iter(probs.values()))), {n: 0 for n in probs}, []
    for step in range(1, size + 1):
        trial = min(probs, key=lambda n: (score((total + probs[n]) / step), n))
        total += probs[trial]
        counts[trial] += 1
        path.append((score(total / step), step, dict(counts)))
    _, steps, best = min(path, key=lambda p: (p[0], p[1]))
    return {n: c / steps for n, c in best.items() if c}


def select(store: SearchStore, study: str, top: int = 10, size: int = 20, metric: str = "log_loss") -> Selection:
    """Choose members and weights among the top trials that have a model and predictions."""
    if metric not in METRICS:
        raise UserError(f"unknown ensemble metric '{metric}' (choose from {', '.join(METRICS)})")
    y_val = store.val_labels(study)
    raw, probs, temperatures, flips = {}, {}, {}, {}
    for t in store.top_trials(study, top):
        views = store.val_views(study, t.number)
        if views is not None and views.shape[1] == len(y_val) and store.model_path(study, t.number):
            tta = bool(t.params.get("tta_flip"))
            raw[t.number] = views.mean(axis=0) if tta else views[0]  # the trial's own figures
            probs[t.number], temperatures[t.number], flips[t.number] = _calibrated(views, y_val, tta)
    if not probs:
        raise UserError(f"study '{study}' has no completed trial with a saved model yet")
    weights = greedy_weights(probs, y_val, size, metric)
    mix = sum(w * probs[n] for n, w in weights.items())
    best = max(raw, key=lambda n: (accuracy(raw[n], y_val), -log_loss(raw[n], y_val), -n))  # as trained
    return Selection(weights, metric, accuracy(mix, y_val), log_loss(mix, y_val), best,
                     accuracy(raw[best], y_val), log_loss(raw[best], y_val), sorted(probs),
                     {n: temperatures[n] for n in weights}, {n: flips[n] for n in weights})


def _calibrated(views: np.ndarray, y_val: np.ndarray, tta: bool) -> tuple[np.ndarray, float, bool]:
    """A candidate's calibrated validation probabilities, temperature, and whether it averages its
    mirror images: with mirrors stored (a flip-trained trial), whichever of the two fits better."""
    if len(views) == 1 and tta:  # stored before views were kept: only their average, left as trained
        return views[0], 1.0, True
    fitted = []
    for option in [views[:1], views] if len(views) == 2 else [views]:
        temperature = fit_temperature(option, y_val)
        fitted.append((temper(option, temperature), temperature, len(option) == 2))
    return min(fitted, key=lambda f: log_loss(f[0], y_val))


def with_flip_tta(model: Any) -> Any:
    """The model averaged over the image and its mirror, from built-in layers only (the
    mirror is a fixed anti-diagonal Dense over the width axis), so it loads with plain keras."""
    import keras
    from keras import layers

    height, width, channels = model.input_shape[1:]
    inputs = keras.Input((height, width, channels))
    swapped = layers.Permute((1, 3, 2))(inputs)  # width last
    mirror = layers.Dense(width, use_bias=False, trainable=False, name="mirror")
    flipped = layers.Permute((1, 3, 2))(mirror(swapped))
    mirror.set_weights([np.eye(width, dtype="float32")[::-1]])
    return keras.Model(inputs, layers.Average()([model(inputs), model(flipped)]), name=f"{model.name}_tta")


def with_temperature(model: Any, temperature: float) -> Any:
    """The model with its logits divided by `temperature` before the softmax (built-in layers)."""
    import keras
    from keras import layers

    if temperature == 1.0:
        return model
    logits = model.get_layer("probabilities").input
    tempered = layers.Rescaling(1.0 / temperature, name="temperature")(logits)
    return keras.Model(model.inputs, layers.Activation("softmax", dtype="float32", name="calibrated")(tempered))


def combine(models: dict[int, Any], weights: dict[int, float], tta: dict[int, bool],
            temperatures: dict[int, float] | None = None) -> Any:
    """One Keras model whose output is the weighted mean of its members' (calibrated) probabilities."""
    import keras
    from keras import layers

    first = next(iter(models.values()))
    inputs = keras.Input(first.input_shape[1:], name="pixels")
    outputs = []
    for n, model in models.items():
        model = with_temperature(model, (temperatures or {}).get(n, 1.0))
        model.name = f"trial_{n}"
        member = with_flip_tta(model) if tta[n] else model
        outputs.append(layers.Rescaling(weights[n], name=f"weight_{n}")(member(inputs)))
    out = outputs[0] if len(outputs) == 1 else layers.Add(name="weighted_mean")(outputs)
    return keras.Model(inputs, out, name="ensemble")


def _scores(probs: np.ndarray, y: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    per_class = {name: float(np.mean(probs[y == i].argmax(1) == i)) for i, name in enumerate(class_names) if np.any(y == i)}
    return {"accuracy": accuracy(probs, y), "loss": log_loss(probs, y), "per_class_accuracy": per_class}


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
    trials = {t.number: t for t in store.trials(study)}
    as_trained = {n: bool(trials[n].params.get("tta_flip")) for n in selection.members}
    searched = {n: store.model_path(study, n) for n in selection.members}
    best = selection.best_trial
    variants = {
        "ensemble": _Variant(searched, selection.members, {**as_trained, **selection.flips}, selection.temperatures,
                             "search_ensemble.keras" if refit else "model.keras"),
        "best": _Variant({best: store.model_path(study, best)}, {best: 1.0},
                         {best: bool(trials[best].params.get("tta_flip"))}, None, "best_trial.keras")}
    if refit:
        paths = {n: Path(refit["models"].get(str(n), searched[n])) for n in selection.members}
        variants["refit"] = replace(variants["ensemble"], paths=paths, filename="model.keras")
    return variants


def final_model(record: dict[str, Any]) -> str:
    """Which of a record's test results is the exported model.keras: 'refit' or 'ensemble'."""
    return "refit" if "refit" in record["test"] else "ensemble"


def evaluate_on_test(store: SearchStore, study: str, selection: Selection, x_test: np.ndarray, y_test: np.ndarray,
                     class_names: list[str], refit: dict[str, Any] | None = None) -> dict[str, Any]:
    """Predict the test split with the ensemble, the single best trial and (with `refit`, the
    summary of `tuner.ensemble.refit.refit_members`) the refit ensemble, once; record them all."""
    from tuner.training.backend import load_keras

    load_keras()
    import keras

    keras.config.set_dtype_policy("float32")
    folder = store.new_evaluation_dir(study)
    try:
        results, files = _score_and_save(store, study, selection, refit, x_test, y_test, class_names, folder)
    except BaseException:  # a full disk, a signal: no half-filled folder is left beside the records
        shutil.rmtree(folder, ignore_errors=True)
        raise
    # The record is written after its files, and names them with their checksums: a crash
    # before it leaves the previous record and its own folder as they were.
    record = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "selection": asdict(selection),
              "n_finished": store.count_finished(study), "n_test": int(len(y_test)), "test": results,
              "gain": results["ensemble"]["accuracy"] - results["best"]["accuracy"], "files": files}
    if refit:
        record.update(refit=refit, refit_gain=results["refit"]["accuracy"] - results["ensemble"]["accuracy"])
    try:
        store.add_evaluation(study, record)
    except BaseException:  # a database that refuses the record: its files go with it
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return record


def _score_and_save(store: SearchStore, study: str, selection: Selection, refit: dict[str, Any] | None,
                    x_test: np.ndarray, y_test: np.ndarray, class_names: list[str],
                    folder: Path) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """Each variant's test scores, and its combined model saved in `folder` with its checksum."""
    import keras

    from tuner.training.predictor import predict_padded

    results: dict[str, Any] = {}
    files: dict[str, dict[str, str]] = {}
    for label, variant in _variants(store, study, selection, refit).items():
        models = {n: keras.saving.load_model(variant.paths[n], compile=False) for n in variant.weights}
        model = combine(models, variant.weights, variant.flips, variant.temperatures)
        results[label] = _scores(predict_padded(model, x_test), y_test, class_names)
        store.save_model_file(folder / variant.filename, model)
        files[variant.filename] = store.file_entry(study, folder / variant.filename)
        keras.backend.clear_session(free_memory=True)
    return results, files


def latest_evaluation(store: SearchStore, study: str) -> dict[str, Any] | None:
    evaluations = store.study_attr(study, "evaluations", [])
    return evaluations[-1] if evaluations else None


def evaluation_files(store: SearchStore, study: str, record: dict[str, Any]) -> tuple[Path, Path]:
    """The record's model.keras and best_trial.keras, checked against its checksums."""
    files = record.get("files")
    if not files or "model.keras" not in files or "best_trial.keras" not in files:
        raise UserError(f"study '{study}': its evaluation of {record.get('when')} names no checksummed model "
                        f"files; run `tune ensemble --study {study} --reevaluate`")
    return store.verified_file(study, files["model.keras"]), store.verified_file(study, files["best_trial.keras"])


def stored_space(store: SearchStore, study: str) -> Any:
    from tuner.space.schema import parse_space

    return parse_space(store.meta(study)["space"], f"study {study}")


def run_ensemble(store: SearchStore, study: str, top: int, size: int, metric: str, data: Path | None,
                 cache_dir: Path, refit: bool = False, progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Select on validation data, optionally refit the members on train + validation, then
    evaluate once on the held-out test split and record it."""
    from tuner.data import load_search_data, load_test_data

    selection = select(store, study, top, size, metric)
    space, recorded = stored_space(store, study), store.meta(study)["split"]
    if data is None and Path(recorded["source"]).exists():
        data = Path(recorded["source"])
    search_data, split = load_search_data(space, data, cache_dir)
    if split.fingerprint != recorded["fingerprint"]:
        raise UserError(f"study '{study}': the data at {split.source} does not match the study's split "
                        f"(fingerprint {split.fingerprint}, recorded {recorded['fingerprint']})")
    summary = None
    if refit:
        from tuner.training.backend import configure
        from tuner.ensemble.refit import refit_members

        configure("auto", cache_dir)
        summary = refit_members(store, study, list(selection.members), search_data, space.training.max_epochs,
                                store.evaluation_dir(study) / "refit", progress)
    x_test, y_test = load_test_data(space, data, cache_dir)
    return evaluate_on_test(store, study, selection, x_test, y_test, search_data.class_names, refit=summary)
