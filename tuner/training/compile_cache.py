"""JAX's persistent compilation cache: a new trial of an architecture seen before skips most
of its XLA compile (trials that differ only in numbers share one program: `tuner.training.optim`).
It lives in the cache folder, capped at 4 GiB, and each process counts its compiles and hits,
so a trial's record shows whether a seen architecture really skipped its compile.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

from tuner import config

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


def use_jax_cache(folder: Path) -> None:
    """Point JAX's persistent cache at `folder`, bounded, and start counting compiles (once)."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str(folder))
    # Every program, the small ones too: `free_memory` clears JAX's in-memory caches after each
    # trial, and a trial that compiles its ~50 small programs (initializers, optimizer set-up)
    # again spends 2.7 s building on the CPU against 0.3 s reading them from here (BENCHMARKS.md).
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    # Bounded here, once per process, not by JAX's own cap (`jax_compilation_cache_max_size`):
    # that rescans the whole folder under a file lock on every write, 50 ms a program at 3,000
    # entries, and the other workers wait on its lock.
    bound_folder(folder, JAX_CACHE_BYTES)
    if not _COMPILES:
        _COMPILES.update(programs=0, compile_seconds=0.0, cache_hits=0, cache_misses=0)
        jax.monitoring.register_event_listener(_count_event)
        jax.monitoring.register_event_duration_secs_listener(_count_duration)
        if config.explain_cache():
            explain_cache()


_KEY_LINES = ("get_cache_key hash of serialized", "Persistent compilation cache hit", "PERSISTENT COMPILATION CACHE MISS")


def explain_cache() -> None:
    """One stderr line (a worker's log) per persistent-cache lookup, hit or miss, with its program
    and key, and one per part of the key with that part's hash: when one process misses what
    another compiled, the parts show what differed (`bench/cache_keys.py` reads them). JAX logs
    these at debug level; set $TUNE_EXPLAIN_CACHE to turn them on (each key's parts are then
    hashed twice: 0.02 s over the 41 programs of a cifar10 trial on a CPU)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("cache-key %(created).3f %(process)d %(threadName)s %(message)s"))
    handler.addFilter(lambda record: record.getMessage().startswith(_KEY_LINES))
    for name in ("jax._src.cache_key", "jax._src.compiler"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(handler)
