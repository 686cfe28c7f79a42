"""The course's vocabulary: every model family, activation, initializer and pooling builds a
model that trains and saves as plain Keras; rotation and zoom do in the step what numpy does
for the pictures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tuner.space.params import ACTIVATIONS, INITIALIZERS, MODELS, POOLINGS, complete_params


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3)])
def test_every_family_outputs_probabilities_and_loads_with_plain_keras(model, shape, tmp_path):
    import keras

    from tuner.training.model import build_model

    params = complete_params({"model": model, "depth": 2, "width": 4, "head_units": 8, "dropout": 0.1})
    built = build_model(params, shape, 7)
    x = np.random.default_rng(0).integers(0, 255, (3, *shape)).astype("float32")
    probs = keras.ops.convert_to_numpy(built(x))
    assert probs.shape == (3, 7) and np.allclose(probs.sum(1), 1, atol=1e-5)
    built.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")  # no custom_objects
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), probs, atol=1e-6)
    assert built.name.startswith(model)


# What each family is made of, by the layers Keras reports.
SHAPES = {"mlp": ({"Dense": 3 + 1, "Flatten": 1}, {"Conv2D"}), "lenet": ({"Conv2D": 2, "Flatten": 1}, {"Add"}),
          "cnn": ({"Conv2D": 4, "GlobalAveragePooling2D": 1}, {"Flatten"}),
          "resnet": ({"Conv2D": 5, "Add": 1, "GlobalMaxPooling2D": 1}, {"Flatten"}),
          "separable": ({"SeparableConv2D": 5, "Conv2D": 3, "Add": 2, "GlobalAveragePooling2D": 1}, {"Flatten"})}


@pytest.mark.parametrize("model", MODELS)
def test_each_family_is_the_network_its_name_says(model):
    from collections import Counter

    from tuner.training.model import build_model

    depth = 3 if model == "mlp" else 2
    params = complete_params({"model": model, "depth": depth, "width": 4, "head_units": 0, "pooling": "average"})
    layers = Counter(type(layer).__name__ for layer in build_model(params, (32, 32, 1), 3).layers)
    has, lacks = SHAPES[model]
    assert all(layers[name] == count for name, count in has.items()), layers
    assert not any(layers[name] for name in lacks), layers
    if model in ("lenet", "cnn"):
        assert layers["AveragePooling2D"] == 2 and not layers["MaxPooling2D"]
    if model == "lenet":
        kernels = [layer.kernel_size for layer in build_model(params, (32, 32, 1), 3).layers if type(layer).__name__ == "Conv2D"]
        assert kernels == [(5, 5), (5, 5)]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_is_every_hidden_layers(activation):
    import keras

    from tuner.training.model import build_model

    params = complete_params({"model": "cnn", "depth": 1, "width": 4, "head_units": 8, "activation": activation})
    model = build_model(params, (8, 8, 1), 3)
    hidden = [layer for layer in model.layers if type(layer).__name__ == "Activation" and layer.name != "probabilities"]
    function = keras.activations.get(activation)  # swish is Keras's silu
    assert len(hidden) == 2 and all(layer.activation is function for layer in hidden)
    head = model.get_layer(index=-3)  # the head's dense layer, before the logits and softmax
    assert head.activation is function


# Keras's initializer for each name, with the spread its documentation gives for a kernel of
# fan in 144 and fan out 288 (3x3, 16 in, 32 out).
FAN_IN, FAN_OUT = 144, 288
SPREAD = {"glorot_uniform": math.sqrt(2 / (FAN_IN + FAN_OUT)), "glorot_normal": math.sqrt(2 / (FAN_IN + FAN_OUT)),
          "he_uniform": math.sqrt(2 / FAN_IN), "he_normal": math.sqrt(2 / FAN_IN), "lecun_normal": math.sqrt(1 / FAN_IN),
          "random_uniform": 0.1 / math.sqrt(12), "random_normal": 0.05, "zeros": 0.0}


@pytest.mark.parametrize("name", INITIALIZERS)
def test_every_kernel_initializer_draws_as_keras_does_and_is_named_in_the_config(name):
    import keras

    from tuner.training import initializers as host
    from tuner.training.model import build_model

    shape = (3, 3, 16, 32)
    ours = host.kernel(name, np.random.default_rng(0))(shape)
    config = {} if name == "zeros" else {"seed": 3}
    theirs = keras.ops.convert_to_numpy(keras.initializers.get({"class_name": name, "config": config})(shape))
    assert ours.shape == shape
    assert np.std(ours) == pytest.approx(SPREAD[name], rel=0.05, abs=1e-9)
    assert np.std(theirs) == pytest.approx(SPREAD[name], rel=0.05, abs=1e-9)  # the table is Keras's
    if name != "random_normal":  # the others are bounded (uniform, or normal truncated at two deviations)
        assert np.abs(ours).max() <= np.abs(theirs).max() * 1.05 + 1e-9
    assert abs(float(np.mean(ours))) < 0.05 * SPREAD[name] + 1e-9
    params = complete_params({"model": "cnn", "depth": 1, "width": 4, "kernel_initializer": name})
    model = build_model(params, (8, 8, 1), 3)
    named = {layer.get_config()["kernel_initializer"]["class_name"] for layer in model.layers if hasattr(layer, "kernel")}
    assert named == {type(keras.initializers.get(name)).__name__}
    assert "HostInitializer" not in str(model.get_config())


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.lists(st.integers(1, 9), min_size=2, max_size=4))
def test_fans_are_counted_as_keras_counts_them(shape):
    from keras.src.initializers.random_initializers import compute_fans

    from tuner.training.initializers import fans

    assert fans(tuple(shape)) == tuple(int(f) for f in compute_fans(tuple(shape)))


def test_a_zero_initialized_network_does_not_learn_and_says_so(digits_data, tiny_space):
    """The course's example: with every kernel at zero, the hidden layers get no gradient, the
    loss stays at ln(classes), and the trial is recorded as what it is."""
    from tuner.training.fit import train_trial

    data, _ = digits_data
    params = tiny_space.complete({"depth": 1, "width": 8, "learning_rate": 0.01, "optimizer": "adam"})
    stuck = train_trial({**params, "kernel_initializer": "zeros", "batch_norm": False}, data, max_epochs=2, patience=2, seed=0)
    learns = train_trial({**params, "kernel_initializer": "he_normal"}, data, max_epochs=2, patience=2, seed=0)
    assert stuck.history["loss"][-1] == pytest.approx(math.log(10), abs=0.05)
    assert learns.history["loss"][-1] < math.log(10) - 0.3


@pytest.mark.parametrize("pooling", POOLINGS)
def test_pooling_is_the_blocks_downsampling(pooling):
    from tuner.training.model import build_model

    params = complete_params({"model": "lenet", "depth": 2, "width": 4, "pooling": pooling})
    names = [type(layer).__name__ for layer in build_model(params, (28, 28, 1), 3).layers]
    assert names.count({"max": "MaxPooling2D", "average": "AveragePooling2D"}[pooling]) == 2


def test_a_quarter_turn_is_numpys_rot90_and_a_half_scale_magnifies_the_centre():
    import keras

    from tuner.training.augment import Augment
    from tuner.training.choices import ANGLE_UNITS, SCALE_UNITS, apply_choices

    x = np.arange(2 * 5 * 5, dtype="float32").reshape(2, 5, 5, 1)
    quarter = np.zeros((2, 9), "int32")
    quarter[:, 7], quarter[:, 8] = 90 * ANGLE_UNITS, SCALE_UNITS
    turned = keras.ops.convert_to_numpy(Augment(rotation=90.0)([x, quarter], training=True))
    np.testing.assert_allclose(turned[..., 0], np.rot90(x[..., 0], axes=(1, 2)), atol=1e-3)
    np.testing.assert_allclose(apply_choices(x, quarter, 0), turned, atol=1e-3)
    half = quarter.copy()
    half[:, 7], half[:, 8] = 0, SCALE_UNITS // 2
    zoomed = keras.ops.convert_to_numpy(Augment(zoom=0.5)([x, half], training=True))
    assert zoomed[0, 2, 2, 0] == pytest.approx(x[0, 2, 2, 0])  # the centre stays
    assert zoomed[0, 0, 0, 0] == pytest.approx(x[0, 1, 1, 0])  # the corner reads half-way to the centre
    assert zoomed[0, 1, 1, 0] == pytest.approx(x[0, 1:3, 1:3, 0].mean())  # between four pixels: bilinear
    assert np.array_equal(keras.ops.convert_to_numpy(Augment(rotation=90.0)([x, quarter], training=False)), x)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), shape=st.tuples(st.integers(1, 4), st.integers(4, 12), st.integers(4, 12),
                                                      st.sampled_from([1, 3])),
       max_shift=st.integers(0, 2), flip=st.booleans(), cutout=st.integers(0, 4),
       rotation=st.sampled_from([0.0, 5.0, 30.0, 180.0]), zoom=st.sampled_from([0.0, 0.1, 0.5]))
def test_the_pictures_rotation_and_zoom_are_the_training_steps(seed, shape, max_shift, flip, cutout, rotation, zoom):
    """With rotation and zoom too, numpy (the report's and the check's pictures) gives what the
    compiled layer gives for the same host choices, within bilinear rounding."""
    import keras

    from tuner.training.augment import Augment
    from tuner.training.choices import apply_choices, draw_choices

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, shape).astype("float32")
    choices = draw_choices(rng, shape[0], max_shift, flip, cutout, shape[1:3], rotation, zoom)
    assert (np.abs(choices[:, 7]) <= rotation * 100).all() and (np.abs(choices[:, 8] - 10_000) <= zoom * 10_000).all()
    layer = Augment(max_shift, flip, cutout=cutout, rotation=rotation, zoom=zoom)
    expected = keras.ops.convert_to_numpy(layer([images, choices], training=True))
    np.testing.assert_allclose(apply_choices(images, choices, max_shift), expected, atol=0.05)


def test_a_trial_that_rotates_and_zooms_trains_on_choices_drawn_each_epoch(digits_data, tiny_space):
    """`augment` scales rotation and zoom as it scales shifts; the batches carry each image's
    angle and scale, drawn afresh every epoch, and the trial trains on them."""
    from tuner.training.fit import _compile, train_trial

    data, _ = digits_data
    params = tiny_space.complete({"depth": 1, "width": 4, "augment": 0.5, "rotation": 40.0, "zoom": 0.2, "max_shift": 0})
    _, _, batches = _compile(params, data, 1, 0)
    (_, choices), _ = batches[0]
    angles, scales = batches.choices[:, 7] / 100, batches.choices[:, 8] / 10_000
    assert choices.shape[1] == 9 and np.abs(angles).max() <= 20 and np.abs(scales - 1).max() <= 0.1
    assert np.abs(angles).max() > 15 and np.abs(scales - 1).max() > 0.08  # the whole range is drawn
    first = batches.choices.copy()
    batches.on_epoch_end()
    assert not np.array_equal(first, batches.choices)
    result = train_trial(params, data, max_epochs=2, patience=2, seed=0)
    assert math.isfinite(result.val_loss) and result.history["loss"][-1] < result.history["loss"][0]


@pytest.mark.parametrize("losses, n_classes, stuck", [
    ([2.3026, 2.3025, 2.3026], 10, True),
    ([2.31, 2.29], 10, True),  # within 1% of ln 10
    ([2.3026, 2.2], 10, False),  # it moved
    ([0.6931], 2, True),
    ([0.60], 2, False),
    ([2.3026, float("nan")], 10, False),  # NaN is a failure of its own, said as such
    ([], 10, False),
    ([2.4078, 2.3049, 2.3034, 2.3022], 10, True),  # a first epoch above: then 3 at ln 10 (it had trained 15)
    ([2.4078, 2.3049, 2.3034], 10, False),  # 2 at ln 10 after it: not yet
    ([1.2, 2.3026, 2.3026, 2.3026], 10, True),  # it collapsed to a uniform guess (validation says whether it had learned)
])
def test_a_trial_that_learned_nothing_is_said_to_have(losses, n_classes, stuck):
    from tuner.training.metrics import learned_nothing

    reason = learned_nothing(losses, n_classes)
    assert (reason is not None) == stuck
    if stuck:
        assert reason.startswith("learned nothing") and f"ln {n_classes}" in reason and "zero initializer" in reason


@settings(max_examples=100, deadline=None, derandomize=True)
@given(n_classes=st.integers(2, 1000), offsets=st.lists(st.floats(-0.5, 0.5), min_size=1, max_size=10))
def test_learned_nothing_is_the_last_three_epochs_within_one_percent_of_a_uniform_guess(n_classes, offsets):
    from tuner.training.metrics import learned_nothing

    # At 1% itself, which side a loss falls on is float rounding (0.01 drawn: 0.7000786... for two
    # classes, 1.0000000000000009% away); the property holds off that edge.
    assume(all(abs(abs(o) - 0.01) > 1e-9 for o in offsets))
    chance = math.log(n_classes)
    losses = [chance * (1 + o) for o in offsets]
    reason = learned_nothing(losses, n_classes)
    assert (reason is not None) == all(abs(o) <= 0.01 for o in offsets[-3:])
    if reason is not None:  # it names the epochs it sat there, the last ones
        stuck = len(offsets) - max((i + 1 for i, o in enumerate(offsets) if abs(o) > 0.01), default=0)
        assert f"for {stuck} epoch" in reason


@pytest.mark.parametrize("val_accuracies, n_classes, stuck", [
    ([0.1, 0.3646], 10, False),  # a loss held at ln 10 by augmentation and dropout, the model already at 36%
    ([0.0903, 0.1007], 10, True),
    ([0.19], 10, True),  # under the margin (23.5% for ten classes)
    ([0.56], 2, True), ([0.58], 2, False),  # two classes: 57.5%
])
def test_a_validation_accuracy_clearly_above_chance_learned_something(val_accuracies, n_classes, stuck):
    from tuner.training.metrics import learned_nothing

    losses = [math.log(n_classes)] * len(val_accuracies)
    assert (learned_nothing(losses, n_classes, val_accuracies) is not None) == stuck


@settings(max_examples=100, deadline=None, derandomize=True)
@given(n_classes=st.integers(2, 1000), accuracies=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=10))
def test_learned_nothing_never_says_so_of_a_trial_above_the_margin(n_classes, accuracies):
    from tuner.training.metrics import LEARNED_MARGIN, learned_nothing

    chance = 1 / n_classes
    stuck = learned_nothing([math.log(n_classes)] * len(accuracies), n_classes, accuracies) is not None
    assert stuck == all(a < chance + LEARNED_MARGIN * (1 - chance) for a in accuracies)


def test_a_search_records_a_zero_initialized_trial_as_complete_and_learning_nothing(tiny_space, results):
    """The course's zero initializer in a real search: the trial is no crash and no failure; it
    stops after three epochs at a uniform guess's loss, is recorded complete, at chance, with the
    reason, and the leaderboard says it."""
    from tuner.search.observer import QuietObserver
    from tuner.search.request import SearchRequest
    from tuner.search.run import run_search
    from tuner.store import SearchStore, TrialState
    from tuner.ui.board import build_board

    from tuner.space.schema import parse_space

    data = tiny_space.to_dict()
    data["training"].update(max_epochs=8, patience=8)  # only the stuck rule can stop it at 3
    space = parse_space(data, "zeros.yaml").with_overrides(fixed={"kernel_initializer": "zeros", "batch_norm": False})
    store = SearchStore(None, results, create=True)
    run_search(store, SearchRequest(space, "zeros", 1, cache_dir=results / "cache", seed=0), QuietObserver())
    (trial,) = store.trials.all("zeros")
    assert trial.state is TrialState.COMPLETE and trial.value < 0.2
    assert trial.reason is not None and trial.reason.startswith("learned nothing")
    assert trial.epochs == 3 and "for 3 epochs" in trial.reason  # stopped there: the budget goes elsewhere
    assert build_board(store, "zeros", 10).rows[0].reason == trial.reason


@pytest.mark.parametrize("losses, classes, val_accuracy, failed", [
    ([77.5, 26.4, 6.65], 10, 0.10, True),  # finite but far above a uniform guess: a learning rate of 10
    ([94.7, 156.8], 10, None, True),
    ([5.0], 10, 0.10, False),  # one epoch: a bad start may still recover
    ([3.0, 2.0], 10, 0.10, False),
    ([2.3, 4.6], 10, 0.10, False),  # exactly twice ln 10 (4.605): not over it
    ([12.93, 7.64], 3, 0.4444, False),  # falling, and 44% on three classes: learning (seen failed, the best trial)
    ([12.93, 7.64], 3, 0.40, True),  # under chance + 15% of the way to 100% (43.3%)
    ([77.5, 26.4, 6.65], 10, 0.30, False),
])
def test_a_finite_loss_far_above_a_uniform_guess_has_diverged_unless_it_learned(losses, classes, val_accuracy, failed):
    from tuner.training.metrics import diverged

    reason = diverged(losses, classes, val_accuracy)
    assert (reason is not None) == failed
    if failed:
        assert reason.startswith("diverged") and "learning rate" in reason


def test_a_diverging_trial_fails_with_its_reason_and_is_no_candidate(digits_data, tiny_space):
    """SGD at a learning rate of 10 on an MLP: a finite loss of 5.5 after two epochs, recorded as
    failed, not as a complete trial at chance that the ensemble could take."""
    from tuner.errors import TrialFailed
    from tuner.training.fit import train_trial

    data, _ = digits_data
    params = tiny_space.complete({"depth": 1, "width": 8, "optimizer": "sgd", "momentum": 0.9})
    params = {**params, "model": "mlp", "width": 64, "learning_rate": 10.0, "batch_norm": False}
    with pytest.raises(TrialFailed, match="diverged: the training loss is .* after 2 epochs"):
        train_trial(params, data, max_epochs=3, patience=3, seed=0)
