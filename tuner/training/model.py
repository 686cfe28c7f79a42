"""`build_model(params, input_shape, n_classes)`: a parameter dict becomes a Keras 3 model.

Five families (`model`), each a body that turns pixels into features, then the same head:
- mlp: `depth` dense layers of `width` units (the course's first networks);
- lenet: LeNet-5 style, `depth` blocks of a 5x5 conv and a 2x2 pooling, flattened;
- cnn: VGG style, `depth` blocks of two 3x3 convs and a 2x2 pooling;
- resnet: ResNet-9 style (the DAWNBench recipe at depth 3, width 64);
- separable: Xception style (Keras's "image classification from scratch"), a strided stem,
  then `depth` blocks of two separable convs and a strided pooling with a 1x1 residual.

Only built-in Keras layers, so a saved model loads with nothing but `keras`. The model takes
raw 0-255 pixels and returns class probabilities (float32, also under mixed precision). L1, L2
and max-norm are not here: the optimizer applies them to every kernel (`tuner.training.optim`),
so they are not constants of the compiled step.

Every initial value is made on the host (`tuner.training.initializers`: the kernels by
`kernel_initializer`, from the trial's seed; zeros and ones): on JAX, Keras's own initializers
compile a program for every new shape (a new architecture of seven convolutions: 2.9 s of
random-number programs on a CPU, then 0.4 s of zeros and ones).
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np
from keras import layers

from tuner.training import initializers as host

MAX_FILTERS = 512
PROBABILITIES = "probabilities"  # the softmax layer's name: the ensemble reads its input (the logits)


class _Layers:
    """The layers of one model, each hidden one with the trial's activation, batch norm choice
    and kernel initializer (drawn from one generator, in build order)."""

    def __init__(self, params: dict[str, Any], rng: np.random.Generator):
        self.params, self.rng = params, rng

    def kernel(self) -> host.HostInitializer:
        return host.kernel(self.params["kernel_initializer"], self.rng)

    def normalized(self, x: Any, activate: bool = True) -> Any:
        """Batch norm (when the trial has it), then the activation."""
        if self.params["batch_norm"]:
            x = layers.BatchNormalization(momentum=0.9, beta_initializer=host.ZEROS, gamma_initializer=host.ONES,
                                          moving_mean_initializer=host.ZEROS, moving_variance_initializer=host.ONES)(x)
        return layers.Activation(self.params["activation"])(x) if activate else x

    def conv(self, x: Any, filters: int, size: int = 3, strides: int = 1, activate: bool = True) -> Any:
        x = layers.Conv2D(filters, size, strides=strides, padding="same", use_bias=not self.params["batch_norm"],
                          kernel_initializer=self.kernel(), bias_initializer=host.ZEROS)(x)
        return self.normalized(x, activate)

    def separable(self, x: Any, filters: int) -> Any:
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=not self.params["batch_norm"],
                                   depthwise_initializer=self.kernel(), pointwise_initializer=self.kernel(),
                                   bias_initializer=host.ZEROS)(x)
        return self.normalized(x)

    def dense(self, x: Any, units: int, **kwargs: Any) -> Any:
        return layers.Dense(units, kernel_initializer=self.kernel(), bias_initializer=host.ZEROS, **kwargs)(x)

    def pool(self, x: Any, size: int = 2, strides: int | None = None, padding: str = "valid") -> Any:
        kind = layers.MaxPooling2D if self.params["pooling"] == "max" else layers.AveragePooling2D
        return kind(size, strides=strides, padding=padding)(x)

    def filters(self, block: int) -> int:
        return min(self.params["width"] * 2**block, MAX_FILTERS)


def _mlp_body(x: Any, make: _Layers) -> Any:
    """Dense layers of `width` units, each with batch norm and dropout when the trial has them
    (the last one's dropout is the head's)."""
    x = layers.Flatten()(x)
    for layer in range(make.params["depth"]):
        x = make.normalized(make.dense(x, make.params["width"], use_bias=not make.params["batch_norm"]))
        if make.params["dropout"] > 0 and layer < make.params["depth"] - 1:
            x = layers.Dropout(make.params["dropout"])(x)
    return x


def _lenet_body(x: Any, make: _Layers) -> Any:
    """LeNet-5 style: each block a 5x5 conv and a 2x2 pooling; filters double per block; flattened."""
    for block in range(make.params["depth"]):
        x = make.pool(make.conv(x, make.filters(block), size=5))
    return layers.Flatten()(x)


def _cnn_body(x: Any, make: _Layers) -> Any:
    """VGG style: each block is two 3x3 convs and a 2x2 pooling; filters double per block."""
    for block in range(make.params["depth"]):
        filters = make.filters(block)
        x = make.pool(make.conv(make.conv(x, filters), filters))
    return layers.GlobalAveragePooling2D()(x)


def _resnet_body(x: Any, make: _Layers) -> Any:
    """ResNet-9 style (depth 3, width 64 is the DAWNBench ResNet-9): a prep conv, then stages
    of conv + max-pool, every other one followed by a two-conv residual block."""
    x = make.conv(x, make.params["width"])
    for stage in range(make.params["depth"]):
        filters = make.filters(stage + 1)
        x = layers.MaxPooling2D(2)(make.conv(x, filters))
        if stage % 2 == 0:
            x = layers.Add()([x, make.conv(make.conv(x, filters), filters)])
    return layers.GlobalMaxPooling2D()(x)


def _separable_body(x: Any, make: _Layers) -> Any:
    """Xception style: a 3x3 conv of stride 2, then blocks of two separable convs and a 3x3
    pooling of stride 2, each added to a 1x1 strided conv of the block's input; a last separable
    conv, then global average pooling."""
    x = previous = make.conv(x, make.params["width"], strides=2)
    for block in range(make.params["depth"]):
        filters = make.filters(block + 1)
        x = make.pool(make.separable(make.separable(x, filters), filters), size=3, strides=2, padding="same")
        x = previous = layers.Add()([x, make.conv(previous, filters, size=1, strides=2, activate=False)])
    return layers.GlobalAveragePooling2D()(make.separable(x, make.filters(make.params["depth"] + 1)))


BODIES: dict[str, Callable[[Any, _Layers], Any]] = {"mlp": _mlp_body, "lenet": _lenet_body, "cnn": _cnn_body,
                                                   "resnet": _resnet_body, "separable": _separable_body}


def build_model(params: dict[str, Any], input_shape: tuple[int, int, int], n_classes: int,
                seed: int = 0, class_priors: np.ndarray | None = None) -> keras.Model:
    """The classifier for one complete parameter dict (see `tuner.space.params`), its kernels drawn
    from `seed`; with `class_priors`, the classifier's bias starts at their logarithms, so the
    untrained model predicts the priors (the playbook's advice for imbalanced classes)."""
    make = _Layers(params, np.random.default_rng(seed))
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = BODIES[params["model"]](layers.Rescaling(1 / 127.5, offset=-1.0)(inputs), make)
    if params["dropout"] > 0:
        x = layers.Dropout(params["dropout"])(x)
    if params["head_units"] > 0:
        x = make.dense(x, params["head_units"], activation=params["activation"])
        if params["dropout"] > 0:
            x = layers.Dropout(params["dropout"])(x)
    bias = host.ZEROS if class_priors is None else host.constant(np.log(class_priors))
    logits = layers.Dense(n_classes, kernel_initializer=make.kernel(), bias_initializer=bias, name="logits")(x)
    if params["logit_scale"] != 1.0:
        logits = layers.Rescaling(params["logit_scale"], name="logit_scale")(logits)
    outputs = layers.Activation("softmax", dtype="float32", name=PROBABILITIES)(logits)
    model = keras.Model(inputs, outputs, name=f"{params['model']}_d{params['depth']}_w{params['width']}")
    host.restore_builtin(model)
    return model
