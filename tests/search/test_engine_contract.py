"""One contract, run against every engine: the engines differ only in what they try next."""

from __future__ import annotations

import math
import re

import optuna
import pytest

from tuner.search.engines import ENGINES
from tuner.errors import SearchStopped
from tuner.space.params import PARAMETERS
from tuner.search.observer import QuietObserver
from tuner.search.request import SearchRequest
from tuner.search.run import run_search
from tuner.space.schema import parse_space
from tuner.store import SearchStore

pytestmark = pytest.mark.slow  # every test here trains real models

ENGINE_NAMES = list(ENGINES)


def search(store: SearchStore, space, engine: str, n: int, **kw) -> None:
    request = SearchRequest(space, "study", n, engine=engine, cache_dir=store.results_dir / "cache", seed=0, **kw)
    run_search(store, request, QuietObserver())


@pytest.fixture(params=ENGINE_NAMES)
def engine(request) -> str:
    return request.param


def test_search_records_exactly_n_finished_trials_with_artifacts(engine, tiny_space, results):
    """N finished trials with their records and files, the best two keeping their models; and
    plain Optuna reads the same study whole, whichever engine ran it."""
    store = SearchStore(None, results, create=True)
    search(store, tiny_space, engine, 3, keep_models=2)
    trials = store.trials.all("study")
    assert sum(t.finished for t in trials) == 3
    assert len({t.number for t in trials}) == len(trials)
    for t in trials:
        assert set(t.params) == set(PARAMETERS)  # the complete dict: enough to rebuild the model
        outside = {k: v for k, v in t.params.items() if k in tiny_space.searched() and tiny_space.is_active(k, t.params)
                   and not tiny_space.searched()[k].admits(v)}
        assert not outside, outside  # what ran is inside the space
        assert t.seconds and t.seconds > 0
        if t.state == "complete":
            assert 0 <= t.value <= 1 and len(t.history["val_loss"]) >= 1 and t.best_epoch is not None
            assert store.artifacts.val_views("study", t.number).shape[2] == 10
    kept = sorted(int(p.parent.name) for p in (results / "study" / "trials").glob("*/model.keras"))
    complete = sorted((t for t in trials if t.state == "complete"), key=lambda t: (-t.value, t.val_loss, t.number))
    assert len(complete) >= 2 and kept == sorted(t.number for t in complete[:2])  # the best two keep their models
    assert store.studies.meta("study")["engine"] == engine
    # What a user of Optuna's own tools gets from the same study: the metric's name, the best
    # trial's searched values with their distributions, parameter importances.
    study = optuna.load_study(study_name="study", storage=f"sqlite:///{results / 'tune.db'}")
    assert study.metric_names == ["val_accuracy"] and study.best_value == complete[0].value
    best = next(t for t in trials if t.number == study.best_trial.number).params
    searched = {k: v for k, v in best.items() if k in tiny_space.searched() and tiny_space.is_active(k, best)}
    assert study.best_params == pytest.approx(searched) and set(study.best_trial.distributions) == set(searched)
    importances = optuna.importance.get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    assert importances and set(importances) <= set(tiny_space.searched())


def test_resume_adds_trials_and_keeps_finished_records(engine, tiny_space, results):
    store = SearchStore(None, results, create=True)
    search(store, tiny_space, engine, 2)
    before = {t.number: t for t in store.trials.all("study") if t.finished}
    search(store, tiny_space, engine, 4)
    after = {t.number: t for t in store.trials.all("study")}
    assert sum(t.finished for t in after.values()) == 4
    for number, record in before.items():
        assert after[number] == record  # finished trials are immutable records


def test_stored_params_rebuild_the_model(engine, tiny_space, results):
    from tuner.training.model import build_model

    store = SearchStore(None, results, create=True)
    search(store, tiny_space, engine, 1)
    (trial,) = [t for t in store.trials.all("study") if t.state == "complete"]
    import keras

    saved = keras.saving.load_model(store.artifacts.model_path("study", trial.number))
    rebuilt = build_model(trial.params, (8, 8, 1), 10)
    assert [w.shape for w in rebuilt.get_weights()] == [w.shape for w in saved.get_weights()]


# A real divergence (weights grow about 19 times a step): the loss is NaN in the first epoch.
DIVERGE = {"optimizer": "sgd", "momentum": 0.9, "batch_norm": False, "l2": 1.0, "learning_rate": 10.0}


def _with(space, start=None, **params):
    """The tiny space with some parameters replaced, and start points."""
    from tuner.space.schema import parse_space

    data = space.to_dict()
    data["params"] = {**data["params"], **params}
    if start is not None:
        data["start"] = start
    return parse_space(data, "contract.yaml")


def test_failed_trials_are_recorded_and_the_search_goes_on(engine, tiny_space, results):
    choices = {"learning_rate": {"type": "categorical", "choices": [0.003, 10.0]},
               "l2": {"type": "categorical", "choices": [1.0e-5, 1.0]}}
    space = _with(tiny_space.with_overrides(epochs=1), start=[{"learning_rate": 10.0, "l2": 1.0}],
                  **{**DIVERGE, **choices})
    store = SearchStore(None, results, create=True)
    search(store, space, engine, 2)
    trials = store.trials.all("study")
    first = trials[0]  # the start point: it diverges
    assert (first.params["learning_rate"], first.params["l2"], first.state) == (10.0, 1.0, "failed")
    assert re.fullmatch(r"training loss became (nan|inf) at epoch 1", first.reason), first.reason
    assert sum(t.finished for t in trials) == 2


def test_consecutive_failures_stop_the_search(engine, tiny_space, results):
    store = SearchStore(None, results, create=True)
    with pytest.raises(SearchStopped, match=r"3 trials failed in a row \(last: training loss became (nan|inf)"):
        search(store, _with(tiny_space.with_overrides(epochs=1), **DIVERGE), engine, 10, max_failures=3)
    assert [t.state for t in store.trials.all("study")] == ["failed"] * 3


def test_an_engine_cannot_take_over_another_engines_study(tiny_space, results):
    from tuner.errors import UserError

    store = SearchStore(None, results, create=True)
    search(store, tiny_space.with_overrides(epochs=1), ENGINE_NAMES[0], 1)
    for other in ENGINE_NAMES[1:]:
        with pytest.raises(UserError, match="cannot mix in"):
            search(store, tiny_space.with_overrides(epochs=1), other, 2)


def test_start_points_are_the_first_trials_and_not_replayed_on_resume(engine, tiny_space, results):
    data = tiny_space.to_dict()
    data["start"] = [{"width": 5, "optimizer": "sgd", "momentum": 0.85, "head_units": 0},
                     {"width": 7, "optimizer": "adam"}]
    from tuner.space.schema import parse_space

    space = parse_space(data, "start.yaml").with_overrides(epochs=1)
    store = SearchStore(None, results, create=True)
    search(store, space, engine, 1)
    (first,) = store.trials.all("study")  # the queued second point is not a trial until it runs
    assert (first.params["width"], first.params["optimizer"], first.params["momentum"], first.params["head_units"]) \
        == (5, "sgd", 0.85, 0)
    search(store, space, engine, 4)
    trials = store.trials.all("study")
    assert trials[1].params["width"] == 7 and trials[1].params["optimizer"] == "adam"
    first_point = data["start"][0]
    assert all({k: t.params[k] for k in first_point} != first_point for t in trials[1:])  # not run again
    assert sum(t.finished for t in trials) == 4


def test_a_stored_trial_trains_again_from_its_record_alone(engine, tiny_space, results, digits_data):
    """Params and seed in the store are the whole recipe: training them again gives the same curve."""
    from tuner.training.fit import train_trial

    store = SearchStore(None, results, create=True)
    search(store, tiny_space, engine, 2)
    record = next(t for t in store.trials.all("study") if t.state == "complete")
    data, _ = digits_data
    assert record.max_epochs == tiny_space.training.max_epochs  # its schedule's length, for a refit
    again = train_trial(record.params, data, max_epochs=record.max_epochs,
                        patience=tiny_space.training.patience, seed=record.seed)
    assert again.history["val_loss"] == pytest.approx(record.history["val_loss"], rel=1e-4)
    assert again.val_accuracy == pytest.approx(record.value)


def test_pruned_trials_are_recorded_with_the_epochs_they_ran(engine, tiny_space, results):
    """A real prune: 8 seeded trials of 3 epochs, pruning allowed after the first; a trial below
    the median of the earlier ones at its second epoch stops there and is recorded pruned."""
    from tuner.search.engines.optuna_engine import median_startup

    if "median" not in ENGINES[engine][3]:
        pytest.skip(f"{engine} has no pruner (its Hyperband sampler shortens trials instead)")
    data = tiny_space.to_dict()
    data["training"] = {**data["training"], "max_epochs": 3, "prune_after": 1, "patience": 3}
    space = parse_space(data, "pruning.yaml")
    store = SearchStore(None, results, create=True)
    request = SearchRequest(space, "p", 8, engine, "random", "median", cache_dir=results / "cache", seed=0)
    run_search(store, request, QuietObserver())
    trials = store.trials.all("p")
    pruned = [t for t in trials if t.state == "pruned"]
    assert pruned and len(trials) == 8, [(t.number, t.state) for t in trials]
    for t in pruned:
        assert t.epochs == 2 and t.value == t.history["val_accuracy"][-1]  # stopped after epoch 2 of 3
        assert t.reason == "pruned after epoch 2"  # what the leaderboard shows for it
        assert t.number >= median_startup(8)  # the median pruner waits for 2 complete trials here
    frozen = {t.number: t for t in optuna.load_study(study_name="p", storage=store.db.storage).trials}
    assert all(frozen[t.number].intermediate_values == dict(enumerate(t.history["val_accuracy"])) for t in pruned)


def test_a_start_point_trains_its_whole_schedule_whatever_the_pruner_says(tiny_space, results, monkeypatch):
    """Optuna's pruner told to stop every trial after its first epoch: the start point runs all
    its epochs and completes, the sampler's proposal after it is pruned."""
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: True)
    data = tiny_space.to_dict()
    data["training"] = {**data["training"], "max_epochs": 2, "prune_after": 1, "patience": 3}
    data["start"] = [{"width": 5}]
    store = SearchStore(None, results, create=True)
    search(store, parse_space(data, "pruned.yaml"), "optuna", 2, pruner="median")
    point, proposal = store.trials.all("study")
    assert (point.params["width"], point.state, point.epochs) == (5, "complete", 2)
    assert (proposal.state, proposal.epochs, proposal.reason) == ("pruned", 1, "pruned after epoch 1")


def test_every_model_family_trains_is_recorded_and_saved(engine, tiny_space, results):
    """One start point per family (with the new words drawn or set): each engine runs them all,
    records each complete with its parameters, and keeps a model that plain Keras loads."""
    import keras

    from tuner.space.params import MODELS

    space = _with(tiny_space, start=[{"model": m, "activation": a, "kernel_initializer": i}
                                     for m, a, i in zip(MODELS, ("selu", "tanh", "gelu", "relu", "swish"),
                                                        ("he_normal", "lecun_normal", "glorot_normal", "he_uniform",
                                                         "glorot_uniform"))],
                  model={"type": "categorical", "choices": list(MODELS)}, depth=1,
                  activation={"type": "categorical", "choices": ["relu", "selu", "tanh", "gelu", "swish"]},
                  kernel_initializer={"type": "categorical", "choices": ["glorot_uniform", "glorot_normal", "he_normal",
                                                                         "he_uniform", "lecun_normal"]},
                  optimizer={"type": "categorical", "choices": ["nadam", "adamax", "sgd"]}, learning_rate=0.01, l1=1e-5,
                  max_norm=3.0, augment=1.0, rotation=10.0, zoom=0.1)
    store = SearchStore(None, results, create=True)
    search(store, space, engine, len(MODELS), keep_models=len(MODELS))
    trials = store.trials.all("study")
    assert [t.params["model"] for t in trials] == list(MODELS) and all(t.state == "complete" for t in trials)
    assert all(math.isfinite(loss) for t in trials for loss in t.history["loss"])
    for t in trials:
        saved = keras.saving.load_model(store.artifacts.model_path("study", t.number))
        assert saved.name.startswith(t.params["model"]) and saved.count_params() > 0
