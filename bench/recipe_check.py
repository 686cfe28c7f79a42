"""Train one fixed recipe two ways on the same split: by `tuner.training.fit.train_trial` (what every
trial of `tune search` runs) and by the hand-written plain-Keras reference
(`bench/reference/resnet9.py`). Each runs in its own process; prints both validation curves.
A gap beyond seed noise means tune's training path loses accuracy the reference keeps.

    python bench/recipe_check.py --data ../shared/datasets/cifar10.tar.gz --epochs 16 --out check.json
    python bench/recipe_check.py --data ... --train-samples 10000 --epochs 8 --set width=16 --out cpu.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from recipe import add_recipe_arguments, load_split, recipe_from_args

HERE = Path(__file__).resolve().parent


def train_with_tune(args: argparse.Namespace) -> dict:
    """The recipe through train_trial, early stopping off (patience = epochs) as the reference has none."""
    import keras

    from tuner.training.backend import configure
    from tuner.training.fit import train_trial

    recipe = recipe_from_args(args)
    setup = configure(args.precision)
    data = load_split(args)
    start = time.time()

    def report(epoch: int, values: dict, whole: bool) -> None:
        print(f"tune epoch {epoch + 1}: val_accuracy {values['val_accuracy']:.4f} ({time.time() - start:.0f} s)", flush=True)

    result = train_trial(recipe, data, max_epochs=args.epochs, patience=args.epochs, seed=args.seed, on_epoch=report)
    return {"tool": "tune", "recipe": recipe, "val_accuracy": result.history["val_accuracy"],
            "seconds": time.time() - start, "backend": keras.backend.backend(), "setup": setup}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_recipe_arguments(parser)
    parser.add_argument("--side", choices=["both", "tune", "reference"], default="both")
    args = parser.parse_args()
    if args.side == "tune":
        args.out.write_text(json.dumps(train_with_tune(args), indent=1))
        return
    if args.side == "reference":
        raise SystemExit("run bench/reference/resnet9.py for the reference alone")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    passed = [a for a in sys.argv[1:] if a not in ("--side", "both")]
    out_index = passed.index("--out") + 1
    records = {}
    for side, script in (("tune", [str(HERE / "recipe_check.py"), "--side", "tune"]),
                         ("reference", [str(HERE / "reference" / "resnet9.py")])):
        out = args.out.with_name(f"{args.out.stem}_{side}.json")
        command = [sys.executable, *script, *passed[:out_index], str(out), *passed[out_index + 1:]]
        subprocess.run(command, check=True)
        records[side] = json.loads(out.read_text())
    summary = {side: {"final": r["val_accuracy"][-1], "best": max(r["val_accuracy"]), "seconds": round(r["seconds"], 1)}
               for side, r in records.items()}
    print(json.dumps(summary, indent=1))
    args.out.write_text(json.dumps({"summary": summary, **records}, indent=1))


if __name__ == "__main__":
    main()
