"""Refit: an ensemble member trained again on train + validation, exactly as its trial trained."""

from __future__ import annotations

import numpy as np
import pytest

from tuner.space.params import complete_params

# A plateau trial whose learning rate dropped at its last epoch (checked below), so that the
# replay of its recorded learning rates is exercised, not only the fixed schedules.
PLATEAU = {"model": "cnn", "depth": 1, "width": 8, "head_units": 0, "dropout": 0.0, "l2": 1e-5, "batch_norm": True,
           "batch_size": 64, "learning_rate": 3e-2, "lr_schedule": "plateau", "optimizer": "adam", "augment": 0.0}
COSINE = {**PLATEAU, "depth": 2, "head_units": 16, "dropout": 0.2, "lr_schedule": "cosine", "learning_rate": 3e-3,
          "augment": 1.0, "max_shift": 1, "label_smoothing": 0.1}


@pytest.mark.slow
@pytest.mark.parametrize("params", [COSINE, PLATEAU], ids=["cosine", "plateau"])
def test_train_final_on_the_trials_own_data_reproduces_its_model(params, digits_data, monkeypatch):
    """With the trial's data, seed and best epoch count, `train_final` rebuilds the very model that
    early stopping kept: what it changes in a refit is the data, nothing else."""
    import keras

    from tuner.training.fit import train_final, train_trial

    class Plateau(keras.callbacks.ReduceLROnPlateau):  # no epoch counts as better: the rate drops for sure
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "min_delta": 1e9})

    # Whether a 6-epoch run stalls on its own depends on the CPU's arithmetic (it did on one
    # machine, not on another).
    monkeypatch.setattr(keras.callbacks, "ReduceLROnPlateau", Plateau)
    data, _ = digits_data
    params = complete_params(params)
    trial = train_trial(params, data, max_epochs=6, patience=2, seed=7)
    if params["lr_schedule"] == "plateau":
        assert trial.history["lr"][-1] < trial.history["lr"][0]  # the plateau callback did lower it
    kept = trial.model.predict(data.x_val, verbose=0)
    again = train_final(params, data.x_train, data.y_train, data.n_classes, epochs=trial.best_epoch + 1, max_epochs=6,
                        seed=7, learning_rates=trial.history["lr"])
    np.testing.assert_allclose(again.predict(data.x_val, verbose=0), kept, atol=1e-6)
    if params["lr_schedule"] == "plateau":  # without the replay its last epoch ran at the first rate
        unreplayed = train_final(params, data.x_train, data.y_train, data.n_classes, epochs=trial.best_epoch + 1,
                                 max_epochs=6, seed=7)
        assert np.abs(unreplayed.predict(data.x_val, verbose=0) - kept).max() > 1e-3


@pytest.mark.slow
def test_a_diverging_refit_is_a_failed_trial(digits_data):
    from tuner.errors import TrialFailed
    from tuner.training.fit import train_final

    data, _ = digits_data
    params = complete_params({**PLATEAU, "batch_norm": False, "optimizer": "sgd", "learning_rate": 1e6})
    with pytest.raises(TrialFailed, match="training loss became nan"):
        train_final(params, data.x_train, data.y_train, data.n_classes, epochs=2, max_epochs=2, seed=0)


def test_a_refit_model_must_fit_the_validation_images_it_trained_on(digits_data):
    """The one check left without held-out data: clearly worse on the validation images than its
    search model was (unseen), and the refit model is dropped; within noise of it, kept."""
    from tuner.errors import TrialFailed
    from tuner.training.model import build_model
    from tuner.ensemble.refit import check_fit

    data, _ = digits_data
    blank = build_model(complete_params({"depth": 1, "width": 4, "logit_scale": 0.0}), data.input_shape,
                        data.n_classes)  # zero logits: class 0 for every image
    blank_accuracy = float(np.mean(data.y_val == 0))
    sure = np.eye(data.n_classes)[data.y_val][None]  # a search model right on every image
    with pytest.raises(TrialFailed, match=r"fits the validation images it trained on worse \(\d+\.\d\d%\)"):
        check_fit(blank, data, sure)
    as_blank = np.eye(data.n_classes)[np.where(np.arange(len(data.y_val)) < 5, data.y_val, 0)][None]
    assert float(np.mean(as_blank[0].argmax(1) == data.y_val)) > blank_accuracy  # a little better, within noise
    check_fit(blank, data, as_blank)
    check_fit(blank, data, None)  # a study without stored predictions: nothing to compare with
