"""Imbalanced classes: the same search budget ranked by accuracy, by balanced accuracy, and by
balanced accuracy with `class_weight` searched, on an image folder made from Fashion-MNIST's
training images with a largest-to-smallest class ratio of `--ratio` (geometric counts). Each run
is `tune search` on the same folder, split and seed; figures are the exported model's on the
held-out test split (stratified, so imbalanced alike): accuracy, balanced accuracy and the worst
class's accuracy.

    python bench/imbalance_bench.py --largest 1200 --ratio 10 --trials 8 --timeout 300

Needs Fashion-MNIST's IDX files (apt-get install dataset-fashion-mnist). Prints one JSON record
per run and Markdown table rows for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

FASHION = Path("/usr/share/datasets/fashion-mnist")
NAMES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
VARIANTS = {  # run name -> what it changes in the space
    "accuracy": {},
    "balanced_accuracy": {"objective": "balanced_accuracy"},
    "balanced_accuracy + class_weight": {"objective": "balanced_accuracy",
                                         "class_weight": {"type": "categorical", "choices": ["none", "balanced"]}},
}


def _idx(name: str) -> np.ndarray:
    with gzip.open(FASHION / name) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def make_folder(root: Path, largest: int, ratio: float) -> dict[str, int]:
    """Class c gets largest * ratio**(-c / 9) images (class 0 the most), the first ones of its class."""
    x, y = _idx("train-images-idx3-ubyte.gz"), _idx("train-labels-idx1-ubyte.gz")
    counts = {}
    for c, name in enumerate(NAMES):
        n = int(round(largest * ratio ** (-c / (len(NAMES) - 1))))
        (root / f"{c}-{name}").mkdir(parents=True)
        for i, image in enumerate(x[y == c][:n]):
            Image.fromarray(image, mode="L").save(root / f"{c}-{name}" / f"{i}.png")
        counts[f"{c}-{name}"] = n
    return counts


def space_file(path: Path, changes: dict) -> Path:
    base = yaml.safe_load((Path(__file__).resolve().parent.parent / "search_spaces" / "fashion_mnist.yaml").read_text())
    base.update(name="imbalanced_fashion", dataset="folder", input={"height": 28, "width": 28, "channels": 1})
    base["training"].update(max_epochs=8, test_fraction=0.2)
    if "objective" in changes:
        base["training"]["objective"] = changes["objective"]
    base["params"].update({k: v for k, v in changes.items() if k != "objective"})
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    return path


def run(name: str, changes: dict, folder: Path, work: Path, args: argparse.Namespace) -> dict:
    results = work / name.replace(" ", "").replace("+", "_")
    space = space_file(work / f"{results.name}.yaml", changes)
    start = time.time()
    subprocess.run([sys.executable, "-m", "tuner", "search", "--space", str(space), "--data", str(folder),
                    "--trials", str(args.trials), "--timeout", f"{args.timeout:g}", "--seed", "0",
                    "--results-dir", str(results)], check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - start
    best = json.loads(subprocess.run([sys.executable, "-m", "tuner", "best", "--json", "--results-dir", str(results)],
                                     check=True, capture_output=True, text=True).stdout)
    final = best["evaluation"]["test"]["ensemble"]  # model.keras (no refit here)
    per_class = final["per_class_accuracy"]
    worst = min(per_class, key=per_class.get)
    return {"run": name, "trials": args.trials, "timeout": args.timeout, "wall_seconds": round(wall),
            "test_accuracy": round(final["accuracy"], 4), "test_balanced_accuracy": round(final["balanced_accuracy"], 4),
            "worst_class": worst, "worst_class_accuracy": round(per_class[worst], 4),
            "best_trial_params": {k: best["best_trial"]["params"][k] for k in ("class_weight", "depth", "width")},
            "date": time.strftime("%Y-%m-%d")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--largest", type=int, default=1200)
    parser.add_argument("--ratio", type=float, default=10.0)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imbalance-"))
    counts = make_folder(work / "images", args.largest, args.ratio)
    print(f"# folder {work / 'images'}: {counts}", flush=True)
    records = [run(name, changes, work / "images", work, args) for name, changes in VARIANTS.items()]
    for r in records:
        print(json.dumps(r))
    if args.out:
        args.out.write_text(json.dumps({"counts": counts, "runs": records}, indent=1))
    for r in records:
        print(f"| {r['run']} | {100 * r['test_accuracy']:.2f}% | {100 * r['test_balanced_accuracy']:.2f}% | "
              f"{r['worst_class']} {100 * r['worst_class_accuracy']:.2f}% | {r['wall_seconds']} s |")


if __name__ == "__main__":
    main()
