"""Which start point learns the most per CPU-second? Trains each candidate parameter set (over a
space's start point) through tune's own `train_trial` on a subset of the space's training split,
one fresh process each with every core, and prints its validation accuracy and the seconds spent
after every epoch. Validation only: the test split is never read here, so the result may choose
a space's start point.

    python bench/start_points.py --space fashion_mnist --train 12000 --val 3000 --epochs 15 \
        --candidate '{}' --candidate '{"model": "resnet", "depth": 3, "width": 16}' \
        --out bench/results/cpu-2026-12-06/start-points.json

Each candidate trains `--epochs` epochs on its own schedule (a cosine decays over them), with
early stopping off, so every epoch's figure is on the record; its whole parameter set is saved
beside it (a candidate is read over the start point of the day it ran).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(space_name: str, overrides: dict, train: int, val: int, epochs: int, seed: int) -> None:
    sys.path.insert(0, str(ROOT))
    from tuner import config
    from tuner.data import load_search_data
    from tuner.space.files import load_space
    from tuner.training.fit import train_trial

    space = load_space(space_name)
    data, _ = load_search_data(space, None, config.cache_dir())
    data = type(data)(data.x_train[:train], data.y_train[:train], data.x_val[:val], data.y_val[:val],
                      data.class_names)
    params = space.complete({**(space.start[0] if space.start else {}), **overrides})
    start = time.perf_counter()

    def report(epoch: int, figures: dict, _whole: bool) -> None:
        print(json.dumps({"epoch": epoch + 1, "seconds": round(time.perf_counter() - start, 1),
                          "val_accuracy": figures["val_accuracy"], "val_loss": figures["val_loss"],
                          "loss": figures["loss"]}), flush=True)

    result = train_trial(params, data, max_epochs=epochs, patience=epochs + 1, seed=seed, on_epoch=report)
    print(json.dumps({"done": True, "params": params, "macs": result.timings.get("macs"),
                      "val_accuracy": result.val_accuracy,
                      "best_epoch": result.best_epoch + 1, "seconds": round(time.perf_counter() - start, 1)}),
          flush=True)


def run(args: argparse.Namespace, candidate: str) -> dict:
    command = [sys.executable, __file__, "--child", candidate, "--space", args.space, "--train", str(args.train),
               "--val", str(args.val), "--epochs", str(args.epochs), "--seed", str(args.seed)]
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True, env={"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ})
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {"candidate": json.loads(candidate), "epochs": [x for x in lines if "epoch" in x],
            "result": next((x for x in lines if x.get("done")), None), "returncode": proc.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", required=True)
    parser.add_argument("--train", type=int, default=12000, help="training images (the first of the split)")
    parser.add_argument("--val", type=int, default=3000, help="validation images (the first of the split)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidate", action="append", default=[], help="JSON: parameters over the start point")
    parser.add_argument("--child")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child is not None:
        return child(args.space, json.loads(args.child), args.train, args.val, args.epochs, args.seed)
    rows = []
    for candidate in args.candidate or ["{}"]:
        rows.append(run(args, candidate))
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "space": args.space, "train": args.train,
                                        "val": args.val, "epochs": args.epochs, "seed": args.seed, "rows": rows},
                                       indent=1))


if __name__ == "__main__":
    main()
