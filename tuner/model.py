"""`build_model(params, input_shape, n_classes)`: a parameter dict becomes a Keras 3 model.

Only built-in Keras layers, so a saved model loads with nothing but `keras`. The model takes
raw 0-255 pixels and returns class probabilities (float32, also under mixed precision). L2 is
not here: the optimizer applies it to every kernel (`tuner.optim`), so it is not a constant of
the compiled step.

Kernels are drawn on the host (numpy, Glorot uniform: Keras's default) from the trial's seed. On
JAX, Keras's own initializer compiles a random-number program for every new kernel shape: a new
architecture of seven convolutions paid 2.9 s of them on a CPU, against 0.3 s built this way.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import initializers, layers

MAX_FILTERS = 512


def _conv(x, filters: int, params: dict[str, Any]):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=not params["batch_norm"], kernel_initializer="zeros")(x)
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


def build_model(params: dict[str, Any], input_shape: tuple[int, int, int], n_classes: int,
                seed: int = 0) -> keras.Model:
    """The classifier for one complete parameter dict (see `tuner.params`), its kernels drawn
    from `seed`."""
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    body = {"cnn": _cnn_body, "resnet": _resnet_body}[params["model"]]
    x = body(x, params)
    if params["dropout"] > 0:
        x = layers.Dropout(params["dropout"])(x)
    if params["head_units"] > 0:
        x = layers.Dense(params["head_units"], activation="relu", kernel_initializer="zeros")(x)
        if params["dropout"] > 0:
            x = layers.Dropout(params["dropout"])(x)
    logits = layers.Dense(n_classes, name="logits", kernel_initializer="zeros")(x)
    if params["logit_scale"] != 1.0:
        logits = layers.Rescaling(params["logit_scale"], name="logit_scale")(logits)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    model = keras.Model(inputs, outputs, name=f"{params['model']}_d{params['depth']}_w{params['width']}")
    _draw_kernels(model, np.random.default_rng(seed))
    return model


def _draw_kernels(model: keras.Model, rng: np.random.Generator) -> None:
    """Glorot-uniform kernels from `rng`, as keras.initializers.GlorotUniform draws them; the
    layers' configs name that initializer (what a rebuilt layer would use)."""
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, layers.Dense)):
            shape = tuple(layer.kernel.shape)
            receptive = int(np.prod(shape[:-2]))
            limit = np.sqrt(6.0 / (receptive * (shape[-2] + shape[-1])))
            layer.kernel.assign(rng.uniform(-limit, limit, shape).astype(layer.kernel.dtype))
            layer.kernel_initializer = initializers.GlorotUniform()
