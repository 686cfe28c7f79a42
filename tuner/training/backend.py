"""The Keras backend: which one, whether it is installed, importing it quietly, the device, the
precision policy and whether the training step uses XLA.

Mixed precision (bf16) is on by default where an accelerator supports it and off on the CPU,
where bf16 is slower.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from tuner import config
from tuner.errors import UserError

def load_keras() -> None:
    """Import Keras (and its backend) once, holding back TensorFlow's start-up log lines,
    which it writes to stderr before any log level applies. Shown if the import fails.
    Keras imports TensorFlow whenever it is installed (to save files, to seed), also on
    the JAX and torch backends, so it is imported here quietly in that case too."""
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return
    require_backend(selected_backend())
    config.quiet_tensorflow()
    with tempfile.TemporaryFile() as captured, _stderr_to(captured):
        try:
            import keras  # noqa: F401

            if importlib.util.find_spec("tensorflow") is not None:
                import tensorflow  # noqa: F401
        except Exception:  # not KeyboardInterrupt: a signal mid-import must end the command, not retry it
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


def accelerator() -> str:
    """'gpu', 'tpu' or 'cpu' for the active Keras backend."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.devices()[0].platform
    if backend == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    return "cpu"


@functools.cache
def jit_compile() -> bool | str:
    """XLA for the training step: Keras's default ("auto") everywhere but TensorFlow on a CPU.
    There, every new architecture's XLA compile costs more than the trial's training saves
    (digits: 8 trials in 80 s with XLA, 55 s without), and TensorFlow keeps each compiled
    program for the life of the process (a bare fit loop: 15 MiB per trial with XLA, 5 without)."""
    import keras

    return False if keras.backend.backend() == "tensorflow" and accelerator() == "cpu" else "auto"


def configure(precision: str = "auto", cache_dir: Path | None = None) -> dict[str, str]:
    """Set the dtype policy ('auto', 'bf16' or 'float32') and, on JAX, the persistent compilation
    cache in `cache_dir`; returns what was chosen."""
    load_keras()
    import keras

    device = accelerator()
    if precision == "auto":
        precision = "bf16" if device in ("gpu", "tpu") else "float32"
    use_precision(precision)
    if keras.backend.backend() == "jax" and cache_dir is not None:
        from tuner.training.compile_cache import use_jax_cache

        use_jax_cache(cache_dir / "jax")
    return {"backend": keras.backend.backend(), "device": device, "precision": precision,
            "keras": keras.__version__, "xla": "off" if jit_compile() is False else "on", "pid": str(os.getpid())}


def use_precision(precision: str) -> None:
    """Keras's global dtype policy: 'bf16' (mixed) or 'float32'. The one place it is set."""
    import keras

    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bf16" else "float32")
