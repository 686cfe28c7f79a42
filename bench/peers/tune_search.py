"""The contender: `tune` on the peers' space, with its defaults (Optuna TPE, median pruner,
worker processes where the CLI would use them) and optionally `--jobs N`.

    python bench/peers/tune_search.py --data ../shared/datasets/cifar10.tar.gz --out tune.json
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import Progress, add_arguments, load_space

from tuner.keras_backend import selected_backend
from tuner.search.observer import QuietObserver
from tuner.search.request import SearchRequest
from tuner.search.run import run_search
from tuner.store import SearchStore


class Record(QuietObserver):
    def __init__(self, progress: Progress):
        self.progress, self.setup = progress, {}

    def search_started(self, setup) -> None:
        self.setup = setup

    def trial_finished(self, record) -> None:
        self.progress.trial_done(record.value)


def main() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()

    space = load_space(args.train_samples, args.val_fraction).with_overrides(epochs=args.epochs)
    from tuner import config
    cache = config.cache_dir()
    store = SearchStore(None, Path(tempfile.mkdtemp(prefix="tune-peer-")))
    observer = Record(Progress("tune" + (f" --jobs {args.jobs}" if args.jobs > 1 else "")))
    request = SearchRequest(space, "peers", args.trials, data=args.data, cache_dir=cache, seed=0, jobs=args.jobs,
                            isolate=selected_backend() == "tensorflow")
    run_search(store, request, observer)
    observer.progress.write(args.out, backend=observer.setup.get("backend"), setup=observer.setup)


if __name__ == "__main__":
    main()
