"""A space's `training.objective` ranks the trials and is what the samplers, the pruner, the
study's direction and the ensemble's best trial follow, for both engines; on imbalanced classes
the leaderboard shows balanced accuracy and the classes a trial never predicts, and the test
evaluation records a confusion matrix. Real searches through `tune`, on an imbalanced image
folder made from scikit-learn's digits (zeros 12x the twos). The expected figures come from
scikit-learn, not from `tune`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from sklearn import metrics as sk
from sklearn.datasets import load_digits

from tests.conftest import run_main
from tuner.store import SearchStore

pytestmark = pytest.mark.slow

COUNTS = {"digit0": 120, "digit1": 40, "digit2": 10}  # images per class folder (sorted: label order)


def _folder(root: Path) -> Path:
    digits = load_digits()
    for label, (name, n) in enumerate(COUNTS.items()):
        (root / name).mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == label][:n]):
            Image.fromarray((image * 255 / 16).astype(np.uint8), mode="L").save(root / name / f"{i}.png")
    return root


def _space(path: Path, objective: str, **params) -> Path:
    space = {"name": "imbalanced", "dataset": "folder", "input": {"height": 8, "width": 8, "channels": 1},
             "training": {"max_epochs": 2, "patience": 2, "validation_fraction": 0.3, "test_fraction": 0.25,
                          "objective": objective, "seed": 0},
             "params": {"depth": 1, "width": {"type": "int", "low": 4, "high": 8}, "head_units": 0, "batch_size": 16,
                        "learning_rate": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True}, **params}}
    path.write_text(yaml.safe_dump(space))
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return _folder(tmp_path_factory.mktemp("imbalanced") / "images")


def _search(tmp_path: Path, capsys, space: Path, folder: Path, *extra: str, trials: int = 3) -> SearchStore:
    code, out, err = run_main(["search", "--space", str(space), "--data", str(folder), "--trials", str(trials),
                               "--results-dir", str(tmp_path), "--seed", "0", "--jobs", "1", "--in-process", *extra],
                              capsys)
    assert code == 0, err
    _search.output = (out, err)
    return SearchStore(None, tmp_path)


def test_the_search_says_what_data_it_found(tmp_path, capsys):
    """A wrapper folder holding train/ and test/, the test split without one class: the search
    says it descended, shows every class's images per split, and warns of what matters."""
    import shutil

    wrapped = tmp_path / "pets" / "inside"
    _folder(wrapped / "train")
    _folder(tmp_path / "tmp_test")
    for name in list(COUNTS)[:2]:
        shutil.copytree(tmp_path / "tmp_test" / name, wrapped / "test" / name)
    space = _space(tmp_path / "space.yaml", "accuracy")
    _search(tmp_path / "r", capsys, space, tmp_path / "pets", "--no-ensemble", trials=1)
    out, err = _search.output
    assert f"{tmp_path / 'pets'}: read the class folders of its lone subfolder inside/" in err
    n_train, n_val = round(sum(COUNTS.values()) * 0.7), round(sum(COUNTS.values()) * 0.3)
    assert f"(3 classes, input 8x8x1): {n_train} train, {n_val} validation, 160 test images" in out
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:5]] for line in out.splitlines()
            if line.startswith("│") and line.split("│")[1].strip() in COUNTS}
    assert {name: int(r[0]) + int(r[1]) for name, r in rows.items()} == COUNTS
    assert [rows[name][2] for name in COUNTS] == ["120", "40", "0"]
    assert "warning: no test images of digit2: the test figures say nothing about it" in err
    assert "warning: classes imbalanced 12.0:1 in training" in err and "objective: balanced_accuracy" in err


def test_balanced_accuracy_ranks_and_the_board_tells_what_accuracy_hides(tmp_path, capsys, folder):
    space = _space(tmp_path / "space.yaml", "balanced_accuracy",
                   class_weight={"type": "categorical", "choices": ["none", "balanced"]}, prior_bias=True)
    store = _search(tmp_path, capsys, space, folder)
    study = store.db.storage.get_study_id_from_name("imbalanced")
    assert store.db.storage.get_study_directions(study)[0].name == "MAXIMIZE"
    import optuna

    assert optuna.load_study(study_name="imbalanced", storage=store.db.storage).metric_names == ["val_balanced_accuracy"]
    y_val = store.artifacts.val_labels("imbalanced")
    complete = [t for t in store.trials.all("imbalanced") if t.state.value == "complete"]
    assert complete
    for t in complete:
        predicted = store.artifacts.val_views("imbalanced", t.number)[0].argmax(1)
        assert t.value == pytest.approx(sk.balanced_accuracy_score(y_val, predicted))
        assert t.val_accuracy == pytest.approx(sk.accuracy_score(y_val, predicted))
        assert t.val_predicted == np.bincount(predicted, minlength=3).tolist()
        expected_never = [c for c in range(3) if not np.any(predicted == c)]
        assert t.never_predicted() == expected_never
    meta = store.studies.meta("imbalanced")
    counts = meta["split"]["class_counts"]
    assert meta["split"]["class_names"] == list(COUNTS)
    assert [sum(c) for c in zip(counts["train"], counts["val"], counts["test"])] == list(COUNTS.values())

    code, out, err = run_main(["leaderboard", "--results-dir", str(tmp_path), "--json"], capsys)
    board = json.loads(out)
    assert board["objective"] == "balanced_accuracy"
    assert any(w.startswith("classes imbalanced 12.") for w in board["data_warnings"])
    values = [r["value"] for r in board["leaderboard"]]
    assert values == sorted(values, reverse=True) and values[0] == max(t.value for t in complete)
    code, out, err = run_main(["leaderboard", "--results-dir", str(tmp_path)], capsys)
    assert code == 0 and "val bal acc" in out and "ranked by val bal acc" in out

    code, out, err = run_main(["best", "--results-dir", str(tmp_path), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["data"]["warnings"] == board["data_warnings"]
    test = json.loads(out)["evaluation"]["test"]["ensemble"]
    confusion = np.array(test["confusion"])
    assert confusion.sum() == sum(counts["test"]) and confusion.sum(1).tolist() == counts["test"]
    assert test["per_class_count"] == dict(zip(COUNTS, counts["test"]))
    assert test["balanced_accuracy"] == pytest.approx(np.mean(np.diag(confusion) / confusion.sum(1)))
    code, out, err = run_main(["best", "--results-dir", str(tmp_path)], capsys)
    assert code == 0 and "confusion" in out and all(name in out for name in COUNTS)


@pytest.mark.parametrize("engine", ["optuna", "keras-tuner"])
def test_a_loss_objective_minimizes_for_both_engines(tmp_path, capsys, folder, engine):
    store = _search(tmp_path, capsys, _space(tmp_path / "space.yaml", "log_loss"), folder, "--engine", engine,
                    "--no-ensemble")
    study = store.db.storage.get_study_id_from_name("imbalanced")
    assert store.db.storage.get_study_directions(study)[0].name == "MINIMIZE"
    y_val = store.artifacts.val_labels("imbalanced")
    complete = [t for t in store.trials.all("imbalanced") if t.state.value == "complete"]
    for t in complete:
        probs = store.artifacts.val_views("imbalanced", t.number)[0]
        assert t.value == pytest.approx(sk.log_loss(y_val, probs, labels=[0, 1, 2]), rel=1e-4)
    best = store.trials.top("imbalanced", 1)[0]
    assert best.value == min(t.value for t in complete)
    frozen = store.db.storage.get_all_trials(study)
    for f in frozen:  # the per-epoch values the pruner compares are the losses
        if f.state.name == "COMPLETE":
            assert list(f.intermediate_values.values()) == pytest.approx(f.user_attrs["history"]["val_loss"])
