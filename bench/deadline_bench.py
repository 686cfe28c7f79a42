"""How far past `--timeout` a search ends: runs `tune search --timeout T --no-ensemble` and
reads its study. The deadline is taken as the first trial's start plus T (the search starts its
clock a moment before that, so the overrun printed is an upper bound); the target is at most
one epoch of the trials running at the deadline.

    python bench/deadline_bench.py --space fashion_mnist --timeout 120
    python bench/deadline_bench.py --space digits --timeout 30 --jobs 1

Prints a JSON record (also written with --out) and one Markdown table row for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tuner.store import SearchStore  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="fashion_mnist")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--data", default=None)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = Path(tempfile.mkdtemp(prefix="deadline-"))
    command = [sys.executable, "-m", "tuner", "search", "--space", args.space, "--trials", str(args.trials),
               "--timeout", f"{args.timeout:g}", "--no-ensemble", "--results-dir", str(results), "--seed", "0"]
    command += ["--jobs", str(args.jobs)] if args.jobs else []
    command += ["--data", args.data] if args.data else []
    start = time.time()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - start
    store = SearchStore(None, results)
    name = store.studies.names()[0]
    frozen = store.db.storage.get_all_trials(store.studies.require(name))
    trials = {t.number: t for t in store.trials.all(name)}
    first = min(f.datetime_start for f in frozen if f.datetime_start).timestamp()
    last = max(f.datetime_complete for f in frozen if f.datetime_complete).timestamp()
    cut = [t for t in trials.values() if t.reason and "deadline" in t.reason]
    epoch = [t.timings["epoch_seconds"] for t in cut if "epoch_seconds" in t.timings]
    record = {"space": args.space, "timeout": args.timeout, "jobs": args.jobs or "default", "wall_seconds": round(wall, 1),
              "trials": len(trials), "cut_at_deadline": len(cut),
              "overrun_seconds": round(last - (first + args.timeout), 1),
              "median_epoch_seconds_of_cut": round(statistics.median(epoch), 1) if epoch else None,
              "machine": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(record, indent=1))
    if args.out:
        args.out.write_text(json.dumps(record, indent=1))
    print(f"| {args.space} | {args.timeout:g} s | {record['jobs']} | {len(trials)} ({len(cut)} cut) | "
          f"{record['overrun_seconds']} s | {record['median_epoch_seconds_of_cut']} s | {wall:.0f} s |")


if __name__ == "__main__":
    main()
