"""Checks 2-5 on real models and data made to fail each one, and `tune check` as a command."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tests.conftest import TINY_SPACE, run_main
from tuner.check import playbook
from tuner.check.findings import Status
from tuner.data import SearchData
from tuner.space.schema import parse_space


def _space(params: dict, start: list | None = None):
    return parse_space({"name": "s", "dataset": "digits", "params": {"model": "cnn", **params}, "start": start or []}, "test")


@pytest.mark.parametrize("params, start, expected", [
    ({"width": {"type": "int", "low": 4, "high": 64, "log": True}}, None, {"width": 32}),  # the default, admitted
    ({"width": {"type": "int", "low": 40, "high": 64}}, None, {"width": 52}),  # the middle
    ({"width": {"type": "int", "low": 64, "high": 256, "log": True}}, None, {"width": 128}),  # the log middle
    ({"dropout": {"type": "float", "low": 0.1, "high": 0.5, "step": 0.1}}, None, {"dropout": 0.3}),
    ({"optimizer": {"type": "categorical", "choices": ["sgd", "adam"]}}, None, {"optimizer": "adam"}),
    ({"optimizer": {"type": "categorical", "choices": ["sgd", "rmsprop"]}}, None, {"optimizer": "sgd"}),
    ({"width": {"type": "int", "low": 4, "high": 64}}, [{"width": 8}], {"width": 8}),  # the start point wins
])
def test_the_reference_configuration_is_the_start_point_else_defaults_else_the_middle(params, start, expected):
    reference = playbook.reference_params(_space(params, start))
    assert {k: reference[k] for k in expected} == pytest.approx(expected)


def test_the_largest_configurations_are_one_per_family_at_every_costly_maximum():
    space = _space({"model": {"type": "categorical", "choices": ["cnn", "resnet"]},
                    "depth": {"type": "int", "low": 1, "high": 2}, "width": {"type": "int", "low": 4, "high": 96},
                    "batch_size": {"type": "categorical", "choices": [256, 32, 64]}, "head_units": 0})
    found = playbook.corners(space, playbook.reference_params(space))
    assert [(p["model"], p["depth"], p["width"], p["batch_size"], p["head_units"]) for p, _ in found] == [
        ("cnn", 2, 96, 256, 0), ("resnet", 2, 96, 256, 0)]
    assert all(names == ["batch_size", "depth", "width"] for _, names in found)


@pytest.fixture(scope="module")
def tiny(digits_data):
    from tuner.space.files import load_space
    from tuner.training.backend import configure

    configure("float32", None)
    space = load_space(str(TINY_SPACE))
    return space, playbook.reference_params(space), digits_data[0]


def test_the_cost_of_a_trial_is_counted_and_an_epoch_of_hours_warns(tiny, monkeypatch):
    _, reference, data = tiny
    found = playbook.trial_cost(reference, data)
    assert found.status is Status.PASS and found.figures["macs"] > 0 and found.figures["accelerator"] == 0.0
    assert re.search(r"[\d.]+M multiply-adds an image, [\d,]+ weights; about (\d+\.\d s|\d+:\d\d) an epoch of [\d,]+ images", found.evidence)
    monkeypatch.setattr(playbook, "SLOW_EPOCH_SECONDS", 0.0)
    slow = playbook.trial_cost(reference, data)
    assert slow.status is Status.WARN and "max_train_samples" in slow.evidence
    turned = playbook.trial_cost({**reference, "augment": 0.5, "rotation": 10.0}, data)
    plain = playbook.trial_cost({**reference, "augment": 0.0}, data)
    assert turned.figures["epoch_seconds"] > plain.figures["epoch_seconds"]  # the augmentation's time counts


def test_a_classifier_started_far_from_uniform_fails_the_loss_at_initialization(tiny):
    _, reference, data = tiny
    assert playbook.initialization(reference, data, 0).status is Status.PASS
    loud = playbook.initialization({**reference, "model": "resnet", "depth": 1, "logit_scale": 10.0}, data, 0)
    assert loud.status is Status.FAIL and "expected 2.303 (ln(classes))" in loud.evidence, loud.evidence


def test_imbalanced_classes_warn_without_the_prior_bias_and_pass_with_it(tiny):
    _, reference, data = tiny
    keep = (data.y_train == 0) | (np.arange(len(data.y_train)) % 10 == 0)  # class 0 whole, a tenth of the others
    skewed = SearchData(data.x_train[keep], data.y_train[keep], data.x_val, data.y_val, data.class_names)
    plain = playbook.initialization(reference, skewed, 0)
    assert plain.status is Status.WARN and "with prior_bias the model would start at" in plain.evidence
    assert playbook.initialization({**reference, "prior_bias": True}, skewed, 0).status is Status.PASS


@pytest.mark.slow
def test_shuffled_labels_warn_in_the_baseline_while_one_batch_is_still_fitted(tiny):
    """Images and labels unrelated: no better than ignoring them, a warning that names shuffled labels
    (a hard real folder looks the same in 100 steps). One batch is memorized anyway, which is why
    the baseline is a check of its own (README)."""
    _, reference, data = tiny
    assert playbook.baseline(reference, data, 0).status is Status.PASS
    shuffled = SearchData(data.x_train, np.random.default_rng(0).permutation(data.y_train), data.x_val, data.y_val,
                          data.class_names)
    finding = playbook.baseline(reference, shuffled, 0)
    assert finding.status is Status.WARN and "labels" in finding.evidence, finding.evidence
    assert playbook.one_batch(reference, shuffled, 0).status is Status.PASS


@pytest.mark.parametrize("y_train, y_val, classes, smoothing, balanced, expected", [
    ([0, 1, 2, 3] * 5, [0, 1, 2, 3], 4, 0.0, False, math.log(4)),  # balanced classes: ln(classes)
    ([0] * 8 + [1] * 2, [0, 1], 2, 0.0, False, -0.5 * (math.log(9 / 12) + math.log(3 / 12))),  # one image added each
    ([0] * 10, [1, 1], 2, 0.0, False, -math.log(1 / 12)),  # a class training never saw: large, finite
    # smoothed targets: a model trained on them cannot be surer than 0.8 * 9/12 + 0.1 (seen warning on 99:1 data)
    ([0] * 8 + [1] * 2, [0, 1], 2, 0.2, False, -0.5 * (math.log(0.7) + math.log(0.3))),
    ([0] * 8 + [1] * 2, [0, 1], 2, 0.0, True, math.log(2)),  # class_weight balanced: each class weighs the same
])
def test_the_input_independent_loss_is_the_validation_labels_under_the_training_shares(y_train, y_val, classes,
                                                                                      smoothing, balanced, expected):
    from tuner.training.probes import input_independent_loss

    got = input_independent_loss(np.array(y_train), np.array(y_val), classes, smoothing, balanced)
    assert got == pytest.approx(expected)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(classes=st.integers(2, 12), smoothing=st.sampled_from([0.0, 0.1, 0.3]), balanced=st.booleans(), data=st.data())
def test_no_model_that_ignores_its_input_does_better_than_the_shares_allow(classes, smoothing, balanced, data):
    """Gibbs' inequality: one distribution for every image scores at best the validation labels'
    own entropy; the computed loss is finite and never below it."""
    from tuner.training.probes import input_independent_loss

    labels = st.lists(st.integers(0, classes - 1), min_size=1, max_size=300)
    y_train, y_val = np.array(data.draw(labels)), np.array(data.draw(labels))
    got = input_independent_loss(y_train, y_val, classes, smoothing, balanced)
    shares = np.bincount(y_val, minlength=classes) / len(y_val)
    entropy = -sum(p * math.log(p) for p in shares if p > 0)
    assert math.isfinite(got) and got >= entropy - 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("smoothing, class_weight", [(0.0, "none"), (0.2, "none"), (0.0, "balanced")])
def test_a_model_trained_on_blank_images_reaches_the_computed_input_independent_loss(smoothing, class_weight, tiny):
    """What the computed figure stands for: the reference model trained on zeros (300 steps, the
    baseline's batch and rate), on imbalanced classes, with the trial's smoothing and class
    weights, ends within 1% of it on blank validation images."""
    from tuner.training import probes
    from tuner.training.fit import _compile, seed_everything

    _, reference, data = tiny
    keep = (data.y_train < 3) | (np.arange(len(data.y_train)) % 5 == 0)  # classes 0-2 whole, a fifth of the others
    skewed = SearchData(data.x_train[keep], data.y_train[keep], data.x_val, data.y_val, data.class_names)
    params = {**playbook.small_batch(reference, playbook.BASELINE_BATCH), **probes.NO_AUGMENT,
              "lr_schedule": "constant", "warmup_epochs": 0, "label_smoothing": smoothing, "class_weight": class_weight}
    seed_everything(0)
    model, trainer, batches = _compile(params, skewed, 1, 0)
    for step in range(300):
        x, *rest = batches[step % len(batches)]
        trainer.train_on_batch(np.zeros_like(x), *rest)
    trained = probes.mean_loss(model, np.zeros_like(skewed.x_val), skewed.y_val)
    computed = probes.input_independent_loss(skewed.y_train, skewed.y_val[:probes.EVAL_IMAGES], skewed.n_classes,
                                             smoothing, class_weight == "balanced")
    plain = probes.input_independent_loss(skewed.y_train, skewed.y_val[:probes.EVAL_IMAGES], skewed.n_classes)
    assert trained == pytest.approx(computed, rel=0.01) and trained >= computed - 1e-3
    if smoothing or class_weight != "none":  # the plain class shares would miss it: 2.58 against 2.48 and 2.30
        assert abs(trained - plain) > 0.03 * plain


@pytest.mark.slow
def test_a_label_smoothed_model_on_imbalanced_easy_classes_passes_the_baseline(tiny):
    """Zero against every other digit, 1 image in 60 (in 90 of validation) a zero, label smoothing
    0.2: the images separate the classes, but a smoothed model's loss cannot fall below the plain
    class shares' (0.116 against 0.063, "shuffled labels or a wrong decode"); against the shares
    smoothed as its targets are, it passes."""
    _, reference, data = tiny
    def rare_zeros(y: np.ndarray, n: int) -> np.ndarray:
        return np.sort(np.concatenate([np.flatnonzero(y == 0)[:n], np.flatnonzero(y != 0)]))

    train, val = rare_zeros(data.y_train, 16), rare_zeros(data.y_val, 3)
    binary = SearchData(data.x_train[train], (data.y_train[train] != 0).astype(np.int64), data.x_val[val],
                        (data.y_val[val] != 0).astype(np.int64), ["zero", "other"])
    finding = playbook.baseline({**reference, "label_smoothing": 0.2}, binary, 0)
    assert finding.status is Status.PASS, finding.evidence


@pytest.mark.slow
def test_the_baseline_names_the_batch_it_trained_on_a_folder_smaller_than_one(tiny):
    """Nine training images read "100 steps of 64 images"."""
    _, reference, data = tiny
    nine = SearchData(data.x_train[:9], data.y_train[:9], data.x_val, data.y_val, data.class_names)
    assert "in 100 steps of 9 images:" in playbook.baseline(reference, nine, 0).evidence


@pytest.mark.parametrize("real, independent, taken, share, status, words", [
    (0.694, 0.702, 30, 0.8, Status.WARN, "only 30 of 100 steps fit in 30 s, too few to tell"),  # a slow photo model
    (2.30, 2.31, 100, 0.8, Status.WARN, "the images told the model nothing"),  # shuffled labels, or a hard task
    (0.30, 2.30, 30, 0.8, Status.PASS, "(ratio 0.13)"),  # learned in few steps: passes
    (2.30, 2.31, 12, 0.8, Status.WARN, "only 12 fit in 30 s, too few to judge"),
    (math.nan, 2.30, 100, 0.8, Status.FAIL, "training diverged"),
    (2.20, 2.30, 100, 0.8, Status.WARN, "(ratio 0.96)"),
    # 200 cats and 200 dogs in 100 steps of 16: it memorized its 256 training images (seen failing the search)
    (0.842, 0.695, 100, 0.30, Status.WARN, "fitted the training images but learned nothing that carries"),
    (0.728, 0.694, 100, 0.70, Status.WARN, "a task this model needs more steps for"),  # the same folder, seen
    # a zero initializer, a learning rate of 1e-9: nothing moved (seen blaming the labels)
    (2.303, 2.303, 100, 1.00, Status.WARN, "the training loss did not fall either (100% of its start)"),
])
def test_the_baseline_says_why_the_images_told_nothing_and_fails_only_a_diverged_loss(real, independent, taken, share,
                                                                                     status, words):
    finding = playbook.judge_baseline(real, independent, taken, 100, 32, share)
    assert finding.status is status and words in finding.evidence, finding.evidence


@settings(max_examples=300, deadline=None, derandomize=True)
@given(real=st.floats(0.0, 50.0) | st.just(math.nan), independent=st.floats(0.0, 50.0),
       taken=st.integers(0, 200), asked=st.integers(1, 200), share=st.floats(0.0, 2.0))
def test_the_baseline_refuses_a_search_only_for_a_loss_that_diverged(real, independent, taken, asked, share):
    taken = min(taken, asked)
    finding = playbook.judge_baseline(real, independent, taken, asked, 64, share)
    assert (finding.status is Status.FAIL) == (taken >= playbook.BASELINE_MIN_STEPS and not math.isfinite(real))
    if taken < asked:
        assert "told the model nothing" not in finding.evidence  # cut short: never blamed on the data
    assert finding.status is not Status.PASS or real < independent


def test_one_batch_not_fitted_fails(tiny):
    _, reference, data = tiny
    finding = playbook.one_batch({**reference, "learning_rate": 1e-7}, data, 0)
    assert finding.status is Status.FAIL and "after 300 steps" in finding.evidence, finding.evidence


@pytest.mark.parametrize("accuracy, loss, fitted, status", [
    (1.0, 0.05, True, Status.PASS),
    (1.0, 0.176, False, Status.WARN),  # was a FAIL, "cannot fit", beside its own 100%: it stopped the search
    (0.97, 0.2, False, Status.WARN),
    (0.5, 1.2, False, Status.FAIL),
])
def test_one_batch_verdict_agrees_with_its_figures(accuracy, loss, fitted, status, tiny, monkeypatch):
    from tuner.training import probes

    _, reference, data = tiny
    monkeypatch.setattr(probes, "overfit_batch", lambda *a, **k: probes.BatchFit(32, 300, accuracy, loss, fitted))
    finding = playbook.one_batch(reference, data, 0)
    assert finding.status is status and f"{100 * accuracy:.0f}% training accuracy after 300 steps" in finding.evidence
    assert ("cannot fit" in finding.evidence) == (status is Status.FAIL)


def test_the_largest_configuration_over_the_memory_limit_fails_naming_what_to_narrow(tiny):
    space, reference, data = tiny
    [ran] = playbook.largest(space, reference, data, 0, memory_limit=2**34)
    assert ran.status is Status.PASS and "first step ran in" in ran.evidence, ran.evidence
    [over] = playbook.largest(space, reference, data, 0, memory_limit=2**20)
    assert over.status is Status.FAIL, over.evidence
    assert over.evidence.endswith("over the memory limit of 1 MiB; narrow depth, head_units, width")


def test_learning_rates_far_below_the_range_test_s_are_warned_about(tiny):
    space, reference, data = tiny
    fine = playbook.learning_rates(space, reference, data, 0)
    assert fine.status is Status.PASS and "the space's learning rates: 1.0e-03 to 1.0e-02" in fine.evidence, fine.evidence
    start, low = (float(v) for v in re.search(r"steps from (\S+) to .*suggested (\S+) to", fine.evidence).groups())
    assert low >= start  # never below what the sweep tried
    slow = _space({"learning_rate": {"type": "float", "low": 1e-8, "high": 1e-7, "log": True}, "batch_size": 64})
    finding = playbook.learning_rates(slow, {**reference, "learning_rate": 3e-8}, data, 0)
    assert finding.status is Status.WARN and finding.evidence.endswith(": outside the suggested range"), finding.evidence


RATES = np.geomspace(1e-6, 1.0, 100)


@pytest.mark.parametrize("losses, suggested", [
    (np.r_[np.full(40, 2.3), np.linspace(2.3, 0.5, 30), np.linspace(0.5, 9.0, 30)], True),  # the usual dip
    (np.linspace(0.694, 0.8, 100), False),  # rose from the start (a slow model's few steps)
    (np.r_[0.694, 0.690, np.linspace(0.70, 0.9, 98)], False),  # lowest in the start-up: noise, not a fall
    (np.r_[np.full(50, 2.3), np.full(50, 2.29)], False),  # fell by less than 2%: no range
    (np.r_[np.full(6, 2.0), np.linspace(2.0, 1.0, 12), np.linspace(1.0, 5.0, 82)], True),  # early, still a range
    (np.r_[np.full(6, 2.0), 0.0, np.full(93, 100.0)], False),  # lowest at step 6: a third of it is below the sweep
    (np.full(100, 1.0), False),  # flat
])
def test_a_range_is_suggested_only_where_the_loss_fell(losses, suggested):
    found = playbook.suggested_range(RATES, losses)
    assert (found is not None) == suggested, found
    if found is not None:
        steepest, lowest, bottom, top = found
        assert RATES[0] <= bottom < top <= lowest and steepest <= lowest


@settings(max_examples=300, deadline=None, derandomize=True)
@given(losses=st.lists(st.floats(0.0, 1e6), min_size=1, max_size=120))
def test_a_suggested_range_is_never_empty_nor_outside_the_sweep(losses):
    rates = np.geomspace(1e-7, 10.0, len(losses))
    found = playbook.suggested_range(rates, np.array(losses))
    if found is not None:
        steepest, lowest, bottom, top = found
        assert rates[0] <= bottom < top <= lowest <= rates[-1] and rates[0] <= steepest <= lowest
        first, least = losses[0], min(losses)
        assert least < first  # it fell somewhere


def test_the_augmentation_picture_and_the_mirroring_warning(tiny):
    from tuner.check.preview import augmentation

    space, reference, data = tiny
    written = []

    def write(images, captions):
        written.append((images, captions))
        return Path("/pictures/augmented.png")

    assert augmentation(space, reference, data, 0, write).status is Status.PASS
    (images, captions), = written
    assert images.shape == (16, 8, 8, 1) and images.min() >= 0 and images.max() <= 255 and len(captions) == 16
    grey_folder = parse_space({"name": "g", "dataset": "folder", "input": {"height": 8, "width": 8, "channels": 1},
                               "params": {"model": "cnn", "depth": 1, "flip": {"type": "bool"}, "augment": 1.0}}, "test")
    mirrored = augmentation(grey_folder, playbook.reference_params(grey_folder), data, 0, write)
    assert mirrored.status is Status.WARN and "(mirroring)" in mirrored.evidence and "flip: false" in mirrored.evidence
    still = parse_space({"name": "s", "dataset": "digits", "params": {"model": "cnn", "augment": 0.0}}, "test")
    assert augmentation(still, playbook.reference_params(still), data, 0, write).evidence == "the space does not augment"


@pytest.mark.slow
def test_tune_check_on_the_digits_space_passes_and_a_memory_limit_fails_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(["check", "--space", "digits", "--out", "pictures"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 15 and re.fullmatch(r"14 checks: 14 pass, 0 warn, 0 fail \(\d+ s\)", lines[-1]), out
    picture = tmp_path / "pictures" / "augmented.png"
    assert f"augmentation preview: 16 training images at the strongest augmentation (shifts up to 1 px): {picture}" in out
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, err = run_main(["check", "--space", str(TINY_SPACE), "--json", "--memory-limit", "1MiB"], capsys)
    assert code == 1 and err.strip() == "error: 1 check failed: largest cnn", err
    findings = json.loads(out)["findings"]
    assert [f["status"] for f in findings].count("fail") == 1 and len(findings) == 14
    assert [p.name for p in tmp_path.iterdir()] == ["pictures"]  # no study, no results folder


def test_a_diverging_step_is_blamed_on_the_step_not_the_labels(tiny):
    _, reference, data = tiny
    finding = playbook.baseline({**reference, "optimizer": "sgd", "learning_rate": 10.0, "batch_norm": False}, data, 0)
    assert finding.status is Status.FAIL, finding.evidence
    assert "diverged" in finding.evidence or "worse than predicting the class priors" in finding.evidence
    assert "shuffled labels" not in finding.evidence


def test_cutout_is_off_where_augmentation_is_said_to_be(tiny):
    from tuner.training.probes import overfit_batch

    _, reference, data = tiny
    assert overfit_batch({**reference, "cutout": 6, "augment": 0.5}, data, 0) == overfit_batch(reference, data, 0)


def test_the_largest_configurations_keep_to_each_familys_parameters_and_to_the_training_batch(tiny):
    from tuner.training.probes import step_cost

    _, reference, data = tiny
    space = _space({"model": {"type": "categorical", "choices": ["cnn", "resnet"]}, "depth": 1,
                    "width": {"type": "int", "low": 8, "high": 512, "when": {"model": "resnet"}},
                    "batch_size": {"type": "categorical", "choices": [32, 65536]}})
    (cnn, cnn_costly), (resnet, resnet_costly) = playbook.corners(space, playbook.reference_params(space))
    assert cnn["width"] == 32 and cnn_costly == ["batch_size"] and resnet["width"] == 512 and resnet_costly == ["batch_size", "width"]
    huge = step_cost({**reference, "batch_size": 65536}, data, 0, memory_limit=1)
    whole = step_cost({**reference, "batch_size": len(data.y_train)}, data, 0, memory_limit=1)
    assert huge.estimated_bytes == whole.estimated_bytes and huge.step_seconds is None  # trained on all there are


def test_a_check_that_raises_is_a_fail_naming_the_error():
    from tuner.check import _guarded

    def broken():
        raise ValueError("Input 0 of layer conv is incompatible\nwith a long second line")

    assert _guarded("overfit one batch", broken) == playbook.Finding(
        "overfit one batch", Status.FAIL, "could not run: ValueError: Input 0 of layer conv is incompatible")
    assert _guarded("x", lambda: 1 / 0).evidence == "could not run: ZeroDivisionError: division by zero"
