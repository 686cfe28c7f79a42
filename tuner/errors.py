"""The error taxonomy, after KerasTuner's.

- `UserError`: the user asked for something impossible (a bad file, flag or path). One line,
  exit code 2, no traceback; nothing is written.
- `TrialFailed`: one trial could not finish (NaN loss, out of memory, a broken parameter set).
  It is recorded with its reason and the search goes on.
- `TrialPruned`: the pruner stopped a poor trial early; it counts as finished.
- `SearchStopped`: a fatal condition that ends the whole search (too many failures in a row).
"""

from __future__ import annotations

import errno
import json
import os
import traceback

from tuner.wording import clipped


class TuneError(Exception):
    """Base of every error `tune` raises on purpose."""


class UserError(TuneError):
    """A problem with the user's input, told in one line."""


class TrialEnded(TuneError):
    """A trial that ended before its budget, with what it still tells: its epochs so far
    (`history`) and where its time went (`timings`)."""

    def __init__(self, reason: str, history: dict[str, list[float]] | None = None,
                 timings: dict[str, float] | None = None):
        super().__init__(reason)
        self.history: dict[str, list[float]] = history or {}
        self.timings: dict[str, float] = timings or {}


class TrialFailed(TrialEnded):
    """A trial that could not finish; the search records it and goes on."""


class TrialPruned(TrialEnded):
    """A trial stopped early by the pruner."""


class TrialSetAside(TrialEnded):
    """A proposal not trained at all: not one of its epochs fits before the search's deadline."""


class TrialTakenOver(TuneError):
    """A trial another process ended while this one trained it (its heartbeats were judged stale):
    its result can no longer be written over that record."""


class SearchStopped(TuneError):
    """A fatal condition that stops the search (not the user's input)."""


class Interrupted(TuneError):
    """Ctrl-C, SIGTERM or SIGHUP ended a search after its trials were recorded; `str()` is the signal.
    Not a KeyboardInterrupt, so the command line reports it in its own one line."""


_WHAT_TO_DO = {
    errno.ENOSPC: "the disk is full; free some space there, or write elsewhere (--results-dir, --export, TUNE_CACHE_DIR)",
    errno.EDQUOT: "the disk quota is used up; free some space there, or write elsewhere (--results-dir, --export, TUNE_CACHE_DIR)",
    errno.EACCES: "permission denied; use a folder you can write to",
    errno.EPERM: "not permitted; use a folder you can write to",
    errno.EROFS: "read-only file system; use a folder you can write to",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "a folder is where a file should be",
    errno.ENAMETOOLONG: "a name in the path is too long",
    errno.ENOENT: "no such file or folder",
    errno.EEXIST: "already exists",
}


def describe_os_error(error: OSError) -> str:
    """One line for an operating-system error: the path, what happened, what to do."""
    # A copy names its source first and its destination second; a full disk is the destination's.
    written = error.errno in (errno.ENOSPC, errno.EDQUOT) and error.filename2
    name = error.filename2 if written else error.filename
    path = clipped(os.fsdecode(name) if isinstance(name, (str, bytes)) else str(name or ""))  # abort() escapes it
    what = _WHAT_TO_DO.get(error.errno or 0) or error.strerror or type(error).__name__
    return f"{path}: {what}" if path else f"{what} ({error})"


def describe_fault(error: BaseException) -> str | None:
    """One line for a fault of the system rather than of `tune` (an OS error, the study database
    refusing a write: a full disk, a read-only file), or None for anything else."""
    if isinstance(error, OSError):
        return describe_os_error(error)
    if isinstance(error, json.JSONDecodeError) and _raised_in(error, "optuna/storages"):
        return (f"the study database holds a value that is not JSON ({error.msg}); it was written by another "
                f"program or is damaged")
    database = [e for e in _chain(error) if type(e).__module__.startswith(_DATABASE_MODULES)
                or type(e).__name__ == "StorageInternalError"]
    if not database:
        return None
    # The innermost says what happened ("attempt to write a readonly database"); Optuna's wrapper
    # only that a commit failed ("invalid data in the commit").
    text = " ".join(str(database[-1]).split())[:300] or type(database[-1]).__name__
    return (f"the study database refused a write ({text}); is its disk full or its file read-only? "
            f"The same command resumes once it can write")


_DATABASE_MODULES = ("sqlalchemy", "optuna.storages", "sqlite3", "psycopg")


def _chain(error: BaseException, most: int = 8) -> list[BaseException]:
    """`error` and what caused it, outermost first."""
    chain = [error]
    while len(chain) < most and (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and cause not in chain:
        chain.append(cause)
    return chain


def _raised_in(error: BaseException, path_part: str) -> bool:
    """Whether the traceback of `error` passes through a file whose path holds `path_part`."""
    frames = traceback.extract_tb(error.__traceback__)
    return any(path_part in frame.filename.replace("\\", "/") for frame in frames)
