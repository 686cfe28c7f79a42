"""Two single-threaded workers or one worker with both cores? For each configuration: the training
throughput (images a second, steady epochs) of one process with every core, of one process with
one thread, and of two one-thread processes at once (what `--jobs 2` does on two cores), together
with the model's counted multiply-adds (`tuner.training.cost`). Also fits `tuner.search.budget`'s
calibration from the one-thread runs.

    python bench/threads_bench.py --out bench/results/cpu-2026-12-02/threads.json

Each run is a fresh process (thread counts are read once, when TensorFlow starts) training 2
epochs of a subset; the second epoch is the steady one.
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
# name -> (space, data or None, params over the space's start point or defaults, training images)
CASES = {
    "digits start point": ("digits", None, {}, 1400),
    "fashion mlp 2x512": ("fashion_mnist_mlp", None, {}, 12000),
    "fashion cnn d2 w32": ("fashion_mnist_regularization", None, {"augment": 0.0, "flip": False}, 12000),
    "fashion cnn d3 w64": ("fashion_mnist_regularization", None, {"depth": 3, "width": 64, "augment": 0.0,
                                                                  "flip": False}, 6000),
}


def child(case: str) -> None:
    sys.path.insert(0, str(ROOT))
    from tuner import config
    from tuner.data import load_search_data
    from tuner.space.files import load_space
    from tuner.training.fit import train_trial

    name, data, overrides, images = CASES[case]
    space = load_space(name)
    search, _ = load_search_data(space, data, config.cache_dir())
    search = type(search)(search.x_train[:images], search.y_train[:images], search.x_val[:500], search.y_val[:500],
                          search.class_names)
    start = space.start[0] if space.start else {}
    params = space.complete({**start, **overrides})
    result = train_trial(params, search, max_epochs=2, patience=5, seed=0)
    t = result.timings
    print(json.dumps({"images_per_second": images // params["batch_size"] * params["batch_size"] / t["epoch_seconds"],
                      **{k: t[k] for k in ("macs", "steps", "batch_size", "epoch_seconds", "threads")}}), flush=True)


def run(case: str, threads: int, copies: int) -> list[dict]:
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "TF_NUM_INTEROP_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "2"}
    procs = [subprocess.Popen([sys.executable, __file__, "--child", case], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(copies)]
    return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    cores = len(os.sched_getaffinity(0))
    rows = []
    for case in CASES:
        alone = run(case, cores, 1)[0]
        single = run(case, 1, 1)[0]
        pair = run(case, 1, 2)
        rows.append({"case": case, "macs": alone["macs"], "batch_size": alone["batch_size"],
                     f"one worker, {cores} threads": alone["images_per_second"],
                     "one worker, 1 thread": single["images_per_second"],
                     "two workers, 1 thread each (sum)": sum(r["images_per_second"] for r in pair),
                     "runs": {"alone": alone, "single": single, "pair": pair}})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "runs"}), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "cores": cores, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
