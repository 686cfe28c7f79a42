"""Who runs a trial, and whether that process is gone.

Optuna's heartbeats find dead workers on any machine after a grace period. On the worker's own
machine a dead process is certain at once: its pid no longer exists under the same boot.
"""

from __future__ import annotations

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
    except (PermissionError, ValueError, KeyError):
        return False
    return False
