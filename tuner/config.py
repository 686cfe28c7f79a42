"""Every environment variable `tune` reads or sets, with its default and its check, in one place.

A bad value is one line naming the variable (never a traceback deep in a worker). Click reads
`TUNE_RESULTS_DIR` and `TUNE_STORAGE` itself, as the defaults of `--results-dir` and `--storage`.
Variables of other programs that `tune` sets (Keras's backend, TensorFlow's log level, thread
and GPU-memory shares) are set here too, always before the library that reads them is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

from tuner.errors import UserError

# name -> what it sets (shown by `tune --help`; README's table says the same)
VARIABLES = {
    "TUNE_RESULTS_DIR": "--results-dir: the folder for the default SQLite file and the artifacts",
    "TUNE_STORAGE": "--storage: the study database URL",
    "TUNE_DATA_DIR": "a folder searched first for a dataset's .npz, archive or folder (it must exist)",
    "TUNE_CACHE_DIR": "decoded images, extracted archives and JAX's compiled programs (~/.cache/tune)",
    "TUNE_CHECK": "--check/--no-check of `tune search`: 0 skips the checks a new study runs before its first trial",
    "TUNE_HEARTBEAT_SECONDS": "seconds between a running trial's heartbeats (10, at most 3600; failed after 3 missed)",
    "TUNE_MAX_EXTRACT_BYTES": "the most an archive may extract to (4 GiB)",
    "TUNE_MAX_EXTRACT_FILES": "the most members an archive may have (500000)",
    "TUNE_EXPLAIN_CACHE": "set: JAX's persistent-cache lookups are logged with their keys",
    "TUNE_START_METHOD": "how worker and check processes start: forkserver (TensorFlow imported once, then forked; "
                         "the default on TensorFlow where processes can fork) or spawn (each imports its own)",
}


def _positive_int(name: str, default: int, high: int = 2**62) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{name}={text!r}: expected a whole number from 1 to {high}") from None
    if not 1 <= value <= high:
        raise UserError(f"{name}={text!r}: expected a whole number from 1 to {high}")
    return value


DEFAULT_CACHE_DIR = Path.home() / ".cache" / "tune"


def cache_dir() -> Path:
    text = os.environ.get("TUNE_CACHE_DIR", "").strip()
    return _folder("TUNE_CACHE_DIR", text) if text else DEFAULT_CACHE_DIR


def data_dir() -> Path | None:
    text = os.environ.get("TUNE_DATA_DIR", "").strip()
    if text and not _folder("TUNE_DATA_DIR", text).is_dir():
        raise UserError(f"TUNE_DATA_DIR={text!r}: no such folder")
    return _folder("TUNE_DATA_DIR", text) if text else None


def _folder(name: str, text: str) -> Path:
    """A folder a variable names, `~` expanded; one line for a path no system takes (too long, a
    loop of links)."""
    from tuner.paths import length_problem, loop_problem
    from tuner.wording import clipped

    path = Path(text).expanduser()
    if why := length_problem(path) or loop_problem(path):
        raise UserError(f"{name}={clipped(text)!r}: {why}")
    return path


def keras_home() -> Path:
    text = os.environ.get("KERAS_HOME", "").strip()
    return Path(text).expanduser() if text else Path.home() / ".keras"


def heartbeat_seconds() -> int:
    return _positive_int("TUNE_HEARTBEAT_SECONDS", 10, high=3600)


def extract_limits() -> tuple[int, int]:
    """(bytes, members) an archive may extract to at most."""
    return _positive_int("TUNE_MAX_EXTRACT_BYTES", 4 << 30), _positive_int("TUNE_MAX_EXTRACT_FILES", 500_000)


def explain_cache() -> bool:
    return bool(os.environ.get("TUNE_EXPLAIN_CACHE"))


def check() -> None:
    """Read every checked variable once, so that a bad value fails before any work starts."""
    heartbeat_seconds()
    extract_limits()
    start_method()


def storage_url() -> str:
    return os.environ.get("TUNE_STORAGE", "").strip()


START_METHODS = ("forkserver", "spawn")


def start_method() -> str | None:
    """$TUNE_START_METHOD: 'forkserver', 'spawn', or None (unset: the default, `tuner.search.pool.processes`)."""
    text = os.environ.get("TUNE_START_METHOD", "").strip()
    if text and text not in START_METHODS:
        raise UserError(f"TUNE_START_METHOD={text!r}: expected one of {', '.join(START_METHODS)}")
    return text or None


def keras_backend() -> str:
    return os.environ.get("KERAS_BACKEND", "").strip()


def set_keras_backend(name: str) -> None:
    """`--backend`: what Keras reads when it is first imported (in this process and its workers)."""
    os.environ["KERAS_BACKEND"] = name


def quiet_tensorflow() -> None:
    """TensorFlow's C++ start-up chatter drowns the terminal view; errors still show."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def columns(default: int = 150) -> int:
    """The width for output that is not a terminal (CI logs, pipes): $COLUMNS if it is a width."""
    text = os.environ.get("COLUMNS", "").strip()
    return int(text) if text.isdigit() and 20 <= int(text) <= 10_000 else default


def share_machine(jobs: int) -> None:
    """With several workers on one machine: a share of the GPU's memory (JAX preallocates 75%
    by default) and of the CPU's threads each. A user's own settings win."""
    if jobs <= 1:
        return
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 / jobs:.2f}")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(name, threads)


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def training_threads() -> int:
    """The CPU threads a training step may use in this process: its share (`share_machine`, or
    the user's own setting), else every usable core."""
    text = os.environ.get("TF_NUM_INTRAOP_THREADS") or os.environ.get("OMP_NUM_THREADS") or ""
    return int(text) if text.isdigit() and int(text) > 0 else usable_cores()
