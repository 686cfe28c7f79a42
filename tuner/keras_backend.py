"""Which Keras backend, whether it is installed, and importing Keras quietly: what the command
line checks before any work starts, and what every package that touches Keras (training, the
ensemble, the keras.datasets downloads) imports it through. Keras itself is imported only
inside functions, so `tune --help` never loads it."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import os
import sys
import tempfile
from typing import Any, Iterator

from tuner import config
from tuner.errors import UserError
from tuner.paths import loop_error


def load_keras() -> None:
    """Import Keras (and its backend) once, holding back TensorFlow's start-up log lines,
    which it writes to stderr before any log level applies. Shown if the import fails.
    Keras imports TensorFlow whenever it is installed (to save files, to seed), also on
    the JAX and torch backends, so it is imported here quietly in that case too."""
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        _out_of_the_collectors_sight(collect_first=True)  # imported by someone else (a test, a user's script)
        return
    require_backend(selected_backend())
    config.quiet_tensorflow()
    with tempfile.TemporaryFile() as captured, _stderr_to(captured):
        try:
            import keras  # noqa: F401

            if importlib.util.find_spec("tensorflow") is not None:
                import tensorflow  # noqa: F401
        except Exception as e:  # not KeyboardInterrupt: a signal mid-import must end the command, not retry it
            if why := loop_error(e):  # matplotlib's cache under a looping `~`: the import's log lines are noise
                raise UserError(f"importing Keras met a loop of symbolic links ({why}); check HOME and the folders "
                                f"under it") from None
            failed = True
        else:
            failed = False
        if failed:
            captured.seek(0)
            text = captured.read().decode(errors="replace")
    if failed:
        sys.stderr.write(text)
        import keras  # noqa: F401,F811  (raise the real error, visibly)
    _quiet_python_logs()
    _out_of_the_collectors_sight(collect_first=False)


_FROZEN = [False]


def _out_of_the_collectors_sight(collect_first: bool) -> None:
    """Once a process: what the import made (about 426,000 objects with TensorFlow) lives as long
    as the process, so `gc.freeze` moves it out of the collector's sight. A full collection (one
    between trials, and Python's own while a step is traced) then takes under 1 ms instead of
    0.29 s on the 2-core CPU; a 6-trial tiny search took 18-21 s instead of 21-28 s."""
    if _FROZEN[0]:
        return
    if collect_first:  # garbage frozen now would never be freed
        gc.collect()
    gc.freeze()
    _FROZEN[0] = True


@contextlib.contextmanager
def _stderr_to(file: Any) -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _quiet_python_logs() -> None:
    import logging

    # tf.function retracing warnings: expected when every trial is a new model.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def selected_backend() -> str:
    """The backend Keras will pick ($KERAS_BACKEND, else keras.json, else tensorflow), without
    importing Keras."""
    if config.keras_backend():
        return config.keras_backend()
    try:
        return str(json.loads((config.keras_home() / "keras.json").read_text()).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


# backend -> (the module it needs, the package extra that installs it)
BACKENDS = {"tensorflow": ("tensorflow", "tensorflow"), "jax": ("jax", "jax"), "torch": ("torch", "torch")}


def require_backend(backend: str) -> None:
    """One line naming what to install when Keras or the chosen backend is missing, before any
    data is decoded or any worker starts."""
    if backend not in BACKENDS:
        raise UserError(f"unknown Keras backend '{backend}' (KERAS_BACKEND or keras.json; choose from "
                        f"{', '.join(BACKENDS)})")
    module, extra = BACKENDS[backend]
    for name, install in (("keras", "pip install keras"), (module, f"pip install 'tune[{extra}]'")):
        if importlib.util.find_spec(name) is None:
            raise UserError(f"the {backend} backend needs {name}, which is not installed: {install} "
                            f"(or choose another with --backend / KERAS_BACKEND)")
