"""One Keras model from several: members calibrated by a temperature, averaged with their
mirror images, weighted. Built-in layers only, so the result loads with plain Keras."""

from __future__ import annotations

from typing import Any

import numpy as np


def with_flip_tta(model: Any) -> Any:
    """The model averaged over the image and its mirror, from built-in layers only (the
    mirror is a fixed anti-diagonal Dense over the width axis), so it loads with plain keras."""
    import keras
    from keras import layers

    height, width, channels = model.input_shape[1:]
    inputs = keras.Input((height, width, channels))
    swapped = layers.Permute((1, 3, 2))(inputs)  # width last
    mirror = layers.Dense(width, use_bias=False, trainable=False, name="mirror")
    flipped = layers.Permute((1, 3, 2))(mirror(swapped))
    mirror.set_weights([np.eye(width, dtype="float32")[::-1]])
    return keras.Model(inputs, layers.Average()([model(inputs), model(flipped)]), name=f"{model.name}_tta")


def with_temperature(model: Any, temperature: float) -> Any:
    """The model with its logits divided by `temperature` before the softmax (built-in layers)."""
    import keras
    from keras import layers

    from tuner.training.model import PROBABILITIES

    if temperature == 1.0:
        return model
    logits = model.get_layer(PROBABILITIES).input
    tempered = layers.Rescaling(1.0 / temperature, name="temperature")(logits)
    return keras.Model(model.inputs, layers.Activation("softmax", dtype="float32", name="calibrated")(tempered))


def combine(models: dict[int, Any], weights: dict[int, float], tta: dict[int, bool],
            temperatures: dict[int, float] | None = None) -> Any:
    """One Keras model whose output is the weighted mean of its members' (calibrated) probabilities."""
    import keras
    from keras import layers

    first = next(iter(models.values()))
    inputs = keras.Input(first.input_shape[1:], name="pixels")
    outputs = []
    for n, model in models.items():
        model = with_temperature(model, (temperatures or {}).get(n, 1.0))
        model.name = f"trial_{n}"
        member = with_flip_tta(model) if tta[n] else model
        outputs.append(layers.Rescaling(weights[n], name=f"weight_{n}")(member(inputs)))
    out = outputs[0] if len(outputs) == 1 else layers.Add(name="weighted_mean")(outputs)
    return keras.Model(inputs, out, name="ensemble")
