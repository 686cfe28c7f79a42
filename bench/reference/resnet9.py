"""A hand-written ResNet-9 recipe in plain Keras, the yardstick for `tune`'s training path.

Written as a user would write it, sharing no code with `tuner/` beyond the data split (so both
see the same images): the DAWNBench ResNet-9 (prep conv, three stages, two residual blocks,
global max pool, a linear classifier), numpy random crop + flip on the host, SGD Nesterov,
one-cycle or cosine learning rate, label smoothing, flip test-time augmentation, `model.fit`.
`bench/recipe_check.py` runs it beside the same recipe trained by `tuner.training.fit.train_trial`.

    python bench/reference/resnet9.py --data ../shared/datasets/cifar10.tar.gz --epochs 16 --out ref.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import keras
import numpy as np
from keras import layers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recipe import add_recipe_arguments, load_split, recipe_from_args  # noqa: E402


def conv_bn(x, filters: int, l2: float):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_regularizer=keras.regularizers.L2(l2))(x)
    return layers.Activation("relu")(layers.BatchNormalization(momentum=0.9)(x))


def resnet9(width: int, l2: float, logit_scale: float) -> keras.Model:
    inputs = keras.Input((32, 32, 3))
    x = conv_bn(layers.Rescaling(1 / 127.5, offset=-1.0)(inputs), width, l2)
    for stage, residual in ((1, True), (2, False), (3, True)):
        x = layers.MaxPooling2D(2)(conv_bn(x, width * 2**stage, l2))
        if residual:
            x = layers.Add()([x, conv_bn(conv_bn(x, width * 2**stage, l2), width * 2**stage, l2)])
    x = layers.GlobalMaxPooling2D()(x)
    logits = layers.Dense(10, kernel_regularizer=keras.regularizers.L2(l2))(x)
    if logit_scale != 1.0:
        logits = layers.Rescaling(logit_scale)(logits)
    return keras.Model(inputs, layers.Activation("softmax", dtype="float32")(logits))


class Batches(keras.utils.PyDataset):
    """Shuffled full batches, each image randomly flipped and cropped from a 4-pixel pad, and
    with `cutout`, a square at a random centre set to mid-grey."""

    def __init__(self, x, y, batch_size: int, seed: int, cutout: int = 0):
        super().__init__()
        self.cutout = cutout
        self.x = np.pad(x, [(0, 0), (4, 4), (4, 4), (0, 0)], mode="constant")
        self.y, self.batch_size, self.rng = keras.utils.to_categorical(y, 10), batch_size, np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self):
        return len(self.y) // self.batch_size

    def __getitem__(self, i):
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        dy, dx = self.rng.integers(0, 9, 2)  # one offset per batch keeps this a fast slice...
        out = self.x[idx, dy:dy + 32, dx:dx + 32]
        flip = self.rng.random(len(idx)) < 0.5  # ...and flips per image
        out[flip] = out[flip, :, ::-1]
        if self.cutout:
            out = out.astype("float32")
            for image, (cy, cx) in zip(out, self.rng.integers(0, 32, (len(idx), 2))):
                top, left = max(cy - self.cutout // 2, 0), max(cx - self.cutout // 2, 0)
                image[top:cy - self.cutout // 2 + self.cutout, left:cx - self.cutout // 2 + self.cutout] = 127.5
        return out, self.y[idx]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.y))


class Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle (linear up over the first 25%, linear down to zero) or cosine to zero."""

    def __init__(self, kind: str, peak: float, total_steps: int):
        self.kind, self.peak, self.total = kind, peak, total_steps

    def __call__(self, step):
        frac = keras.ops.cast(step, "float32") / self.total
        if self.kind == "cosine":
            return self.peak * 0.5 * (1 + keras.ops.cos(math.pi * frac))
        return self.peak * keras.ops.where(frac < 0.25, frac / 0.25, (1 - frac) / 0.75)

    def get_config(self) -> dict:
        return {"kind": self.kind, "peak": self.peak, "total_steps": self.total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_recipe_arguments(parser)
    args = parser.parse_args()
    recipe = recipe_from_args(args)
    keras.utils.set_random_seed(args.seed)
    keras.config.set_dtype_policy("mixed_bfloat16" if args.precision == "bf16" else "float32")
    data = load_split(args)
    batches = Batches(data.x_train, data.y_train, recipe["batch_size"], args.seed, recipe["cutout"])
    model = resnet9(recipe["width"], recipe["l2"], recipe["logit_scale"])
    sched = Schedule(recipe["lr_schedule"], recipe["learning_rate"], len(batches) * args.epochs)
    model.compile(keras.optimizers.SGD(sched, momentum=recipe["momentum"], nesterov=True),
                  keras.losses.CategoricalCrossentropy(label_smoothing=recipe["label_smoothing"]), metrics=["accuracy"])
    history = []
    start = time.time()
    for epoch in range(args.epochs):
        model.fit(batches, epochs=1, verbose=0)
        probs = model.predict(data.x_val, batch_size=1024, verbose=0)
        probs = (probs + model.predict(data.x_val[:, :, ::-1], batch_size=1024, verbose=0)) / 2
        history.append(float(np.mean(probs.argmax(1) == data.y_val)))
        print(f"reference epoch {epoch + 1}: val_accuracy {history[-1]:.4f} ({time.time() - start:.0f} s)", flush=True)
    record = {"tool": "reference", "recipe": recipe, "val_accuracy": history, "seconds": time.time() - start,
              "backend": keras.backend.backend()}
    args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
