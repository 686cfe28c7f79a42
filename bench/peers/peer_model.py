"""The peers' model, written once as a user would: the same VGG-style family as tune's `cnn`
(two 3x3 convs and a max-pool per block, filters doubling up to 512, global average pooling)."""

from __future__ import annotations

import keras
from keras import layers


def cnn(depth: int, width: int, dropout: float, l2: float, batch_norm: bool, learning_rate: float,
        input_shape: tuple[int, int, int] = (32, 32, 3)) -> keras.Model:
    model = keras.Sequential([keras.Input(input_shape), layers.Rescaling(1 / 127.5, offset=-1.0)])
    for block in range(depth):
        for _ in range(2):
            model.add(layers.Conv2D(min(width * 2**block, 512), 3, padding="same", kernel_regularizer=keras.regularizers.L2(l2)))
            if batch_norm:
                model.add(layers.BatchNormalization())
            model.add(layers.Activation("relu"))
        model.add(layers.MaxPooling2D(2))
    model.add(layers.GlobalAveragePooling2D())
    model.add(layers.Dropout(dropout))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
