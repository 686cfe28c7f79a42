"""How each engine maps every kind of space parameter, and samplers/pruners that run for real."""

from __future__ import annotations

import optuna
import pytest

from tuner.search.engines.kerastuner_engine import declare
from tuner.search.engines.optuna_engine import suggest_params
from tuner.search.observer import QuietObserver
from tuner.search.request import SearchRequest
from tuner.search.run import run_search
from tuner.space.schema import parse_space
from tuner.store import SearchStore

SPACE = parse_space({"name": "m", "dataset": "digits", "params": {
    "depth": {"type": "int", "low": 1, "high": 2},
    "width": {"type": "int", "low": 4, "high": 64, "log": True},
    "head_units": {"type": "int", "low": 0, "high": 64, "step": 16},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
    "momentum": {"type": "float", "low": 0.8, "high": 0.9, "when": {"optimizer": "sgd"}},
    "batch_norm": {"type": "bool"},
    "lr_schedule": "cosine",
    "weight_decay": {"type": "float", "low": 1e-5, "high": 1e-3, "when": {"lr_schedule": "step"}},
}}, "mapping.yaml")


def test_kerastuner_declares_every_kind():
    import keras_tuner as kt

    hp = kt.HyperParameters()
    chosen = declare(hp, SPACE)
    space = {p.name: p for p in hp.space}
    assert type(space["depth"]).__name__ == "Int" and space["depth"].sampling == "linear"
    assert space["width"].sampling == "log" and space["head_units"].step == 16
    assert type(space["dropout"]).__name__ == "Float" and space["dropout"].step == 0.1
    assert SPACE.params["dropout"].admits(chosen["dropout"])  # on the grid
    assert space["learning_rate"].sampling == "log"
    assert type(space["optimizer"]).__name__ == "Choice" and list(space["optimizer"].values) == ["adam", "sgd"]
    assert type(space["batch_norm"]).__name__ == "Boolean"
    assert space["momentum"].conditions  # conditional on the optimizer
    assert "weight_decay" not in space  # its parent is fixed to another value: never active
    assert "lr_schedule" not in space  # fixed values are not searched
    assert ("momentum" in chosen) == (chosen["optimizer"] == "sgd")


def test_kerastuner_conditional_becomes_active():
    import keras_tuner as kt

    hp = kt.HyperParameters()
    declare(hp, SPACE)
    hp.values["optimizer"] = "sgd"
    hp.ensure_active_values()  # what KerasTuner's oracle does when a condition switches on
    assert "momentum" in declare(hp, SPACE)
    hp.values["optimizer"] = "adam"
    assert "momentum" not in declare(hp, SPACE)


def test_optuna_maps_every_kind_and_fixed_trial_replays_it():
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    chosen = suggest_params(trial, SPACE)
    dists = trial.distributions
    assert isinstance(dists["depth"], optuna.distributions.IntDistribution) and not dists["depth"].log
    assert dists["width"].log and dists["head_units"].step == 16
    assert isinstance(dists["dropout"], optuna.distributions.FloatDistribution) and dists["dropout"].step == 0.1
    assert SPACE.params["dropout"].admits(chosen["dropout"])  # on the grid
    assert dists["learning_rate"].log
    assert dists["optimizer"].choices == ("adam", "sgd") and dists["batch_norm"].choices == (False, True)
    assert ("momentum" in dists) == (chosen["optimizer"] == "sgd") and "weight_decay" not in dists
    # Optuna's FixedTrial replays the stored choices into the same complete parameter dict.
    replay = suggest_params(optuna.trial.FixedTrial(trial.params), SPACE)
    assert SPACE.complete(replay) == SPACE.complete(chosen)


# Each name to the class its library documents for it: a name mapped to the wrong class (or every
# name to TPE) fails here.
OPTUNA_SAMPLERS = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
                   "gp": optuna.samplers.GPSampler}
OPTUNA_PRUNERS = {"median": optuna.pruners.MedianPruner, "hyperband": optuna.pruners.HyperbandPruner,
                  "none": optuna.pruners.NopPruner}


@pytest.mark.parametrize("name", sorted(OPTUNA_SAMPLERS))
def test_each_optuna_sampler_name_is_its_sampler(name):
    from tuner.search.engines import ENGINES
    from tuner.search.engines.optuna_engine import make_sampler

    assert name in ENGINES["optuna"][1]
    assert type(make_sampler(name, seed=0)) is OPTUNA_SAMPLERS[name]


@pytest.mark.parametrize("name", sorted(OPTUNA_PRUNERS))
def test_each_optuna_pruner_name_is_its_pruner(name):
    from tuner.search.engines import ENGINES
    from tuner.search.engines.optuna_engine import make_pruner

    assert name in ENGINES["optuna"][3]
    assert type(make_pruner(name, max_epochs=6)) is OPTUNA_PRUNERS[name]


@pytest.mark.parametrize("n_trials, startup", [(1, 2), (20, 2), (29, 2), (30, 3), (49, 4), (50, 5), (10_000, 5)])
def test_the_median_pruner_judges_after_a_tenth_of_the_trials_two_to_five(n_trials, startup):
    from tuner.search.engines.optuna_engine import make_pruner

    pruner = make_pruner("median", max_epochs=15, n_trials=n_trials)
    assert pruner._n_startup_trials == startup and pruner._n_min_trials == 2  # the median of one is that trial


@pytest.mark.parametrize("name, oracle", [("random", "RandomSearchOracle"), ("bayesian", "BayesianOptimizationOracle"),
                                          ("hyperband", "HyperbandOracle")])
def test_each_kerastuner_sampler_name_is_its_oracle(name, oracle, tiny_space):
    from tuner.search.engines import ENGINES
    from tuner.search.engines.kerastuner_engine import make_oracle

    assert name in ENGINES["keras-tuner"][1]
    assert type(make_oracle(name, tiny_space, n_trials=9, seed=0)).__name__ == oracle


def test_bayesian_starts_with_random_points_then_models(tiny_space):
    from tuner.search.engines.kerastuner_engine import make_oracle

    # A third of the trials (3 to 10) are random before the Gaussian process proposes.
    assert [make_oracle("bayesian", tiny_space, n, 0).num_initial_points for n in (3, 20, 60)] == [3, 6, 10]


@pytest.mark.slow
@pytest.mark.parametrize("engine, sampler, pruner", [
    ("optuna", "random", "none"), ("optuna", "gp", "none"), ("optuna", "tpe", "hyperband"),
    ("keras-tuner", "random", None), ("keras-tuner", "hyperband", None),
])
def test_every_sampler_runs(engine, sampler, pruner, tiny_space, results):
    if sampler == "gp":
        pytest.importorskip("torch", reason="Optuna's GP sampler needs torch")
    store = SearchStore(None, results, create=True)
    request = SearchRequest(tiny_space.with_overrides(epochs=1), "s", 2, engine, sampler, pruner,
                            cache_dir=results / "cache", seed=0)
    run_search(store, request, QuietObserver())
    assert store.trials.count_finished("s") == 2
    assert (store.studies.meta("s")["sampler"], store.studies.meta("s")["pruner"]) == (sampler, pruner or "none")


def _vocabulary_space():
    """Every parameter of the vocabulary searched: each word parameter over all its values."""
    from tuner.space import params as vocabulary

    words = {"model": vocabulary.MODELS, "activation": vocabulary.ACTIVATIONS,
             "kernel_initializer": vocabulary.INITIALIZERS, "pooling": vocabulary.POOLINGS,
             "optimizer": vocabulary.OPTIMIZERS, "lr_schedule": vocabulary.SCHEDULES,
             "class_weight": vocabulary.CLASS_WEIGHTS}
    numbers = {"depth": (1, 2), "width": (4, 64), "head_units": (0, 64), "warmup_epochs": (0, 2), "max_shift": (0, 2),
               "cutout": (0, 4), "batch_size": (16, 64), "dropout": (0.0, 0.5), "l2": (0.0, 1e-3), "l1": (0.0, 1e-4),
               "max_norm": (0.0, 4.0), "logit_scale": (0.1, 1.0), "learning_rate": (1e-4, 1e-1), "momentum": (0.8, 0.95),
               "weight_decay": (0.0, 1e-3), "label_smoothing": (0.0, 0.2), "augment": (0.0, 1.0),
               "rotation": (0.0, 30.0), "zoom": (0.0, 0.3)}
    params: dict = {}
    for name, info in vocabulary.PARAMETERS.items():
        if name in words:
            params[name] = {"type": "categorical", "choices": list(words[name])}
        elif info.kind is bool:
            params[name] = {"type": "bool"}
        else:
            low, high = numbers[name]
            params[name] = {"type": info.kind.__name__, "low": low, "high": high}
    assert set(params) == set(vocabulary.PARAMETERS)  # a new word of the vocabulary is added here too
    params["momentum"]["when"] = {"optimizer": "sgd"}
    return parse_space({"name": "vocabulary", "dataset": "fashion_mnist", "params": params}, "vocabulary.yaml")


def _optuna_draws(space, n: int) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return [suggest_params(study.ask(), space) for _ in range(n)]


def _kerastuner_draws(space, n: int) -> list[dict]:
    import keras_tuner as kt

    hp, draws = kt.HyperParameters(), []
    declare(hp, space)
    for seed in range(n):
        for i, p in enumerate(hp.space):  # what KerasTuner's random oracle does, one value at a time
            hp.values[p.name] = p.random_sample(seed * 1000 + i)
        hp.ensure_active_values()
        draws.append(declare(hp, space))
    return draws


@pytest.mark.parametrize("draw", [_optuna_draws, _kerastuner_draws], ids=["optuna", "keras-tuner"])
def test_both_engines_search_every_word_of_the_vocabulary(draw):
    """Every parameter a space may search, over every value it may take: each engine proposes
    each choice, only admitted values, a conditional one only where it applies, and each
    proposal completes to a dict the model builder takes."""
    space = _vocabulary_space()
    draws = draw(space, 300)
    for name, spec in space.searched().items():
        seen = [d[name] for d in draws if name in d]
        assert seen and all(spec.admits(v) for v in seen), name
        if spec.type in ("categorical", "bool"):
            assert {repr(v) for v in seen} == {repr(v) for v in spec.bounds()}, name
        else:
            assert min(seen) < spec.low + 0.2 * (spec.high - spec.low) < max(seen), name  # across the range
    assert all(("momentum" in d) == (d["optimizer"] == "sgd") for d in draws)
    assert all(set(space.complete(d)) == set(space.complete({})) for d in draws)


@pytest.mark.parametrize("step, value, pruned", [
    (2, 0.30, True),  # below the median of the two complete trials that reached epoch 3
    (2, 0.90, False),
    (6, 0.30, False),  # only the start point reached epoch 7: the median of one is not judged
])
def test_the_median_pruner_judges_an_epoch_only_on_two_complete_trials(step, value, pruned):
    """A good start point of 15 epochs and a random draw that stopped after 5: judged on one trial,
    every later trial under the start point's own curve was pruned (18 of 20 in a quickstart)."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from tuner.search.engines.optuna_engine import make_pruner

    study = optuna.create_study(direction="maximize", pruner=make_pruner("median", max_epochs=15, n_trials=20))
    for curve in ([0.95] * 15, [0.10] * 5):
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=curve[-1], params={"x": 0.5},
                                     distributions={"x": FloatDistribution(0, 1)},
                                     intermediate_values=dict(enumerate(curve))))
    trial = study.ask()
    trial.report(value, step)
    assert bool(trial.should_prune()) is pruned
