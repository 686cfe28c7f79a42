"""What a training step costs on this CPU against what `tuner.training.cost` counts: per model,
the multiply-adds and the values written an image (`model_elements`, the augmentation's passes
included), and the measured seconds a trained image, steady epochs of tune's own `train_trial`
on random pixels, one fresh process each. Fits `PRIOR_CPU` (seconds a multiply-add, seconds a
written value) by least squares on relative error and prints each model's estimate before
(multiply-adds alone) and after (both terms).

    python bench/layer_costs.py --threads 1 --out bench/results/cpu-2026-12-06/layer-costs-1thread.json
    python bench/layer_costs.py --rows bench/results/cpu-2026-12-06/layer-costs-1thread.json   # refit, no training

"now" is the shipped prior (`PRIOR_CPU`, `ELEMENT_MACS`, `THREAD_GAIN`, `AFFINE_WRITES`); the fit
printed above it is what this run alone would set.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# name -> (input shape, training images, parameters over the defaults)
CASES = {
    "digits cnn d2 w16": ((8, 8, 1), 1024, {"depth": 2, "width": 16, "head_units": 64, "batch_size": 64}),
    "mlp 2x512": ((28, 28, 1), 4096, {"model": "mlp", "depth": 2, "width": 512, "head_units": 0}),
    "lenet d2 w32": ((28, 28, 1), 2048, {"model": "lenet", "depth": 2, "width": 32}),
    "cnn d2 w32": ((28, 28, 1), 2048, {"depth": 2, "width": 32, "head_units": 0}),
    "cnn d2 w32, shifts and flips": ((28, 28, 1), 2048, {"depth": 2, "width": 32, "head_units": 0, "augment": 0.5,
                                                        "max_shift": 2, "flip": True}),
    "cnn d2 w32, rotation and zoom": ((28, 28, 1), 2048, {"depth": 2, "width": 32, "head_units": 0, "augment": 0.5,
                                                         "rotation": 10.0, "zoom": 0.1}),
    "cnn d3 w64": ((28, 28, 1), 1024, {"depth": 3, "width": 64, "head_units": 0}),
    "resnet d3 w16": ((28, 28, 1), 2048, {"model": "resnet", "depth": 3, "width": 16, "head_units": 0}),
    "cnn d2 w32 32x32x3": ((32, 32, 3), 2048, {"depth": 2, "width": 32, "head_units": 0}),
    "separable d2 w16 96x96x3": ((96, 96, 3), 256, {"model": "separable", "depth": 2, "width": 16, "head_units": 0,
                                                    "batch_size": 32}),
    "separable d3 w32 180x180x3": ((180, 180, 3), 192, {"model": "separable", "depth": 3, "width": 32,
                                                        "head_units": 0, "batch_size": 32}),
    "separable d3 w32 180x180x3, flips, rotation, zoom": (
        (180, 180, 3), 192, {"model": "separable", "depth": 3, "width": 32, "head_units": 0, "batch_size": 32,
                             "augment": 1.0, "flip": True, "rotation": 36.0, "zoom": 0.2}),
}


def child(case: str) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from tuner.data import SearchData
    from tuner.space.params import complete_params
    from tuner.training.fit import train_trial

    shape, images, overrides = CASES[case]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images + 64, *shape), dtype=np.uint8)
    y = np.arange(images + 64) % 10
    data = SearchData(x[:images], y[:images], x[images:], y[images:], [str(i) for i in range(10)])
    params = complete_params({"learning_rate": 1e-3, **overrides})
    t = train_trial(params, data, max_epochs=3, patience=5, seed=0).timings
    per_image = t["epoch_seconds"] / (t["steps"] * t["batch_size"])
    print(json.dumps({"seconds_per_image": per_image, **{k: t.get(k, 0.0) for k in (
        "macs", "elements", "augment_elements", "steps", "batch_size", "epoch_seconds", "threads")}}), flush=True)


def measure(case: str, threads: int) -> dict:
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "TF_NUM_INTEROP_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, __file__, "--child", case], env=env, stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# (with rotation and zoom, without): the same model, so their difference is the augmentation's.
AFFINE_PAIRS = [("cnn d2 w32, rotation and zoom", "cnn d2 w32"),
                ("separable d3 w32 180x180x3, flips, rotation, zoom", "separable d3 w32 180x180x3")]


def affine_passes(turned: dict, plain: dict, element_seconds: float) -> float:
    """What the rotation and zoom cost, in passes over the image's values: the pair's difference
    less the other augmentation's writes (`Augment.written` without its affine passes)."""
    from tuner.training.augment import AFFINE_PASSES

    values = math.prod(CASES[turned["case"]][0])
    other = turned["augment_elements"] - AFFINE_PASSES * values
    return ((turned["seconds_per_image"] - plain["seconds_per_image"]) / element_seconds - other) / values


def augmentation_written(case: str) -> float:
    from tuner.space.params import complete_params
    from tuner.training.fit import augmentation

    shape, _, overrides = CASES[case]
    return augmentation(complete_params({"learning_rate": 1e-3, **overrides})).written(shape)


def fit(rows: list[dict], step_seconds: float) -> tuple[float, float]:
    """Seconds a multiply-add and a written value, least squares on each model's relative error."""
    import numpy as np

    work = np.array([[r["macs"], r["elements"] + r["augment_elements"]] for r in rows])
    target = np.array([r["seconds_per_image"] - step_seconds / r["batch_size"] for r in rows])
    weights = 1 / target
    solution, *_ = np.linalg.lstsq(work * weights[:, None], target * weights, rcond=None)
    return float(solution[0]), float(solution[1])


def estimate(row: dict, calibration) -> float:
    """A calibration's seconds a trained image (`tuner.training.cost`; its validation aside)."""
    from tuner.training.cost import Cost

    cost = Cost(row["macs"], 0, 1, int(row["batch_size"]), 0, row["elements"], row["augment_elements"])
    return calibration.step_seconds / cost.batch_size + calibration.work_seconds * cost.work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", action="append", help="case names to run (default: all)")
    parser.add_argument("--rows", type=Path, help="refit rows saved by an earlier --out instead of measuring")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    sys.path.insert(0, str(ROOT))
    from tuner.training.cost import Calibration, prior

    # Saved rows take the augmentation's writes by today's rule (`Augment.written`).
    rows = [{**r, "augment_elements": augmentation_written(r["case"])}
            for r in json.loads(args.rows.read_text())["rows"]] if args.rows else []
    for case in [] if args.rows else args.only or CASES:
        rows.append({"case": case, **measure(case, args.threads)})
        print(json.dumps(rows[-1]), flush=True)
    now = prior("cpu", args.threads)
    mac, element = fit(rows, now.step_seconds)
    print(f"fitted: {mac:.3g} s a multiply-add, {element:.3g} s a written value ({element / mac:.0f} multiply-adds)")
    # The prior before written values counted: 1.0e-10 s a multiply-add a core, nothing else.
    before = Calibration(now.step_seconds, 1.0e-10 / (1 + 0.8 * (args.threads - 1)), 0.0)  # and 0.8 of a core a thread
    rows_before = [{**r, "elements": 0.0, "augment_elements": 0.0} for r in rows]
    print(f"{'case':52} {'measured':>10} {'estimated: multiply-adds only':>30} {'now':>8}")
    for r, old in zip(rows, rows_before):
        measured = r["seconds_per_image"]
        print(f"{r['case']:52} {measured * 1e3:8.3f}ms {estimate(old, before) / measured:29.2f}x "
              f"{estimate(r, now) / measured:7.2f}x")
    for turned, plain in AFFINE_PAIRS:
        pair = {r["case"]: r for r in rows}
        if turned in pair and plain in pair:
            print(f"a rotation or zoom's time in passes over the image ({turned}): "
                  f"{affine_passes(pair[turned], pair[plain], element):.0f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "threads": args.threads, "rows": rows,
                                        "fitted": {"mac_seconds": mac, "element_seconds": element}}, indent=1))


if __name__ == "__main__":
    main()
