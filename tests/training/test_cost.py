"""A model's multiply-adds, counted from its layers, against counts done by hand; every family is
counted, and a stack of dense layers counts exactly the sum of its matrices."""

from __future__ import annotations

import keras
import pytest
from hypothesis import given, settings, strategies as st

from tuner.space.params import MODELS
from tuner.training.cost import layer_macs, model_cost, model_macs
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
def test_a_dense_stack_counts_the_sum_of_its_matrices(widths, inputs):
    x = start = keras.Input((inputs,))
    for w in widths:
        x = keras.layers.Dense(w)(x)
    sizes = [inputs, *widths]
    assert model_macs(keras.Model(start, x)) == sum(a * b for a, b in zip(sizes, sizes[1:]))


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
