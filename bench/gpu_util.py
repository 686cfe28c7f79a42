"""Run a command and sample the GPU while it runs: how busy the accelerator was over the
command's whole wall time (issue 6's "accelerator busy" target), and its peak memory.

    python bench/gpu_util.py --out util.json -- tune search --space cifar10 --trials 50 --jobs 2

NVML's utilization is the share of each sample period in which at least one kernel ran on the
device, so several processes on one GPU are counted once, unlike summing their step times. The
mean over samples taken every --interval seconds, from the command's start to its end, is the
busy fraction. Needs NVIDIA's NVML (`pynvml`, from the nvidia-ml-py package).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path


def sample(stop: threading.Event, interval: float, rows: list[tuple[float, int, int]], t0: float) -> None:
    """Append (seconds since start, utilization %, memory used MiB) until told to stop."""
    import pynvml

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    while not stop.wait(interval):
        util = pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
        used = pynvml.nvmlDeviceGetMemoryInfo(handle).used >> 20
        rows.append((round(time.perf_counter() - t0, 2), util, used))
    pynvml.nvmlShutdown()


def summary(rows: list[tuple[float, int, int]], wall: float) -> dict:
    utils = [r[1] for r in rows]
    minutes = {}  # per-minute means show where the device idled (start-up, ensemble, the tail)
    for t, u, _ in rows:
        minutes.setdefault(int(t // 60), []).append(u)
    return {"wall_seconds": round(wall, 1), "samples": len(rows),
            "busy_fraction": round(statistics.fmean(utils) / 100, 3) if utils else None,
            "peak_memory_mib": max((r[2] for r in rows), default=None),
            "per_minute_busy": {m: round(statistics.fmean(v) / 100, 2) for m, v in minutes.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    rows: list[tuple[float, int, int]] = []
    stop = threading.Event()
    t0 = time.perf_counter()
    thread = threading.Thread(target=sample, args=(stop, args.interval, rows, t0), daemon=True)
    thread.start()
    code = subprocess.call(command)
    wall = time.perf_counter() - t0
    stop.set()
    thread.join()
    record = {"command": command, "exit_code": code, **summary(rows, wall), "timeline": rows}
    args.out.write_text(json.dumps(record))
    print(json.dumps({k: v for k, v in record.items() if k != "timeline"}), flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
