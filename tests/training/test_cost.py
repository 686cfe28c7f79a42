"""A model's multiply-adds and written values, counted from its layers, against counts done by hand;
every family is counted, a stack of dense layers counts exactly the sum of its matrices and of its
widths, and augmentation adds work to training only."""

from __future__ import annotations

import keras
import pytest
from hypothesis import given, settings, strategies as st

from tuner.space.params import MODELS
from tuner.training.augment import AFFINE_PASSES, Augment
from tuner.training.cost import ELEMENT_MACS, Cost, layer_elements, layer_macs, model_cost, model_elements, model_macs
from tuner.training.model import build_model


def _one(layer: keras.layers.Layer, shape: tuple[int, ...]) -> keras.layers.Layer:
    layer(keras.Input(shape))
    return layer


@pytest.mark.parametrize("layer, shape, macs", [
    (keras.layers.Conv2D(16, 3, padding="same"), (8, 8, 1), 8 * 8 * 9 * 1 * 16),
    (keras.layers.Conv2D(8, 5), (12, 12, 3), 8 * 8 * 25 * 3 * 8),  # valid padding: 8x8 out
    (keras.layers.Conv2D(4, 3, strides=2, padding="same"), (8, 8, 2), 4 * 4 * 9 * 2 * 4),
    (keras.layers.Conv2D(4, 3, padding="same", groups=2), (8, 8, 2), 8 * 8 * 9 * 2 * 4 / 2),
    (keras.layers.SeparableConv2D(6, 3, padding="same"), (10, 10, 4), 10 * 10 * (9 * 4 + 4 * 6)),
    (keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2), (10, 10, 4), 10 * 10 * 9 * 4 * 2),
    (keras.layers.Dense(10), (64,), 640),
    (keras.layers.MaxPooling2D(2), (8, 8, 3), 0),
    (keras.layers.BatchNormalization(), (8, 8, 3), 0),
])
def test_each_layer_counts_its_multiply_adds(layer, shape, macs):
    assert layer_macs(_one(layer, shape)) == macs


@settings(max_examples=25, deadline=None, derandomize=True)
@given(widths=st.lists(st.integers(1, 64), min_size=1, max_size=4), inputs=st.integers(1, 64))
def test_a_dense_stack_counts_the_sum_of_its_matrices_and_writes_its_widths(widths, inputs):
    x = start = keras.Input((inputs,))
    for w in widths:
        x = keras.layers.Dense(w)(x)
    sizes = [inputs, *widths]
    model = keras.Model(start, x)
    assert model_macs(model) == sum(a * b for a, b in zip(sizes, sizes[1:]))
    assert model_elements(model) == sum(widths)


def test_a_nested_model_is_counted_inside_its_wrapper():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    x = keras.Input((4,))
    assert model_macs(keras.Model(x, keras.layers.Dense(2)(inner(x)))) == 4 * 3 + 3 * 2


@pytest.mark.parametrize("family", MODELS)
def test_every_family_has_a_cost_and_wider_costs_more(family, tiny_space):
    def cost(width: int):
        params = tiny_space.complete({"model": family, "depth": 1, "width": width})
        return model_cost(build_model(params, (16, 16, 1), 10), steps=7, batch_size=32, val_images=100)

    narrow, wide = cost(4), cost(8)
    assert 0 < narrow.macs < wide.macs and 0 < narrow.weights < wide.weights
    assert (narrow.steps, narrow.batch_size, narrow.val_images) == (7, 32, 100)


@pytest.mark.parametrize("layer, shape, elements", [
    (keras.layers.Conv2D(16, 3, padding="same"), (8, 8, 1), 8 * 8 * 16),
    (keras.layers.Conv2D(4, 3, strides=2, padding="same"), (8, 8, 2), 4 * 4 * 4),
    (keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2), (10, 10, 4), 10 * 10 * 8),
    (keras.layers.BatchNormalization(), (8, 8, 3), 8 * 8 * 3),
    (keras.layers.Activation("relu"), (5, 7, 2), 5 * 7 * 2),
    (keras.layers.MaxPooling2D(2), (8, 8, 3), 4 * 4 * 3),
    (keras.layers.Dense(10), (64,), 10),
    (keras.layers.SeparableConv2D(6, 3, padding="same"), (10, 10, 4), 10 * 10 * 6),  # its output (the fit weighs it)
    (keras.layers.Flatten(), (8, 8, 3), 0),  # a view: nothing written
    (keras.layers.Reshape((64, 3)), (8, 8, 3), 0),
])
def test_each_layer_counts_the_values_it_writes(layer, shape, elements):
    assert layer_elements(_one(layer, shape)) == elements


@pytest.mark.parametrize("augment, written", [
    (Augment(), 0.0),  # nothing to do: the step has no augmentation
    (Augment(flip=True), (2 + 1) * 8 * 6 * 3),  # the flip and its select; the (empty) cutout box's select
    (Augment(max_shift=2), (1 + 2 * 4 + 1) * 8 * 6 * 3),  # the pad, two selects a pixel of shift on each axis
    (Augment(rotation=10.0), (1 + AFFINE_PASSES) * 8 * 6 * 3),
    (Augment(zoom=0.1, flip=True, cutout=4), (2 + 1 + AFFINE_PASSES) * 8 * 6 * 3),
])
def test_augmentation_counts_what_it_writes(augment, written):
    assert augment.written((8, 6, 3)) == written


def test_augmentation_adds_to_training_work_only(tiny_space):
    params = tiny_space.complete({"depth": 1, "width": 4})
    model = build_model(params, (16, 16, 1), 10)
    plain = model_cost(model, steps=7, batch_size=32, val_images=100)
    augmented = model_cost(model, steps=7, batch_size=32, val_images=100, augment_elements=768.0)
    assert plain.augment_elements == 0 and augmented.augment_elements == 768
    assert augmented.work == plain.work + ELEMENT_MACS * 768
    assert augmented.forward_work == plain.forward_work == plain.work
    assert plain.work == plain.macs + ELEMENT_MACS * plain.elements > plain.macs


def test_a_cost_that_writes_nothing_is_its_multiply_adds():
    cost = Cost(macs=1e6, weights=10, steps=1, batch_size=1, val_images=0)
    assert cost.work == cost.forward_work == 1e6
