"""`build_model(params, input_shape, n_classes)`: a parameter dict becomes a Keras 3 model.

Only built-in Keras layers, so a saved model loads with nothing but `keras`. The model takes
raw 0-255 pixels and returns class probabilities (float32, also under mixed precision). L2 is
not here: the optimizer applies it to every kernel (`tuner.optim`), so it is not a constant of
the compiled step.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

MAX_FILTERS = 512


def _conv(x, filters: int, params: dict[str, Any]):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=not params["batch_norm"])(x)
    if params["batch_norm"]:
        x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.Activation("relu")(x)


def _cnn_body(x, params: dict[str, Any]):
    """VGG-style: each block is two 3x3 convs and a 2x2 max-pool; filters double per block."""
    for block in range(params["depth"]):
        filters = min(params["width"] * 2**block, MAX_FILTERS)
        x = _conv(_conv(x, filters, params), filters, params)
        x = layers.MaxPooling2D(2)(x)
    return layers.GlobalAveragePooling2D()(x)


def _resnet_body(x, params: dict[str, Any]):
    """ResNet-9 style (depth 3, width 64 is the DAWNBench ResNet-9): a prep conv, then stages
    of conv + pool, every other one followed by a two-conv residual block."""
    x = _conv(x, params["width"], params)
    for stage in range(params["depth"]):
        filters = min(params["width"] * 2 ** (stage + 1), MAX_FILTERS)
        x = layers.MaxPooling2D(2)(_conv(x, filters, params))
        if stage % 2 == 0:
            x = layers.Add()([x, _conv(_conv(x, filters, params), filters, params)])
    return layers.GlobalMaxPooling2D()(x)


def build_model(params: dict[str, Any], input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    """The classifier for one complete parameter dict (see `tuner.params`)."""
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    body = {"cnn": _cnn_body, "resnet": _resnet_body}[params["model"]]
    x = body(x, params)
    if params["dropout"] > 0:
        x = layers.Dropout(params["dropout"])(x)
    if params["head_units"] > 0:
        x = layers.Dense(params["head_units"], activation="relu")(x)
        if params["dropout"] > 0:
            x = layers.Dropout(params["dropout"])(x)
    logits = layers.Dense(n_classes, name="logits")(x)
    if params["logit_scale"] != 1.0:
        logits = layers.Rescaling(params["logit_scale"], name="logit_scale")(logits)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name=f"{params['model']}_d{params['depth']}_w{params['width']}")
