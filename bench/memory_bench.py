"""Resident memory across many trials (the most common complaint about KerasTuner and Optuna
scripts). Prints, after every trial, the memory the search holds: the proportional set size
(PSS: each page counted once, shared libraries split between the processes that map them) of
this process plus its worker processes (with --isolate: the training worker and its standby),
and the ratio last/fifth. RSS would count TensorFlow's shared libraries once per process.

    python bench/memory_bench.py --trials 50 --epochs 3             # trials in this process
    python bench/memory_bench.py --trials 50 --epochs 3 --isolate   # as `tune search` on TensorFlow
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tuner.search.observer import QuietObserver  # noqa: E402


class RssObserver(QuietObserver):
    def __init__(self) -> None:
        self.rss: list[float] = []

    def search_started(self, setup) -> None:
        print(f"# {setup}", flush=True)

    def trial_finished(self, record) -> None:
        me = psutil.Process()
        sizes = []
        for process in [me, *me.children(recursive=True)]:
            try:
                sizes.append(process.memory_full_info().pss)
            except psutil.Error:  # ended meanwhile
                pass
        self.rss.append(sum(sizes) / 2**20)
        print(f"trial {record.number} {record.state}: pss {self.rss[-1]:.0f} MiB in {len(sizes)} processes", flush=True)



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--space", default="digits")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--engine", default="optuna")
    parser.add_argument("--isolate", action="store_true", help="train in worker processes, as the CLI does on TF")
    args = parser.parse_args()

    from tuner.search.request import SearchRequest
    from tuner.search.run import run_search
    from tuner.space.files import load_space
    from tuner.store import SearchStore

    results = Path(tempfile.mkdtemp(prefix="tune-mem-"))
    space = load_space(args.space).with_overrides(epochs=args.epochs)
    observer = RssObserver()
    request = SearchRequest(space, "mem", args.trials, args.engine, cache_dir=results / "cache", seed=0,
                            isolate=args.isolate)
    run_search(SearchStore(None, results, create=True), request, observer)
    report = {"trials": len(observer.rss), "pss_after_5th_mib": observer.rss[4], "pss_after_last_mib": observer.rss[-1],
              "ratio_last_to_5th": observer.rss[-1] / observer.rss[4], "max_mib": max(observer.rss),
              "max_ratio_to_5th": max(observer.rss[4:]) / observer.rss[4], "isolate": args.isolate}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
