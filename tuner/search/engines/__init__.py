"""Search engines, by name. Engine classes import their libraries lazily, so checking a
user's engine and sampler names costs nothing."""

from __future__ import annotations

import importlib

from tuner.errors import UserError

# engine name -> (module:class, samplers, default sampler, pruners)
ENGINES: dict[str, tuple[str, tuple[str, ...], str, tuple[str, ...]]] = {
    "optuna": ("tuner.search.engines.optuna_engine:OptunaEngine", ("tpe", "random", "gp"), "tpe",
               ("median", "hyperband", "none")),
    "keras-tuner": ("tuner.search.engines.kerastuner_engine:KerasTunerEngine", ("random", "bayesian", "hyperband"),
                    "bayesian", ("none",)),
}

# Every engine's names, for the command line's choices; which engine takes which is `check_choice`'s.
SAMPLERS = sorted({name for _, samplers, _, _ in ENGINES.values() for name in samplers})
PRUNERS = sorted({name for *_, pruners in ENGINES.values() for name in pruners})


def check_choice(engine: str, sampler: str | None, pruner: str | None) -> tuple[str, str]:
    """The engine's sampler (its default if None) and pruner; one clear line if they do not fit."""
    if engine not in ENGINES:
        raise UserError(f"unknown engine '{engine}' (choose from {', '.join(ENGINES)})")
    _, samplers, default, pruners = ENGINES[engine]
    sampler = sampler or default
    if sampler not in samplers:
        raise UserError(f"engine {engine} has no sampler '{sampler}' (choose from {', '.join(samplers)})")
    pruner = pruner or pruners[0]
    if pruner not in pruners:
        why = "; Hyperband is its own sampler" if engine == "keras-tuner" else ""
        raise UserError(f"engine {engine} has no pruner '{pruner}' (choose from {', '.join(pruners)}){why}")
    return sampler, pruner


def engine_class(engine: str) -> type:
    from tuner.keras_backend import load_keras

    module, _, cls = ENGINES[engine][0].partition(":")
    if engine == "keras-tuner":
        load_keras()  # keras_tuner imports TensorFlow: quietly first, or its C++ start-up logs reach the terminal
    return getattr(importlib.import_module(module), cls)
