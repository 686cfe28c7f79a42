"""The model builder, the augmentation layer and the one training loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.errors import TrialFailed, TrialPruned
from tuner.space.params import OPTIMIZERS, complete_params


@pytest.mark.parametrize("params, shape", [
    ({"model": "cnn", "depth": 2, "width": 8, "head_units": 16, "dropout": 0.2, "l2": 1e-4}, (8, 8, 1)),
    ({"model": "cnn", "depth": 1, "width": 4, "head_units": 0, "batch_norm": False}, (28, 28, 1)),
    ({"model": "resnet", "depth": 3, "width": 8, "head_units": 0}, (32, 32, 3)),
])
def test_build_model_outputs_probabilities(params, shape):
    import keras

    from tuner.training.model import build_model

    model = build_model(complete_params(params), shape, 10)
    x = np.random.default_rng(0).integers(0, 255, (4, *shape)).astype("uint8")
    probs = keras.ops.convert_to_numpy(model(x.astype("float32")))
    assert probs.shape == (4, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert model.output.dtype == "float32"


def test_saved_model_loads_with_plain_keras(tmp_path):
    import keras

    from tuner.training.model import build_model

    model = build_model(complete_params({"model": "resnet", "depth": 2, "width": 4}), (16, 16, 3), 3)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")  # no custom_objects needed
    x = np.ones((2, 16, 16, 3), "float32") * 100
    assert np.allclose(keras.ops.convert_to_numpy(model(x)), keras.ops.convert_to_numpy(loaded(x)), atol=1e-6)


def test_kernels_are_drawn_on_the_host_from_the_seed(caplog):
    """Glorot uniform from numpy, the same for the same seed; on JAX a model of new shapes then
    compiles no program at all (random numbers cost 0.1-0.3 s a kernel shape on a CPU, zeros and
    ones 0.02-0.05 s a shape)."""
    import logging

    import keras

    from tuner.training.model import build_model

    def kernels(seed: int, width: int = 8) -> list[np.ndarray]:
        params = complete_params({"model": "resnet", "depth": 2, "width": width, "head_units": 16})
        model = build_model(params, (16, 16, 3), 10, seed)
        assert all(layer.get_config()["kernel_initializer"]["class_name"] == "GlorotUniform"
                   for layer in model.layers if hasattr(layer, "kernel"))
        assert "HostInitializer" not in str(model.get_config())  # configs name Keras's built-ins only
        return [keras.ops.convert_to_numpy(layer.kernel.value) for layer in model.layers if hasattr(layer, "kernel")]

    first, again, other = kernels(1), kernels(1), kernels(2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not any(np.array_equal(a, b) for a, b in zip(first, other))
    for w in first:  # the same distribution as Keras's own GlorotUniform draws of that shape
        theirs = keras.ops.convert_to_numpy(keras.initializers.GlorotUniform(seed=7)(w.shape))
        assert np.abs(w).max() <= np.abs(theirs).max() * 1.02 + 1e-6
        assert np.std(w) == pytest.approx(np.std(theirs), rel=0.15) and abs(np.mean(w)) < 0.1 * np.std(theirs) + 0.02
    if keras.backend.backend() == "jax":
        import jax

        jax.config.update("jax_log_compiles", True)
        try:
            with caplog.at_level(logging.WARNING, logger="jax"):
                kernels(3, width=13)  # shapes no earlier test built
        finally:
            jax.config.update("jax_log_compiles", False)
        compiled = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]
        assert compiled == [], compiled


def test_augment_shifts_and_flips_on_device_only_in_training():
    import keras

    from tuner.training.augment import Augment

    x = np.arange(2 * 6 * 6).reshape(2, 6, 6, 1).astype("float32") + 1
    shift = Augment(max_shift=2, seed=0)
    assert np.array_equal(keras.ops.convert_to_numpy(shift(x, training=False)), x)
    out = keras.ops.convert_to_numpy(shift(x, training=True))
    for i in range(2):
        # The output is a 6x6 window of the zero-padded image: find its offset and compare.
        padded = np.pad(x[i, :, :, 0], 2)
        assert any(np.array_equal(out[i, :, :, 0], padded[dy:dy + 6, dx:dx + 6]) for dy in range(5) for dx in range(5))
    flip = Augment(max_shift=0, flip=True, seed=1)
    outs = [keras.ops.convert_to_numpy(flip(x, training=True)) for _ in range(8)]
    for out in outs:
        for i in range(2):
            assert np.array_equal(out[i], x[i]) or np.array_equal(out[i], x[i, :, ::-1])
    assert any(not np.array_equal(o, x) for o in outs)  # it does flip sometimes


def test_augment_applies_the_choices_it_is_given():
    """Choices drawn on the host (flip, row and column offset, cutout box) give exactly that image."""
    import keras

    from tuner.training.augment import Augment
    from tuner.training.choices import CUTOUT_FILL, draw_choices
    from tuner.training.fit import EpochBatches

    x = np.arange(3 * 6 * 6).reshape(3, 6, 6, 1).astype("float32") + 1
    unturned = [0, 10_000]  # no rotation, scale 1
    choices = np.array([[0, 0, 4, 0, 0, 0, 0, *unturned], [1, 2, 2, 1, 2, 4, 3, *unturned],
                        [1, 4, 1, 5, 0, 6, 6, *unturned]], dtype="int32")
    out = keras.ops.convert_to_numpy(Augment(max_shift=2, flip=True, cutout=3)([x, choices], training=True))
    for i, (flip, dy, dx, top, left, bottom, right, _, _) in enumerate(choices):
        image = x[i, :, ::-1, 0] if flip else x[i, :, :, 0]
        expected = np.pad(image, 2)[dy:dy + 6, dx:dx + 6].copy()
        expected[top:bottom, left:right] = CUTOUT_FILL
        assert np.array_equal(out[i, :, :, 0], expected)
    assert np.array_equal(keras.ops.convert_to_numpy(Augment(2, True)([x, choices], training=False)), x)

    drawn = draw_choices(np.random.default_rng(0), 1000, max_shift=2, flip=False)
    assert drawn.shape == (1000, 9) and set(drawn[:, 0]) == {0} and set(drawn[:, 1]) == set(range(5))
    assert not drawn[:, 3:8].any() and set(drawn[:, 8]) == {10_000}  # no cutout: empty boxes; no turns
    boxes = draw_choices(np.random.default_rng(0), 1000, max_shift=0, flip=False, cutout=4, size=(6, 8))[:, 3:7]
    heights, widths = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (boxes >= 0).all() and (boxes[:, 2] <= 6).all() and (boxes[:, 3] <= 8).all()
    assert set(heights) == {2, 3, 4} and set(widths) == {2, 3, 4}  # clipped at the borders, else 4x4
    batches = EpochBatches(x.repeat(4, axis=0), np.zeros(12, int), 10, 4, seed=0, augment=Augment(2, True))
    (images, batch_choices), labels = batches[0]
    assert images.shape == (4, 6, 6, 1) and batch_choices.shape == (4, 9) and labels.shape == (4, 10)
    first = batches.choices.copy()
    batches.on_epoch_end()
    assert not np.array_equal(first, batches.choices)  # fresh choices every epoch


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), shape=st.tuples(st.integers(1, 5), st.integers(1, 9), st.integers(1, 9),
                                                      st.sampled_from([1, 3])),
       max_shift=st.integers(0, 3), flip=st.booleans(), cutout=st.integers(0, 6))
def test_the_reports_numpy_augmentation_is_the_training_steps(seed, shape, max_shift, flip, cutout):
    """`apply_choices` (numpy, for the report's picture) gives exactly what the compiled layer gives
    for the same host choices, at any size, shift, flip and cutout."""
    import keras

    from tuner.training.augment import Augment
    from tuner.training.choices import apply_choices, draw_choices

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, shape).astype("float32")
    choices = draw_choices(rng, shape[0], max_shift, flip, cutout, shape[1:3])
    layer = Augment(max_shift, flip, cutout=cutout)
    expected = keras.ops.convert_to_numpy(layer([images, choices], training=True))
    assert np.array_equal(apply_choices(images, choices, max_shift), expected)


def test_augment_draws_cutout_itself_on_images_alone():
    import keras

    from tuner.training.augment import Augment
    from tuner.training.choices import CUTOUT_FILL

    x = np.ones((64, 8, 8, 1), "float32")
    out = keras.ops.convert_to_numpy(Augment(cutout=4, seed=0)(x, training=True))
    blanked = (out == CUTOUT_FILL).sum(axis=(1, 2, 3))
    assert (blanked >= 4).all() and (blanked <= 16).all() and (blanked == 16).any()


def test_learning_rate_schedules():
    import keras

    from tuner.training.optim import SCHEDULE_KINDS, schedule_factor
    from tuner.space.params import SCHEDULES

    assert set(SCHEDULE_KINDS) == set(SCHEDULES)  # every schedule a space may name has a formula

    def at(kind, step, warmup=0):
        return 0.1 * float(keras.ops.convert_to_numpy(schedule_factor(SCHEDULE_KINDS.index(kind), step, 100, warmup)))

    assert at("constant", 50) == pytest.approx(0.1) and at("plateau", 50) == pytest.approx(0.1)
    assert at("constant", 0, warmup=10) == pytest.approx(0.01)
    assert at("step", 60) == pytest.approx(0.01) and at("step", 80) == pytest.approx(0.001)
    assert at("cosine", 100) == pytest.approx(0.0, abs=1e-6) and at("cosine", 50) == pytest.approx(0.05)
    assert at("exponential", 100) == pytest.approx(0.001)
    assert at("onecycle", 25, warmup=25) == pytest.approx(0.1, rel=0.05) and at("onecycle", 100, warmup=25) == pytest.approx(0.0, abs=1e-6)


def test_plateau_learning_rate_is_settable_as_reduce_on_plateau_does():
    import keras

    from tuner.training.optim import make_optimizer

    params = complete_params({"learning_rate": 0.5, "lr_schedule": "plateau", "optimizer": "sgd"})
    optimizer = make_optimizer(params, steps_per_epoch=10, max_epochs=5)
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.5)
    optimizer.learning_rate = 0.1  # what keras.callbacks.ReduceLROnPlateau does
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.1)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "plateau"])
def test_the_learning_rate_read_for_the_history_is_the_optimizers(schedule):
    """`learning_rate_now` (one compiled program on JAX) gives what the optimizer's own learning
    rate gives, at any step and after ReduceLROnPlateau's assignment."""
    import keras

    from tuner.training.optim import make_optimizer

    params = complete_params({"learning_rate": 0.4, "lr_schedule": schedule, "warmup_epochs": 1, "optimizer": "sgd"})
    optimizer = make_optimizer(params, steps_per_epoch=10, max_epochs=5)
    for step, peak in ((0, 0.4), (7, 0.4), (23, 0.1), (49, 0.1)):
        optimizer.iterations.assign(step)
        optimizer.learning_rate = peak  # what ReduceLROnPlateau does; the peak of the others
        expected = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        assert optimizer.learning_rate_now() == pytest.approx(expected, rel=1e-6)
    assert expected < 0.1 or schedule == "plateau"  # the schedule did act


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("penalties", [{"l2": 0.01}, {"l1": 0.01, "l2": 0.001, "max_norm": 0.5}], ids=["l2", "l1-l2-max_norm"])
def test_optimizer_state_numbers_train_as_constants_would(optimizer, penalties):
    """Three steps with tune's optimizer (schedule, L1, L2, max norm and label smoothing as state)
    give the weights that Keras's own schedule, kernel_regularizer, kernel_constraint and
    label_smoothing give, for every optimizer (AdamW's decay, which reads the learning rate too,
    included)."""
    import keras

    from tuner.training.optim import make_optimizer
    from tuner.training.fit import EpochBatches

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 6)).astype("float32"), rng.integers(0, 3, 64)
    params = complete_params({"learning_rate": 0.05, "lr_schedule": "cosine", "warmup_epochs": 1, "optimizer": optimizer,
                              "momentum": 0.9, "weight_decay": 0.05, **penalties})
    regularizer = keras.regularizers.L1L2(penalties.get("l1", 0.0), penalties["l2"])
    constraint = keras.constraints.MaxNorm(penalties["max_norm"]) if "max_norm" in penalties else None

    def net(reg=None, bound=None):
        keras.utils.set_random_seed(1)
        return keras.Sequential([
            keras.Input((6,)), keras.layers.Dense(5, activation="relu", kernel_regularizer=reg, kernel_constraint=bound),
            keras.layers.Dense(3, activation="softmax", kernel_regularizer=reg, kernel_constraint=bound)])

    class Cosine(keras.optimizers.schedules.LearningRateSchedule):  # warm-up 1 step, then cosine over 2
        def __call__(self, step):
            step = keras.ops.cast(step, "float32")
            return 0.05 * keras.ops.where(step < 1, (step + 1) / 1, 0.5 * (1 + keras.ops.cos(np.pi * (step - 1) / 2)))

    extra = {"sgd": {"momentum": 0.9, "nesterov": True}, "adamw": {"weight_decay": 0.05}}.get(optimizer, {})
    plain = keras.optimizers.get({"class_name": optimizer, "config": {}}).__class__(Cosine(), **extra)
    ours, theirs = net(), net(regularizer, constraint)
    ours.compile(make_optimizer(params, steps_per_epoch=1, max_epochs=3), keras.losses.CategoricalCrossentropy())
    theirs.compile(plain, keras.losses.CategoricalCrossentropy(label_smoothing=0.2))
    smoothed = EpochBatches(x, y, 3, 64, seed=0, label_smoothing=0.2).y
    ours.fit(x, smoothed, batch_size=64, epochs=3, shuffle=False, verbose=0)
    theirs.fit(x, keras.utils.to_categorical(y, 3), batch_size=64, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not np.allclose(ours.get_weights()[0], net().get_weights()[0])  # it did train
    if constraint is not None:  # and the bound did bind
        norms = np.linalg.norm(ours.get_weights()[0], axis=0)
        assert norms.max() <= 0.5 * (1 + 1e-5) and np.linalg.norm(net().get_weights()[0], axis=0).max() > 0.6


@pytest.mark.slow
def test_train_trial_returns_history_and_best_epoch_predictions(digits_data, tiny_space):
    from tuner.training.metrics import log_loss
    from tuner.training.fit import train_trial

    data, _ = digits_data
    params = tiny_space.complete({"depth": 1, "width": 8, "learning_rate": 0.01, "optimizer": "adam"})
    seen = []
    result = train_trial(params, data, max_epochs=2, patience=2, seed=0, on_epoch=lambda e, m, whole: seen.append((e, m, whole)))
    assert [(e, whole) for e, _, whole in seen] == [(0, True), (1, True)]
    assert len(result.history["val_loss"]) == 2 and result.best_epoch == int(np.argmin(result.history["val_loss"]))
    assert result.val_probs.shape == (len(data.y_val), 10)
    # The kept predictions are the best epoch's, and they give the recorded figures.
    assert log_loss(result.val_probs, data.y_val) == pytest.approx(result.val_loss, rel=1e-5)
    assert np.mean(result.val_probs.argmax(1) == data.y_val) == pytest.approx(result.val_accuracy)
    assert result.val_accuracy > 0.3  # 2 epochs on digits learn something


@pytest.mark.parametrize("planned, trained", [((2, 3), 3), ((1, None), "all"), ((1, 10_000), "all")])
def test_a_planner_can_ask_for_fewer_batches_an_epoch(digits_data, tiny_space, planned, trained):
    """A subset plan (`tuner.search.budget`): that many batches an epoch, the schedule decaying over
    them, and the timings count them (the calibration's rate is per step)."""
    from tuner.training.fit import train_trial

    data, _ = digits_data
    params = tiny_space.complete({"depth": 1, "width": 4, "learning_rate": 0.01, "lr_schedule": "cosine"})
    whole = len(data.x_train) // params["batch_size"]
    told = []

    def planner(cost):
        told.append(cost.steps)
        return planned

    result = train_trial(params, data, max_epochs=5, patience=5, seed=0, planner=planner)
    steps = whole if trained == "all" else trained
    assert told == [whole] and result.timings["steps"] == steps
    assert len(result.history["loss"]) == planned[0]
    # The cosine ends at the last step trained: over the whole epochs' steps it would still be high.
    assert result.history["lr"][-1] < 0.01 * 0.05


@pytest.mark.parametrize("fires_at, stopped, whole", [
    (lambda steps: 3, "in epoch 1 of 3, after 3 of {steps} batches", [False]),  # asked before each step
    (lambda steps: steps + 1, "after epoch 1 of 3", [True]),  # then once at the epoch's end
    (lambda steps: steps + 3, "in epoch 2 of 3, after 2 of {steps} batches", [True, False]),
])
def test_a_stop_check_ends_training_after_the_step_it_fires_at(digits_data, tiny_space, fires_at, stopped, whole):
    """A deadline ends a trial after the step it is seen at, validated, with the best epoch's
    weights; the epoch it cut short is told as not whole (the pruner skips it)."""
    from tuner.training.fit import train_trial

    data, _ = digits_data
    params = tiny_space.complete({"depth": 1, "width": 4, "learning_rate": 0.01})
    steps = len(data.x_train) // params["batch_size"]
    calls, seen = [], []

    def stop_check():
        calls.append(1)
        return "time" if len(calls) == fires_at(steps) else None

    result = train_trial(params, data, max_epochs=3, patience=3, seed=0, stop_check=stop_check,
                         on_epoch=lambda e, m, w: seen.append(w))
    assert result.stopped == "time " + stopped.format(steps=steps) and len(calls) == fires_at(steps)
    assert seen == whole and len(result.history["val_loss"]) == len(whole)
    probs = result.model.predict(data.x_val, verbose=0)  # the weights kept are the best epoch's
    np.testing.assert_allclose(probs, result.val_probs, atol=1e-5)
    assert result.best_epoch == int(np.argmin(result.history["val_loss"]))


@pytest.mark.slow
def test_the_training_step_is_traced_once(digits_data, tiny_space):
    """Every variable (optimizer slots, metric totals) exists before `fit`: TensorFlow traces a
    step that creates variables twice (about 1 s a trial on the CPU: BENCHMARKS.md)."""
    import keras

    from tuner.training.fit import _compile

    if keras.backend.backend() == "torch":
        pytest.skip("torch runs the step eagerly: no tracing to count")

    data, _ = digits_data
    params = tiny_space.complete({"depth": 1, "width": 8, "optimizer": "adam", "augment": 1.0, "max_shift": 1})
    model, trainer, batches = _compile(params, data, 1, 0)
    traced = []
    step = trainer.train_step

    def counted(*args):  # Python runs the step's body only while tracing it (eager runs aside)
        traced.append(1)
        return step(*args)

    trainer.train_step = counted
    trainer.fit(batches, epochs=2, steps_per_epoch=3, verbose=0)
    assert len(traced) == 1


@pytest.mark.slow
def test_test_time_flips_score_the_best_epoch_once(digits_data, tiny_space):
    """Epochs are validated without flips (cheaper; the pruner compares like with like); the
    trial's figures and kept predictions are the best epoch's with flips."""
    from tuner.training.metrics import log_loss
    from tuner.training.predictor import predict_padded
    from tuner.training.fit import train_trial

    data, _ = digits_data
    params = tiny_space.complete({"depth": 1, "width": 8, "learning_rate": 0.01, "optimizer": "adam", "tta_flip": True})
    result = train_trial(params, data, max_epochs=3, patience=3, seed=0)
    plain, flipped = predict_padded(result.model, data.x_val), predict_padded(result.model, data.x_val, tta_flip=True)
    assert not np.allclose(plain, flipped)
    assert result.history["val_loss"][result.best_epoch] == pytest.approx(log_loss(plain, data.y_val), rel=1e-4)
    np.testing.assert_allclose(result.val_probs, flipped, atol=1e-6)
    assert result.val_loss == pytest.approx(log_loss(flipped, data.y_val), rel=1e-5)
    assert result.val_accuracy == pytest.approx(np.mean(flipped.argmax(1) == data.y_val))
    np.testing.assert_allclose(result.val_views, np.stack([plain, 2 * flipped - plain]), atol=1e-5)


@pytest.mark.slow
def test_a_flip_trained_trial_keeps_its_mirror_predictions_for_the_ensemble(digits_data, tiny_space):
    """Trained on flips without test-time flips: its figures are the plain images', and the
    mirrors' predictions are kept beside them for the ensemble to take or leave."""
    from tuner.training.predictor import predict_padded
    from tuner.training.fit import train_trial

    data, _ = digits_data
    params = tiny_space.complete({"depth": 1, "width": 8, "learning_rate": 0.01, "optimizer": "adam", "flip": True,
                                  "augment": 1.0, "tta_flip": False})
    result = train_trial(params, data, max_epochs=2, patience=2, seed=0)
    plain = predict_padded(result.model, data.x_val)
    mirrored = predict_padded(result.model, np.ascontiguousarray(data.x_val[:, :, ::-1]))
    np.testing.assert_allclose(result.val_probs, plain, atol=1e-6)
    np.testing.assert_allclose(result.val_views, np.stack([plain, mirrored]), atol=1e-6)


@pytest.mark.slow
def test_nan_loss_fails_the_trial_with_its_reason(digits_data, tiny_space):
    """A real divergence: SGD at learning rate 10 with L2 1.0 (weights grow about 19 times a step)."""
    from tuner.training.fit import train_trial

    data, _ = digits_data
    params = tiny_space.complete({"depth": 1, "width": 8, "batch_norm": False, "optimizer": "sgd", "momentum": 0.9,
                                  "l2": 1.0, "learning_rate": 10.0, "lr_schedule": "constant"})
    with pytest.raises(TrialFailed, match=r"^training loss became (nan|inf) at epoch 1$") as e:
        train_trial(params, data, max_epochs=2, patience=2, seed=0)
    assert e.value.history["loss"] == []  # failed before any epoch was recorded
    assert e.value.timings["build_seconds"] > 0  # what it cost is still told


@pytest.mark.slow
def test_pruning_hook_stops_training_and_keeps_history(digits_data, tiny_space):
    from tuner.training.fit import train_trial

    data, _ = digits_data

    def prune(epoch, metrics, whole):
        raise TrialPruned(f"pruned after epoch {epoch + 1}")

    with pytest.raises(TrialPruned) as e:
        train_trial(tiny_space.complete({"depth": 1}), data, max_epochs=2, patience=2, seed=0, on_epoch=prune)
    assert len(e.value.history["val_accuracy"]) == 1 and math.isfinite(e.value.history["val_accuracy"][0])
    # A pruned trial's fixed cost counts too: it keeps its timings.
    t = e.value.timings
    assert t["train_seconds"] == t["first_epoch_seconds"] > 0 and t["predict_seconds"] > 0
    assert t["total_seconds"] >= t["build_seconds"] + t["train_seconds"]


def test_a_model_that_cannot_build_fails_as_a_trial_not_a_crash(digits_data, tiny_space):
    """Whatever raises inside the fit fails the trial, with the error's type and first line as
    its reason and the error chained: here depth 5 on an 8x8 image (the space check refuses it
    before a search; in a search this is out of memory or an XLA error)."""
    from tuner.training.fit import train_trial

    data, _ = digits_data
    params = tiny_space.complete({"depth": 5, "width": 4})
    with pytest.raises(TrialFailed) as e:
        train_trial(params, data, max_epochs=1, patience=1, seed=0)
    assert str(e.value).startswith("ValueError: ") and "MaxPooling2D" in str(e.value)
    assert isinstance(e.value.__cause__, ValueError) and "\n" not in str(e.value)


@pytest.mark.parametrize("signum, raised", [(None, TrialFailed), ("SIGTERM", KeyboardInterrupt),
                                             ("SIGHUP", KeyboardInterrupt), ("SIGINT", KeyboardInterrupt)])
def test_an_error_after_a_signal_is_the_signals_not_the_trials(signum, raised, digits_data, tiny_space, monkeypatch):
    """A signal raised into TensorFlow's tracing came out as a ValueError ("The two structures don't
    have the same nested structure"), and the trial was recorded as failed by it, as if its
    parameters were at fault. After a signal (a first Ctrl-C included: the search stops after
    this trial anyway) the error is the signal's: KeyboardInterrupt, which the runner records as
    interrupted. Without one, the error is the trial's."""
    import signal

    from tuner import interrupts
    from tuner.training import fit

    def build_then_break(*args, **kwargs):
        try:
            if signum is not None:
                signal.raise_signal(getattr(signal, signum))  # a first Ctrl-C only sets the flag; the others raise
        except KeyboardInterrupt:
            pass  # inside TensorFlow's tracing: what came out was this
        raise ValueError("The two structures don't have the same nested structure.")

    monkeypatch.setattr(fit, "build_model", build_then_break)
    data, _ = digits_data
    # As in a terminal, also where the tests run in the background (Ctrl-C ignored) or under nohup.
    before = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
              signal.SIGHUP: signal.signal(signal.SIGHUP, signal.SIG_DFL)}
    try:
        with interrupts.catching_ctrl_c(), pytest.raises(raised):
            fit.train_trial(tiny_space.complete({}), data, max_epochs=1, patience=1, seed=0)
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


@pytest.mark.slow
def test_a_pruned_trial_is_recorded_with_its_history_and_timings(digits_data, tiny_space, results):
    from tuner.search.observer import QuietObserver
    from tuner.search.context import Proposal, SearchContext
    from tuner.search.runner import TrialRunner
    from tuner.store import SearchStore

    data, _ = digits_data
    store = SearchStore(None, results, create=True)
    store.open_study("s", {})
    runner = TrialRunner(SearchContext(store, "s", tiny_space, data, QuietObserver()))
    params = tiny_space.complete({"depth": 1})
    number = store.trials.begin("s", params)

    record = runner.run(Proposal(number, params, max_epochs=2, should_prune=lambda epoch, value: True))
    assert record.state == "pruned" and record.epochs == 1 and record.value == record.history["val_accuracy"][0]
    assert record.timings["train_seconds"] == record.timings["first_epoch_seconds"] > 0
    (stored,) = store.trials.all("s")  # the runner recorded it: state, value and history as returned
    assert (stored.state, stored.value, stored.history) == (record.state, record.value, record.history)


def test_predictor_matches_keras_predict_and_mirrors_the_images(digits_data, tiny_space):
    """On JAX the predictor runs its own program (compiled ahead, in a thread); on every backend
    it must give what Keras's predict gives, the last padded batch and the mirrors included."""
    from tuner.training.model import build_model
    from tuner.training.predictor import Predictor

    data, _ = digits_data
    x = data.x_val[:300]
    model = build_model(tiny_space.complete({"depth": 1, "width": 8}), data.input_shape, data.n_classes)
    predictor = Predictor(model, x.shape, x.dtype)
    predictor.compile_ahead()
    expected = np.asarray(model.predict(x, verbose=0))
    mirrors = np.asarray(model.predict(np.ascontiguousarray(x[:, :, ::-1]), verbose=0))
    assert not np.allclose(expected, mirrors, atol=1e-4)
    np.testing.assert_allclose(predictor(x), expected, atol=1e-5)
    np.testing.assert_allclose(predictor(x, mirrored=True), mirrors, atol=1e-5)
    padded = Predictor(model, (130, *x.shape[1:]), x.dtype, batch=20)  # 7 batches, more than in flight; the last padded
    np.testing.assert_allclose(padded(x[:130]), expected[:130], atol=1e-5)


def test_prior_bias_starts_the_classifier_at_the_log_class_priors(tiny_space, digits_data):
    """The playbook's advice for imbalanced classes: an untrained model with all-zero kernels
    into the classifier predicts the training priors (each count plus one, over the total)."""
    import keras

    from tuner.training.fit import _compile

    data = digits_data[0]
    keep = np.concatenate([np.flatnonzero(data.y_train == 0), np.flatnonzero(data.y_train == 1)[:5]])
    skewed = type(data)(data.x_train[keep], data.y_train[keep], data.x_val, data.y_val, data.class_names)
    counts = np.bincount(skewed.y_train, minlength=10) + 1.0
    params = tiny_space.complete({"depth": 1, "width": 4, "prior_bias": True})
    model, _, _ = _compile(params, skewed, max_epochs=1, seed=0)
    logits = model.get_layer("logits")
    assert np.allclose(keras.ops.convert_to_numpy(logits.bias.value), np.log(counts / counts.sum()), atol=1e-6)
    logits.kernel.assign(np.zeros(logits.kernel.shape, "float32"))
    probs = keras.ops.convert_to_numpy(model(skewed.x_val[:3].astype("float32")))
    assert np.allclose(probs, counts / counts.sum(), atol=1e-6)
    plain, _, _ = _compile(tiny_space.complete({"depth": 1, "width": 4}), skewed, max_epochs=1, seed=0)
    assert not keras.ops.convert_to_numpy(plain.get_layer("logits").bias.value).any()


def test_balanced_class_weight_weighs_each_training_image_as_scikit_learn_does(digits_data):
    from sklearn.utils.class_weight import compute_sample_weight

    from tuner.training.fit import EpochBatches

    data = digits_data[0]
    keep = np.concatenate([np.flatnonzero(data.y_train == c)[:n] for c, n in enumerate([40, 10, 5])])
    x, y = data.x_train[keep], data.y_train[keep]
    batches = EpochBatches(x, y, 3, batch_size=11, seed=0, balanced=True)
    expected = compute_sample_weight("balanced", y)
    seen = 0
    for i in range(len(batches)):
        images, targets, weights = batches[i]
        rows = np.sort(batches.order[i * 11:(i + 1) * 11])
        assert np.allclose(weights, expected[rows]) and (targets.argmax(1) == y[rows]).all()
        seen += len(weights)
    assert seen == len(batches) * 11
    assert len(EpochBatches(x, y, 3, batch_size=11, seed=0)[0]) == 2  # unweighted: (images, targets)
