"""Greedy ensemble selection, the single test evaluation, and the export."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tuner.ensemble.selection import greedy_weights, select
from tuner.search.observer import QuietObserver
from tuner.search.request import SearchRequest
from tuner.search.run import run_search
from tuner.store import SearchStore


def test_greedy_weights_prefer_complementary_models():
    y = np.array([0, 1, 0, 1])
    onehot = np.eye(2)[y]
    a = np.where(np.arange(4)[:, None] < 2, onehot * 0.9 + 0.05, 0.5)  # right on the first half, unsure after
    b = np.where(np.arange(4)[:, None] >= 2, onehot * 0.9 + 0.05, 0.5)  # the reverse
    bad = 1 - onehot * 0.9 - 0.05
    weights = greedy_weights({0: a, 1: b, 2: bad}, y, size=10)
    assert set(weights) == {0, 1} and weights[0] == pytest.approx(0.5) and sum(weights.values()) == pytest.approx(1)


def test_greedy_weights_keep_the_best_prefix():
    y = np.array([0, 0, 1])
    good = np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9]])
    worse = np.array([[0.6, 0.4], [0.6, 0.4], [0.4, 0.6]])
    assert greedy_weights({0: good, 1: worse}, y, size=5) == {0: 1.0}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One tiny finished study shared by the tests below."""
    from tuner.space.files import load_space
    from tests.conftest import TINY_SPACE

    results = tmp_path_factory.mktemp("ens") / "results"
    store = SearchStore(None, results, create=True)
    request = SearchRequest(load_space(str(TINY_SPACE)), "s", 4, cache_dir=results / "cache", seed=1)
    run_search(store, request, QuietObserver())
    return store


@pytest.mark.slow
def test_selection_reads_validation_data_only(searched, monkeypatch):
    import tuner.data as data

    def forbidden(*args, **kwargs):
        raise AssertionError("selection must not load any data split")

    monkeypatch.setattr(data, "load_test_data", forbidden)
    monkeypatch.setattr(data, "load_search_data", forbidden)
    selection = select(searched, "s", top=10, size=10)
    assert selection.members and abs(sum(selection.members.values()) - 1) < 1e-9
    assert set(selection.members) <= set(selection.candidates)


@pytest.mark.slow
def test_test_labels_do_not_change_the_selection(searched, monkeypatch):
    import tuner.ensemble.evaluate as ensemble

    real = ensemble.evaluate_on_test
    seen = []

    def spy(store, study, selection, x_test, y_test, names, **kw):
        seen.append(selection)
        return real(store, study, selection, x_test, np.random.default_rng(len(seen)).permutation(y_test), names, **kw)

    monkeypatch.setattr(ensemble, "evaluate_on_test", spy)
    cache = searched.results_dir / "cache"
    ensemble.run_ensemble(searched, "s", 10, 10, "log_loss", None, cache)
    ensemble.run_ensemble(searched, "s", 10, 10, "log_loss", None, cache)
    assert seen[0] == seen[1]  # different test labels, same members and weights


@pytest.mark.slow
def test_evaluation_is_recorded_and_export_reproduces_it(searched, tmp_path):
    from tuner.ensemble.evaluate import run_ensemble
    from tuner.ensemble.export import export_study

    before = len(searched.studies.attr("s", "evaluations", []))
    record = run_ensemble(searched, "s", 10, 20, "log_loss", None, searched.results_dir / "cache")
    assert len(searched.studies.attr("s", "evaluations")) == before + 1
    assert searched.evaluations.latest("s") == record
    assert set(record.test) == {"ensemble", "best"} and record.n_test == 360
    assert len(record.test["ensemble"]["per_class_accuracy"]) == 10
    out = export_study(searched, "s", record, tmp_path / "export")
    assert {p.name for p in out.iterdir()} == {"model.keras", "best_trial.keras", "config.yaml", "metrics.json",
                                               "history.json", "README.md", "labels.json", "input.json"}
    assert json.loads((out / "labels.json").read_text()) == {str(i): str(i) for i in range(10)}
    spec = json.loads((out / "input.json").read_text())
    assert (spec["height"], spec["width"], spec["channels"], spec["color_mode"]) == (8, 8, 1, "grayscale")
    config = (out / "config.yaml").read_text()
    assert "params:" in config and "type:" not in config  # every parameter fixed: the best trial as a space
    readme = (out / "README.md").read_text()
    assert "import keras" in readme and f"{100 * record.test['ensemble']['accuracy']:.2f}%" in readme
    # One fresh process with nothing but Keras (and Pillow): it loads both models and reproduces the
    # recorded test accuracy, then runs the README's own snippet, as written, on an image file.
    snippet = readme.split("```python\n")[1].split("```")[0]
    (tmp_path / "snippet.py").write_text(snippet)
    script = f"""
import sys
sys.modules["tuner"] = None  # prove that loading needs nothing of tune
import json, subprocess, numpy as np, keras
from PIL import Image
from sklearn.model_selection import train_test_split
from sklearn.datasets import load_digits
d = load_digits()
x = np.round(d.images * (255 / 16)).astype(np.uint8)[..., None]
_, test = train_test_split(np.arange(len(x)), test_size=0.2, random_state=0, stratify=d.target)
test = np.sort(test)
for name, key in (("model.keras", "ensemble"), ("best_trial.keras", "best")):
    model = keras.saving.load_model(name)
    acc = float(np.mean(model.predict(x[test], verbose=0).argmax(1) == d.target[test]))
    print(json.dumps([key, acc]))
Image.fromarray(x[test[0], ..., 0]).save("digit.png")
shown = subprocess.run([sys.executable, {str(tmp_path / "snippet.py")!r}, "digit.png"], capture_output=True, text=True,
                       check=True).stdout.split()
probs = keras.saving.load_model("model.keras").predict(x[test[:1]].astype("float32"), verbose=0)[0]
print(json.dumps(["snippet", shown[0], float(shown[1]), str(int(probs.argmax())), float(probs.max())]))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=out,
                          env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = {row[0]: row[1:] for row in (json.loads(line) for line in proc.stdout.splitlines() if line.startswith("["))}
    assert got["ensemble"][0] == pytest.approx(record.test["ensemble"]["accuracy"], abs=1e-9)
    assert got["best"][0] == pytest.approx(record.test["best"]["accuracy"], abs=1e-9)
    name, probability, expected, expected_probability = got["snippet"]
    assert name == expected and probability == pytest.approx(expected_probability, abs=1e-4)


def test_temperature_fit_recovers_a_known_miscalibration():
    from tuner.ensemble.calibration import fit_temperature, temper

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 10))
    truth = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(10, p=p) for p in truth])  # labels drawn from the true probabilities
    shy = np.exp(logits / 2.5) / np.exp(logits / 2.5).sum(1, keepdims=True)  # under-confident by 2.5
    t = fit_temperature(shy[None], y)
    assert t == pytest.approx(1 / 2.5, rel=0.1)
    np.testing.assert_allclose(temper(shy[None], t).argmax(1), shy.argmax(1))  # one view: top class kept
    np.testing.assert_allclose(temper(np.stack([shy, truth]), 1.0), (shy + truth) / 2, atol=1e-6)


@pytest.mark.parametrize("images, right, smoothing", [
    (10, 10, 0.0),  # a 60-image folder's validation split, every image right: sharper than 11/12 already
    (10, 10, 0.4),  # less sure than 11/12: sharpened to it
    (86, 86, 0.3),  # a label-smoothed model, every image right: under-confident as trained
    (500, 500, 0.0),
    (49, 40, 0.0),  # errors to weigh: the log-loss fit
    (500, 450, 0.3),
])
def test_a_temperature_sets_an_all_right_models_confidence_to_laplaces_estimate(images, right, smoothing):
    """Every validation image right: the log-loss falls without limit as the temperature goes to 0
    (the bound, 0.05, on 10 images); the confidence is set to (n + 1) / (n + 2) instead."""
    from tuner.ensemble.calibration import BOUNDS, fit_temperature, temper

    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, images)
    predicted = np.where(np.arange(images) < right, y, (y + 1) % 10)
    probs = np.full((images, 10), 0.05) + 0.5 * np.eye(10)[predicted]
    probs = (1 - smoothing) * probs / probs.sum(axis=1, keepdims=True) + smoothing / 10
    t = fit_temperature(probs[None], y)
    assert BOUNDS[0] < t < BOUNDS[1]
    confidence = float(temper(probs[None], t).max(axis=-1).mean())
    as_trained = float(probs.max(axis=-1).mean())
    if right == images:  # sharpened to Laplace's estimate, never softened below how it was trained
        assert confidence == pytest.approx(max((images + 1) / (images + 2), as_trained), abs=1e-3)
        assert t <= 1.0
    else:
        assert confidence < 0.999  # the loss fit: an error keeps it from the bound


@settings(max_examples=100, deadline=None, derandomize=True)
@given(images=st.integers(1, 300), confidence=st.floats(0.11, 0.999), wrong=st.floats(0.0, 0.5),
       views=st.integers(1, 2))
def test_a_fitted_temperature_lies_in_its_bounds_and_never_makes_all_right_images_surer_than_laplace(
        images, confidence, wrong, views):
    from tuner.ensemble.calibration import BOUNDS, fit_temperature, temper

    y = np.arange(images) % 10
    predicted = np.where(np.arange(images) < round(images * (1 - wrong)), y, (y + 1) % 10)
    probs = np.full((images, 10), (1 - confidence) / 9)
    probs[np.arange(images), predicted] = confidence
    stacked = np.stack([probs] * views)
    t = fit_temperature(stacked, y)
    assert BOUNDS[0] <= t <= BOUNDS[1]
    if predicted.tolist() == y.tolist():  # never surer than Laplace's estimate, unless trained so
        surer = max((images + 1) / (images + 2), float(temper(stacked, 1.0).max(axis=-1).mean()))
        assert float(temper(stacked, t).max(axis=-1).mean()) <= surer + 1e-3 and t <= 1.0


def test_ensemble_model_computes_what_the_selection_scored():
    """Temperature per branch, then the flip average: the Keras model matches `temper` on the views."""
    import keras

    from tuner.ensemble.calibration import temper
    from tuner.ensemble.assembly import combine
    from tuner.training.model import build_model
    from tuner.space.params import complete_params

    keras.utils.set_random_seed(0)
    model = build_model(complete_params({"depth": 1, "width": 4, "logit_scale": 4.0}), (8, 8, 1), 10)
    x = np.random.default_rng(1).integers(0, 256, (16, 8, 8, 1)).astype("float32")
    views = np.stack([model.predict(x, verbose=0), model.predict(x[:, :, ::-1], verbose=0)])
    ensemble = combine({3: model}, {3: 1.0}, {3: True}, {3: 0.4})
    np.testing.assert_allclose(ensemble.predict(x, verbose=0), temper(views, 0.4), atol=1e-5)


def test_a_member_takes_its_mirror_images_only_where_they_help():
    from tuner.ensemble.selection import _calibrated

    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 2000)
    def noisy(scale):  # probabilities that favour the true class by `scale` (0: no information)
        logits = rng.normal(0, 1, (2000, 10)) + scale * np.eye(10)[y]
        return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    plain = noisy(2.0)
    _, _, helped = _calibrated(np.stack([plain, noisy(2.0)]), y, tta=False)  # an independent second look
    _, _, hurt = _calibrated(np.stack([plain, noisy(0.0)]), y, tta=False)  # a mirror that knows nothing
    assert helped and not hurt
    probs, temperature, flips = _calibrated(np.stack([plain]), y, tta=False)  # no mirrors stored
    assert not flips and probs.shape == (2000, 10) and temperature > 0


@pytest.mark.slow
def test_refit_trains_the_members_on_train_and_validation_before_the_test(searched, monkeypatch):
    """Each member once, on both splits, with its trial's seed, best epoch count and schedule
    length; then one test pass that scores the refit ensemble beside the searched one, whose
    saved model.keras computes the recorded figure. The choices made on validation stay."""
    import keras

    import tuner.data as data
    import tuner.training.fit as training
    from tuner.ensemble.evaluate import run_ensemble, stored_space
    from tuner.ensemble.selection import select

    events, real_fit, real_test = [], training.train_final, data.load_test_data

    def fit_spy(params, x, y, n_classes, **kw):
        events.append(("fit", len(x), kw))
        return real_fit(params, x, y, n_classes, **kw)

    def test_spy(*args, **kw):
        events.append(("test",))
        return real_test(*args, **kw)

    monkeypatch.setattr(training, "train_final", fit_spy)
    monkeypatch.setattr(data, "load_test_data", test_spy)
    record = run_ensemble(searched, "s", 10, 20, "log_loss", None, searched.results_dir / "cache", refit=True)
    split, trials = searched.studies.meta("s")["split"], {t.number: t for t in searched.trials.all("s")}
    members = list(select(searched, "s", 10, 20).members)
    assert record.selection.members == select(searched, "s", 10, 20).members
    assert [e[0] for e in events] == ["fit"] * len(members) + ["test"]  # the test split is read after every refit
    for (_, n_images, kw), n in zip(events, members):
        assert n_images == split["n_train"] + split["n_val"] == record.refit["n_images"]
        assert kw["epochs"] == trials[n].best_epoch + 1 and kw["seed"] == trials[n].seed
        assert kw["max_epochs"] == trials[n].max_epochs == 2
    assert set(record.test) == {"best", "ensemble", "refit"} and not record.refit["failed"]
    assert sorted(map(int, record.refit["models"])) == sorted(members)
    x_test, y_test = real_test(stored_space(searched, "s"), None, searched.results_dir / "cache")

    def accuracy_of(name: str) -> float:  # the saved file, scored here: a second look, not the code's own
        model = keras.saving.load_model(searched.artifacts.verified_file("s", record.files[name]), compile=False)
        return float(np.mean(model.predict(x_test, verbose=0).argmax(1) == y_test))

    refit, searched_ensemble = accuracy_of("model.keras"), accuracy_of("search_ensemble.keras")
    assert refit == pytest.approx(record.test["refit"]["accuracy"], abs=1e-9)
    assert record.refit_gain == pytest.approx(refit - searched_ensemble, abs=1e-9)



@pytest.mark.slow
def test_a_member_whose_refit_fails_keeps_its_search_model(searched, monkeypatch):
    import tuner.training.fit as training
    from tuner.errors import TrialFailed
    from tuner.ensemble.evaluate import run_ensemble

    def diverge(*args, **kw):
        raise TrialFailed("training loss became nan at epoch 1")

    monkeypatch.setattr(training, "train_final", diverge)
    record = run_ensemble(searched, "s", 10, 20, "log_loss", None, searched.results_dir / "cache", refit=True)
    assert set(record.refit["failed"]) == set(map(str, record.selection.members)) and not record.refit["models"]
    assert record.test["refit"] == record.test["ensemble"]  # every member as searched: the same ensemble



@pytest.mark.parametrize("space_name", ["cifar10", "fashion_mnist", "photos", "digits"])
def test_an_exported_config_of_a_start_point_is_a_space_that_fixes_every_value(space_name):
    """A best trial that was a start point: the export's config.yaml carried the space's `start:`
    list beside every value fixed, and `tune search --space config.yaml` refused it ("start[0].
    learning_rate: is fixed by the space")."""
    import yaml

    from tuner.ensemble.export import best_config
    from tuner.space.files import load_space
    from tuner.space.schema import parse_space
    from tuner.store import TrialRecord, TrialState

    space = load_space(space_name)
    params = space.complete(space.start[0] if space.start else {})
    best = TrialRecord(number=3, state=TrialState.COMPLETE, value=0.9, params=params)
    config = yaml.safe_load(yaml.safe_dump(best_config({"space": space.to_dict()}, best, "s"), sort_keys=False))
    again = parse_space(config, "config.yaml")
    assert "start" not in config and not again.start and not again.searched()
    assert again.complete({}) == params


@pytest.mark.parametrize("reason, epochs, said", [
    (None, 15, ""),
    (None, 1, "; it was given 3 of the space's 15 epochs and trained 1"),  # KerasTuner's Hyperband bracket
    ("shortened: 1 of 20 epochs on a subset of 6,900 training images (69 of 100 batches), for a first result soon "
     "after the start", 1, "; it trained 1 epoch (shortened: 1 of 20 epochs on a subset of 6,900 training images (69 "
                           "of 100 batches), for a first result soon after the start)"),
    ("stopped at the search's deadline (--timeout)", 7, "; it trained 7 epochs (stopped at the search's deadline (--timeout))"),
])
def test_the_exports_readme_says_how_the_best_trial_trained_when_not_as_its_parameters_ask(reason, epochs, said):
    """A best trial trained on a subset said so in `tune best`, not in the README beside its model."""
    from tuner.ensemble.export import _how_trained
    from tuner.store import TrialRecord

    best = TrialRecord(3, "pruned", 0.5, {}, reason=reason, history={"val_loss": [1.0] * epochs},
                       max_epochs=3 if "given" in said else 15)
    assert _how_trained(best, 15) == said


@pytest.mark.slow
def test_an_ensemble_with_a_mirrored_member_predicts_uint8_images_without_tensorflows_error_line():
    """TensorFlow's "oneDNN supports DT_UINT8 only on platforms with AVX-512" reached stderr in the
    ensemble step: a mirrored member took the uint8 pixels as they are."""
    import subprocess
    import sys
    from pathlib import Path

    script = """
import sys
sys.path.insert(0, sys.argv[1])
from tuner import config
config.quiet_tensorflow()
import numpy as np
from tuner.ensemble.assembly import combine
from tuner.space.files import load_space
from tuner.training.model import build_model
from tuner.training.predictor import predict_padded
member = build_model(load_space("fashion_mnist").complete({}), (28, 28, 1), 10)
x = np.random.default_rng(0).integers(0, 256, (100, 28, 28, 1)).astype(np.uint8)
mirrored = predict_padded(combine({1: member}, {1: 1.0}, {1: True}), x)
by_hand = (predict_padded(member, x) + predict_padded(member, x[:, :, ::-1])) / 2
print("GAP", float(np.abs(mirrored - by_hand).max()))
"""
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", script, root], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert float(proc.stdout.split("GAP ")[1]) < 1e-6
    assert "DT_UINT8" not in proc.stderr
