"""Cost of on-device augmentation per training step: the same model and batches trained with
and without the Augment layer (shift + flip), after compilation, on the current backend.

    KERAS_BACKEND=jax python bench/augment_bench.py --model resnet --depth 3 --width 64 --batch 512 \
        --variants plain,host,shift_flip
    KERAS_BACKEND=jax python bench/augment_bench.py --model resnet --depth 3 --width 64 --batch 512 \
        --variants tune_plain,tune       # tune's own trainer and batches, augmentation off and on

The `tune` variants are the product's own path (`tuner.training.fit`: the training wrapper, its
optimizer with the one-cycle schedule, `EpochBatches` with the choices drawn on the host): the
cifar10 start point (shift 4, flip, 8x8 cutout, label smoothing 0.2) against the same with
augmentation off. The other variants feed Keras's array adapter and time a bare SGD model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def front_layers(variant: str) -> list:
    """What goes in front of the model: nothing, our augmentation, or parts of it."""
    import keras

    from tuner.training.augment import Augment

    class RandomOnly(keras.layers.Layer):  # draws the same random numbers, changes nothing
        def __init__(self):
            super().__init__()
            self.gen = keras.random.SeedGenerator(0)

        def call(self, x, training=False):
            r = keras.random.randint((keras.ops.shape(x)[0], 1, 1, 1), 0, 9, seed=self.gen)
            return x + keras.ops.cast(r, x.dtype) * 0

    class Identity(keras.layers.Layer):  # a front layer that does nothing: the wrapper's own cost
        def call(self, x, training=False):
            return x

    return {"plain": [], "identity": [Identity()], "shift_flip": [Augment(4, True, seed=0)], "shift": [Augment(4, False, seed=0)],
            "flip": [Augment(0, True, seed=0)], "random_only": [RandomOnly()]}[variant]


def host_trainer(model, shape: tuple[int, ...], cutout: int):
    """What `tune` trains: shift 4 + flip (+ cutout) with the choices drawn on the host."""
    import keras

    from tuner.training.augment import Augment
    from tuner.training.choices import CHOICES

    pixels, choices = keras.Input(shape), keras.Input((CHOICES,), dtype="int32")
    return keras.Model([pixels, choices], model(Augment(4, True, cutout=cutout)([pixels, choices])))


def time_tune_epochs(augmented: bool, args: argparse.Namespace, x: np.ndarray, y: np.ndarray) -> float:
    """Steady epoch time of tune's own trainer (`tuner.training.fit._compile`), as a trial runs it."""
    import keras

    from tuner.data import SearchData
    from tuner.space.params import complete_params
    from tuner.training.fit import _compile

    params = complete_params({"model": args.model, "depth": args.depth, "width": args.width, "head_units": 0,
                              "logit_scale": 0.125, "optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.4,
                              "lr_schedule": "onecycle", "l2": 2.5e-4, "batch_size": args.batch,
                              "label_smoothing": 0.2, "augment": 1.0 if augmented else 0.0, "max_shift": 4,
                              "flip": augmented, "cutout": 8 if augmented else 0})
    data = SearchData(x, y, x[:args.batch], y[:args.batch], [str(i) for i in range(10)])
    _, trainer, batches = _compile(params, data, args.epochs + 1, seed=0)
    trainer.fit(batches, epochs=1, verbose=0)  # compile
    start = time.perf_counter()
    trainer.fit(batches, epochs=args.epochs, verbose=0)
    elapsed = (time.perf_counter() - start) / args.epochs
    keras.backend.clear_session(free_memory=True)
    return elapsed


def time_epochs(variant: str, args: argparse.Namespace, x: np.ndarray, y: np.ndarray) -> float:
    import keras

    if variant in ("tune", "tune_plain"):
        return time_tune_epochs(variant == "tune", args, x, y)

    from tuner.training.model import build_model
    from tuner.space.params import complete_params

    params = complete_params({"model": args.model, "depth": args.depth, "width": args.width, "head_units": 0})
    model = build_model(params, x.shape[1:], 10)
    if variant in ("host", "host_cutout"):
        from tuner.training.choices import draw_choices

        cutout = 8 if variant == "host_cutout" else 0
        trainer = host_trainer(model, x.shape[1:], cutout)
        choices = draw_choices(np.random.default_rng(0), len(x), 4, True, cutout, x.shape[1:3])  # one set: timing only
        inputs = [x, choices]
    else:
        trainer = keras.Sequential([keras.Input(x.shape[1:]), *front_layers(variant), model])
        inputs = x
    trainer.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", steps_per_execution=args.spe)
    trainer.fit(inputs, y, batch_size=args.batch, epochs=1, verbose=0)  # compile
    start = time.perf_counter()
    trainer.fit(inputs, y, batch_size=args.batch, epochs=args.epochs, verbose=0)
    elapsed = (time.perf_counter() - start) / args.epochs
    keras.backend.clear_session(free_memory=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--samples", type=int, default=40960)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--spe", type=int, default=1, help="steps_per_execution")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--variants", default="plain,shift_flip",
                        help="comma list of plain, host (shift+flip, choices drawn on the host: what tune "
                             "trains), host_cutout (the same + 8x8 cutout), shift_flip (drawn in the step), "
                             "shift, flip, random_only, identity (a front layer that returns its input), "
                             "tune_plain and tune (tune's own trainer and batches, augmentation off and on)")
    args = parser.parse_args()

    from tuner.training.backend import configure

    setup = configure(args.precision)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (args.samples, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, args.samples)
    steps = args.samples // args.batch
    seconds = {v: time_epochs(v, args, x, y) for v in args.variants.split(",")}
    report = {**vars(args), **setup, "epoch_seconds": seconds,
              "step_ms": {v: 1000 * t / steps for v, t in seconds.items()},
              "overhead_vs_plain": {v: t / seconds["plain"] - 1 for v, t in seconds.items() if "plain" in seconds}}
    if "tune" in seconds and "tune_plain" in seconds:
        report["tune_augmentation_overhead"] = seconds["tune"] / seconds["tune_plain"] - 1
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
