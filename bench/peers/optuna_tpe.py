"""Peer 2: a plain Optuna script, as Optuna's Keras example writes one: an objective that
suggests, builds, fits with early stopping and a pruning callback (the example's
`KerasPruningCallback`, inlined: optuna-integration is not installed), TPE and a median pruner.

    python bench/peers/optuna_tpe.py --data ../shared/datasets/cifar10.tar.gz --out optuna.json
"""

from __future__ import annotations

import argparse

from common import Progress, add_arguments, load_data

import keras
import optuna

from peer_model import cnn


class PruningCallback(keras.callbacks.Callback):
    """optuna_integration.KerasPruningCallback: report each epoch, raise if pruned."""

    def __init__(self, trial: optuna.Trial, monitor: str = "val_accuracy"):
        super().__init__()
        self.trial, self.monitor = trial, monitor

    def on_epoch_end(self, epoch, logs=None):
        self.trial.report(float(logs[self.monitor]), step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"Trial was pruned at epoch {epoch}.")


def main() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args()

    data = load_data(args.data, args.train_samples, args.val_fraction)
    progress = Progress("optuna TPE + median pruner")

    def objective(trial: optuna.Trial) -> float:
        keras.backend.clear_session()
        model = cnn(depth=trial.suggest_int("depth", 2, 4), width=trial.suggest_int("width", 32, 128, log=True),
                    dropout=trial.suggest_float("dropout", 0.0, 0.5), l2=trial.suggest_float("l2", 1e-6, 1e-3, log=True),
                    batch_norm=trial.suggest_categorical("batch_norm", [False, True]),
                    learning_rate=trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True))
        history = model.fit(data.x_train, data.y_train, batch_size=128, epochs=args.epochs, verbose=2,
                            validation_data=(data.x_val, data.y_val),
                            callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=3), PruningCallback(trial)])
        return max(history.history["val_accuracy"])

    def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        progress.trial_done(trial.value if trial.state == optuna.trial.TrialState.COMPLETE else
                            (max(trial.intermediate_values.values()) if trial.intermediate_values else None))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.MedianPruner())
    study.optimize(objective, n_trials=args.trials, callbacks=[record])
    progress.write(args.out, backend=keras.backend.backend())


if __name__ == "__main__":
    main()
