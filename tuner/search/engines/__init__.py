"""Search engines, by name. Engine classes import their libraries lazily, so checking a
user's engine and sampler names costs nothing."""

from __future__ import annotations

import importlib
from typing import Any

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


def budget_pruner(engine: str, pruner: str | None, timeout: float | None) -> str | None:
    """The pruner a search gets when it names none: with a deadline, Optuna's successive halving
    over epochs (Hyperband), so that in a short budget poor trials stop at epoch 2 or 6 rather
    than after the median pruner's five start-up trials; else the engine's default."""
    if pruner is None and timeout is not None and engine == "optuna":
        return "hyperband"
    return pruner


# Engines whose start points are queued in the study before any worker starts (Optuna's queue);
# KerasTuner's oracle takes them in the process that searches (`start_with`).
QUEUES_IN_STUDY = ("optuna",)


def queue_start_points(engine: str, store: Any, study: str, space: Any) -> None:
    """In the parent: the engine's start points into the study, importing no engine that needs
    none there (keras_tuner would import TensorFlow into the process that never trains)."""
    if engine in QUEUES_IN_STUDY:
        engine_class(engine).queue_start_points(store, study, space)


def engine_class(engine: str) -> type:
    from tuner.keras_backend import load_keras

    module, _, cls = ENGINES[engine][0].partition(":")
    if engine == "keras-tuner":
        load_keras()  # keras_tuner imports TensorFlow: quietly first, or its C++ start-up logs reach the terminal
    return getattr(importlib.import_module(module), cls)
