"""`build_model(params, input_shape, n_classes)`: a parameter dict becomes a Keras 3 model.

Only built-in Keras layers, so a saved model loads with nothing but `keras`. The model takes
raw 0-255 pixels and returns class probabilities (float32, also under mixed precision). L2 is
not here: the optimizer applies it to every kernel (`tuner.training.optim`), so it is not a constant of
the compiled step.

Every initial value is made on the host (`tuner.training.initializers`: kernels Glorot uniform, Keras's
default, from the trial's seed; zeros and ones): on JAX, Keras's own initializers compile a program
for every new shape (a new architecture of seven convolutions: 2.9 s of random-number programs on a
CPU, then 0.4 s of zeros and ones).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers

from tuner.training import initializers as host

MAX_FILTERS = 512
PROBABILITIES = "probabilities"  # the softmax layer's name: the ensemble reads its input (the logits)


def _conv(x: Any, filters: int, params: dict[str, Any], rng: np.random.Generator) -> Any:
    x = layers.Conv2D(filters, 3, padding="same", use_bias=not params["batch_norm"],
                      kernel_initializer=host.glorot_uniform(rng), bias_initializer=host.ZEROS)(x)
    if params["batch_norm"]:
        x = layers.BatchNormalization(momentum=0.9, beta_initializer=host.ZEROS, gamma_initializer=host.ONES,
                                      moving_mean_initializer=host.ZEROS, moving_variance_initializer=host.ONES)(x)
    return layers.Activation("relu")(x)


def _dense(x: Any, units: int, rng: np.random.Generator, **kwargs: Any) -> Any:
    return layers.Dense(units, kernel_initializer=host.glorot_uniform(rng), bias_initializer=host.ZEROS, **kwargs)(x)


def _cnn_body(x: Any, params: dict[str, Any], rng: np.random.Generator) -> Any:
    """VGG-style: each block is two 3x3 convs and a 2x2 max-pool; filters double per block."""
    for block in range(params["depth"]):
        filters = min(params["width"] * 2**block, MAX_FILTERS)
        x = _conv(_conv(x, filters, params, rng), filters, params, rng)
        x = layers.MaxPooling2D(2)(x)
    return layers.GlobalAveragePooling2D()(x)


def _resnet_body(x: Any, params: dict[str, Any], rng: np.random.Generator) -> Any:
    """ResNet-9 style (depth 3, width 64 is the DAWNBench ResNet-9): a prep conv, then stages
    of conv + pool, every other one followed by a two-conv residual block."""
    x = _conv(x, params["width"], params, rng)
    for stage in range(params["depth"]):
        filters = min(params["width"] * 2 ** (stage + 1), MAX_FILTERS)
        x = layers.MaxPooling2D(2)(_conv(x, filters, params, rng))
        if stage % 2 == 0:
            x = layers.Add()([x, _conv(_conv(x, filters, params, rng), filters, params, rng)])
    return layers.GlobalMaxPooling2D()(x)


def build_model(params: dict[str, Any], input_shape: tuple[int, int, int], n_classes: int,
                seed: int = 0, class_priors: np.ndarray | None = None) -> keras.Model:
    """The classifier for one complete parameter dict (see `tuner.space.params`), its kernels drawn
    from `seed`; with `class_priors`, the classifier's bias starts at their logarithms, so the
    untrained model predicts the priors (the playbook's advice for imbalanced classes)."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    body = {"cnn": _cnn_body, "resnet": _resnet_body}[params["model"]]
    x = body(x, params, rng)
    if params["dropout"] > 0:
        x = layers.Dropout(params["dropout"])(x)
    if params["head_units"] > 0:
        x = _dense(x, params["head_units"], rng, activation="relu")
        if params["dropout"] > 0:
            x = layers.Dropout(params["dropout"])(x)
    bias = host.ZEROS if class_priors is None else host.constant(np.log(class_priors))
    logits = layers.Dense(n_classes, kernel_initializer=host.glorot_uniform(rng), bias_initializer=bias,
                          name="logits")(x)
    if params["logit_scale"] != 1.0:
        logits = layers.Rescaling(params["logit_scale"], name="logit_scale")(logits)
    outputs = layers.Activation("softmax", dtype="float32", name=PROBABILITIES)(logits)
    model = keras.Model(inputs, outputs, name=f"{params['model']}_d{params['depth']}_w{params['width']}")
    host.restore_builtin(model)
    return model
