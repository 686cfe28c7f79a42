"""Who runs a trial, and whether that process is gone.

Optuna's heartbeats find dead workers on any machine after a grace period. On the worker's own
machine a dead process is certain at once: its pid no longer exists under the same boot.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import Any


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def this_worker() -> dict[str, Any]:
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": os.getpid()}


def machine_tag() -> str:
    """This machine under this boot in 8 hex digits: part of a file name that says whose it is."""
    return hashlib.sha256(f"{socket.gethostname()}\0{_boot_id()}".encode()).hexdigest()[:8]


def ended_here(tag: str, pid: int) -> bool:
    """A process `pid` of the machine and boot `tag` names is certainly gone: it was this one's."""
    return tag == machine_tag() and gone({**this_worker(), "pid": pid})


def here(worker: dict[str, Any] | None) -> bool:
    """`worker` runs on this machine, under this boot: its pid tells whether it lives."""
    return bool(worker) and worker.get("host") == socket.gethostname() and worker.get("boot") == _boot_id()


def elsewhere(worker: dict[str, Any] | None) -> bool:
    """`worker` is known and runs on another machine or ran under an earlier boot: only its
    heartbeats tell whether it lives."""
    return bool(worker) and not here(worker)


def gone(worker: dict[str, Any] | None) -> bool:
    """True only when `worker` ran on this machine (same host and boot) and its pid is dead."""
    if not here(worker):
        return False
    try:
        os.kill(int(worker["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, KeyError, TypeError, OverflowError):  # not a pid a process can have
        return False
    return False
