"""Peer 1: a plain KerasTuner RandomSearch script, as KerasTuner's "Getting started" guide
writes one: a build function of `hp`, `RandomSearch(max_trials=10)`, `tuner.search.run(...)` with
early stopping.

    python bench/peers/kerastuner_random.py --data ../shared/datasets/cifar10.tar.gz --out kt.json

On the TensorFlow backend KerasTuner imports tensorboard in every trial: `pip install tensorboard`.
"""

from __future__ import annotations

import argparse
import tempfile

from common import Progress, add_arguments, load_data

import keras
import keras_tuner

from peer_model import cnn


def build_model(hp: keras_tuner.HyperParameters) -> keras.Model:
    return cnn(depth=hp.Int("depth", 2, 4), width=hp.Int("width", 32, 128, sampling="log"),
               dropout=hp.Float("dropout", 0.0, 0.5), l2=hp.Float("l2", 1e-6, 1e-3, sampling="log"),
               batch_norm=hp.Boolean("batch_norm"), learning_rate=hp.Float("learning_rate", 1e-4, 1e-2, sampling="log"))


class RecordTrial(keras.callbacks.Callback):
    """Not part of the peer's search: notes when each trial ended and its best val accuracy."""

    progress: Progress

    def on_train_begin(self, logs=None):
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        self.best = max(self.best or 0.0, float(logs["val_accuracy"]))

    def on_train_end(self, logs=None):
        RecordTrial.progress.trial_done(self.best)


def main() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args()

    data = load_data(args.data, args.train_samples, args.val_fraction)
    RecordTrial.progress = Progress("keras-tuner RandomSearch")
    tuner = keras_tuner.RandomSearch(build_model, objective="val_accuracy", max_trials=args.trials, seed=0,
                                     directory=tempfile.mkdtemp(prefix="kt-peer-"), project_name="cifar10")
    tuner.search.run(data.x_train, data.y_train, epochs=args.epochs, batch_size=128,
                 validation_data=(data.x_val, data.y_val), verbose=2,
                 callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=3), RecordTrial()])
    RecordTrial.progress.write(args.out, backend=keras.backend.backend())


if __name__ == "__main__":
    main()
