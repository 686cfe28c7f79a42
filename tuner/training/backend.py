"""Training's set-up of the backend: the device, the precision policy and whether the training
step uses XLA. Mixed precision (bf16) is on by default where an accelerator supports it and off
on the CPU, where bf16 is slower.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from tuner.keras_backend import load_keras


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
