"""Resident memory across many trials in one process (the most common complaint about
KerasTuner and Optuna scripts). Prints RSS after every trial and the ratio last/fifth.

    python bench/memory_bench.py --trials 50 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tuner.runner import QuietObserver  # noqa: E402


class RssObserver(QuietObserver):
    def __init__(self) -> None:
        self.rss: list[float] = []

    def search_started(self, setup) -> None:
        print(f"# {setup}", flush=True)

    def trial_finished(self, record) -> None:
        self.rss.append(psutil.Process().memory_info().rss / 2**20)
        print(f"trial {record.number} {record.state}: rss {self.rss[-1]:.0f} MiB", flush=True)



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--space", default="digits")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--engine", default="optuna")
    args = parser.parse_args()

    from tuner.search import SearchRequest, run_search
    from tuner.spaces import load_space
    from tuner.store import SearchStore

    results = Path(tempfile.mkdtemp(prefix="tune-mem-"))
    space = load_space(args.space).with_overrides(epochs=args.epochs)
    observer = RssObserver()
    request = SearchRequest(space, "mem", args.trials, args.engine, cache_dir=results / "cache", seed=0)
    run_search(SearchStore(None, results), request, observer)
    report = {"trials": len(observer.rss), "rss_after_5th_mib": observer.rss[4], "rss_after_last_mib": observer.rss[-1],
              "ratio_last_to_5th": observer.rss[-1] / observer.rss[4], "max_mib": max(observer.rss)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
