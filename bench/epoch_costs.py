"""What one epoch of each candidate costs here: builds each parameter set (over a space's second
start point, or its first) with tune's own trainer, trains one epoch on a subset of the training
split to trace and warm it, then times a second epoch. No validation and no test split: only the
training step's time, for weighing a family against a budget.

    python bench/epoch_costs.py --space fashion_mnist_regularization --train 6000 \
        --candidate '{}' --candidate '{"model": "cnn", "head_units": 0}' --precision float32

One process for all candidates (the first pays the imports, not timed); each line gives the
seconds of the timed epoch and that time scaled to the whole training split (an estimate).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", required=True)
    parser.add_argument("--train", type=int, default=6000, help="training images timed (the first of the split)")
    parser.add_argument("--candidate", action="append", default=[], help="JSON: parameters over the start point")
    parser.add_argument("--precision", choices=["float32", "bf16"], default="float32")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tuner.training.backend import configure

    setup = configure(args.precision, Path(tempfile.mkdtemp(prefix="tune-epoch-costs-")))
    from tuner import config
    from tuner.data import load_search_data
    from tuner.space.files import load_space
    from tuner.training.fit import _compile
    from tuner.training.memory import free_memory

    space = load_space(args.space)
    data, _ = load_search_data(space, None, config.cache_dir())
    whole = len(data.x_train)
    data = type(data)(data.x_train[:args.train], data.y_train[:args.train], data.x_val[:1], data.y_val[:1],
                      data.class_names)
    start = space.start[-1] if space.start else {}
    print(json.dumps(setup))
    for candidate in args.candidate or ["{}"]:
        model, trainer, batches = _compile(space.complete({**start, **json.loads(candidate)}), data, 2, seed=0)
        trainer.fit(batches, epochs=1, verbose=0)
        started = time.perf_counter()
        trainer.fit(batches, epochs=1, verbose=0)
        seconds = time.perf_counter() - started
        print(json.dumps({"candidate": json.loads(candidate), "weights": model.count_params(), "images": args.train,
                          "epoch_seconds": round(seconds, 2), "whole_split_seconds": round(seconds * whole / args.train, 1)}),
              flush=True)
        del model, trainer, batches
        free_memory()


if __name__ == "__main__":
    main()
