"""How much compilation a trial pays when an earlier trial had the same architecture.

Trains three trials in one process, with JAX's persistent compilation cache in a fresh folder:
a base configuration, the same architecture with other numbers (learning rate, schedule, warm-up,
L2, label smoothing: state in tune, not program constants), and the base again. Prints each
trial's first-epoch time (compilation included), a later epoch's, and how many programs it added
to the cache. Meaningful on the JAX backend (the cache is JAX's).

    KERAS_BACKEND=jax python bench/compile_reuse.py --space digits
    KERAS_BACKEND=jax python bench/compile_reuse.py --space cifar10 --data cifar10.tar.gz --epochs 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="digits")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from tuner.training.backend import configure

    cache = Path(tempfile.mkdtemp(prefix="tune-compile-"))
    setup = configure(args.precision, cache)
    import keras

    if keras.backend.backend() == "jax":
        import jax

        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # count every program
    from tuner.data import load_search_data
    from tuner.space.files import load_space
    from tuner.training.fit import train_trial

    space = load_space(args.space)
    from tuner import config
    data, _ = load_search_data(space, args.data, config.cache_dir())
    start = getattr(space, "start", [])  # also runs on versions before start points, for before/after figures
    base = space.complete(start[0] if start else {})
    other = {**base, "learning_rate": base["learning_rate"] / 2, "l2": base["l2"] * 2 + 1e-5,
             "label_smoothing": 0.1 if base["label_smoothing"] != 0.1 else 0.0,
             "lr_schedule": "cosine" if base["lr_schedule"] != "cosine" else "onecycle", "warmup_epochs": 1}
    rows = []
    for label, params in (("base", base), ("other numbers", other), ("base again", base)):
        before = set((cache / "jax").glob("*")) if (cache / "jax").is_dir() else set()
        result = train_trial(params, data, max_epochs=args.epochs, patience=args.epochs, seed=0)
        added = (set((cache / "jax").glob("*")) if (cache / "jax").is_dir() else set()) - before
        t = result.timings
        rows.append({"trial": label, "first_epoch_seconds": round(t["first_epoch_seconds"], 2),
                     "epoch_seconds": round(t["epoch_seconds"], 3), "total_seconds": round(t["total_seconds"], 2),
                     "new_programs": len(added), "val_accuracy": round(result.val_accuracy, 4)})
        print(json.dumps(rows[-1]), flush=True)
    record = {"space": args.space, "setup": setup, "trials": rows}
    if args.out:
        args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
