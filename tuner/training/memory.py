"""Memory between trials: what a trial leaves is released, so memory stays flat over hundreds
of trials, and a process's resident size is measured (a worker retires when it grows)."""

from __future__ import annotations

import ctypes
import gc


def resident_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def free_memory(collect: bool = True) -> None:
    """Drop the trial's graphs, models and compiled programs, and hand freed heap back to the OS.
    `collect=False` skips the full collection: after a trial on 48,000 Fashion-MNIST images it took
    5 s alone and 50 s beside another worker (BENCHMARKS.md), worth it only when a trial follows."""
    import keras

    keras.backend.clear_session(free_memory=False)  # its gc.collect() is the one below, once
    if keras.backend.backend() == "jax":
        import jax

        jax.clear_caches()  # compiled executables of earlier trials' models
    if collect:
        gc.collect()
        _trim_heap()


def _trim_heap() -> None:
    """glibc keeps freed memory in its arenas; malloc_trim returns it (a no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
