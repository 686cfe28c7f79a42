"""Backend set-up for training: precision policy and compilation cache.

Mixed precision (bf16) is on by default where an accelerator supports it and off on the CPU,
where bf16 is slower. JAX's persistent compilation cache lets a new trial of an architecture
seen before skip most of its XLA compile (trials that differ only in numbers share one program:
`tuner.training.optim`); it lives in the cache folder, capped at 4 GiB.
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

JAX_CACHE_BYTES = 4 << 30  # the persistent compilation cache's cap on disk (`bound_folder`)
_COMPILES: dict[str, float] = {}  # JAX compile events in this process, once listening


def _count_event(event: str, *args: object, **kwargs: object) -> None:
    name = event.rsplit("/", 1)[-1]
    if event.startswith("/jax/compilation_cache/") and name in ("cache_hits", "cache_misses"):
        _COMPILES[name] += 1


def _count_duration(event: str, duration: float, *args: object, **kwargs: object) -> None:
    if event == "/jax/core/compile/backend_compile_duration":  # a compile, or a load from the cache
        _COMPILES["programs"] += 1
        _COMPILES["compile_seconds"] += duration


def compile_counts() -> dict[str, float]:
    """This process's JAX programs so far: how many it asked XLA for ("programs") and the seconds
    that took, how many came from the persistent cache ("cache_hits") and how many were compiled
    and written to it ("cache_misses"); empty on other backends. Per trial, these show whether a
    seen architecture really skipped its compile."""
    return dict(_COMPILES)


def bound_folder(folder: Path, max_bytes: int) -> None:
    """Delete the least recently used files of `folder` until it holds at most `max_bytes`."""
    files = []
    for path in folder.glob("*") if folder.is_dir() else []:
        with contextlib.suppress(OSError):  # another worker may be deleting the same file
            stat = path.stat()
            files.append((max(stat.st_atime, stat.st_mtime), stat.st_size, path))
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= max_bytes:
            return
        with contextlib.suppress(OSError):
            path.unlink()
        total -= size


def load_keras() -> None:
    """Import Keras (and its backend) once, holding back TensorFlow's start-up log lines,
    which it writes to stderr before any log level applies. Shown if the import fails.
    Keras imports TensorFlow whenever it is installed (to save files, to seed), also on
    the JAX and torch backends, so it is imported here quietly in that case too."""
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return
    require_backend(selected_backend())
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
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
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


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_jobs(jobs: int) -> int:
    """Worker processes beyond the machine's cores only compete for them (and for memory)."""
    cores = usable_cores()
    if jobs > cores:
        raise UserError(f"--jobs {jobs}: this machine runs {cores} at most (its usable cores); "
                        f"start more machines with the same --study to go wider")
    return jobs


def default_jobs(engine: str) -> int:
    """Two workers where the machine has two cores or more. On a GPU one trial compiles or
    validates while the other trains (an H100 was busy 77-82% of a cifar10 search with two); on
    a CPU a small model's trial leaves a core idle in its single-threaded parts (the digits
    quickstart on 2 cores: 1:11 with two, 1:40 with one; BENCHMARKS.md, session 6). One with the
    KerasTuner engine, which keeps its oracle in one process."""
    return 2 if engine == "optuna" and usable_cores() >= 2 else 1


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


_KEY_LINES = ("get_cache_key hash of serialized", "Persistent compilation cache hit", "PERSISTENT COMPILATION CACHE MISS")


def explain_cache() -> None:
    """One stderr line (a worker's log) per persistent-cache lookup, hit or miss, with its program
    and key, and one per part of the key with that part's hash: when one process misses what
    another compiled, the parts show what differed (`bench/cache_keys.py` reads them). JAX logs
    these at debug level; set $TUNE_EXPLAIN_CACHE to turn them on (each key's parts are then
    hashed twice: 0.02 s over the 41 programs of a cifar10 trial on a CPU)."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("cache-key %(created).3f %(process)d %(threadName)s %(message)s"))
    handler.addFilter(lambda record: record.getMessage().startswith(_KEY_LINES))
    for name in ("jax._src.cache_key", "jax._src.compiler"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(handler)


def configure(precision: str = "auto", cache_dir: Path | None = None) -> dict[str, str]:
    """Set the dtype policy ('auto', 'bf16' or 'float32'); returns what was chosen."""
    load_keras()
    import keras

    device = accelerator()
    if precision == "auto":
        precision = "bf16" if device in ("gpu", "tpu") else "float32"
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bf16" else "float32")
    if keras.backend.backend() == "jax" and cache_dir is not None:
        import jax

        jax.config.update("jax_compilation_cache_dir", str(cache_dir / "jax"))
        # Every program, the small ones too: `free_memory` clears JAX's in-memory caches after each
        # trial, and the next one recompiled its ~50 small programs (initializers, optimizer set-up):
        # 2.7 s of build a trial on the CPU against 0.3 s read from the cache (BENCHMARKS.md).
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        # Bounded here, once per process, not by JAX's own cap (`jax_compilation_cache_max_size`):
        # that rescans the whole folder under a file lock on every write, 50 ms a program at 3,000
        # entries, and the other workers wait on its lock.
        bound_folder(cache_dir / "jax", JAX_CACHE_BYTES)
        if not _COMPILES:
            _COMPILES.update(programs=0, compile_seconds=0.0, cache_hits=0, cache_misses=0)
            jax.monitoring.register_event_listener(_count_event)
            jax.monitoring.register_event_duration_secs_listener(_count_duration)
            if config.explain_cache():
                explain_cache()
    return {"backend": keras.backend.backend(), "device": device, "precision": precision,
            "keras": keras.__version__, "xla": "off" if jit_compile() is False else "on", "pid": str(os.getpid())}
