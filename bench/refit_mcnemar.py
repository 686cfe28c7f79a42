"""McNemar's test between a study's searched ensemble and its refit ensemble on the test split:
how many test images only one of the two gets right, and z = (b - c) / sqrt(b + c).

    python bench/refit_mcnemar.py RESULTS_DIR [RESULTS_DIR ...] [--study bench]

Reads the two models the refit evaluation saved (`ensemble/search_ensemble.keras` and
`ensemble/model.keras`); it looks at the test split again, after the record was written, to
report a figure, never to choose anything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--study", default="bench")
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    import keras

    from tuner import config
    from tuner.data import load_test_data
    from tuner.ensemble.evaluate import stored_space
    from tuner.store import SearchStore

    cache = config.cache_dir()
    for results in args.results:
        store = SearchStore(None, results)
        x, y = load_test_data(stored_space(store, args.study), args.data, cache)
        files = store.evaluations.latest(args.study).files
        right = [keras.saving.load_model(store.artifacts.verified_file(args.study, files[name]), compile=False)
                 .predict(x, verbose=0).argmax(1) == y
                 for name in ("search_ensemble.keras", "model.keras")]
        only_refit, only_searched = int(np.sum(right[1] & ~right[0])), int(np.sum(right[0] & ~right[1]))
        z = (only_refit - only_searched) / max(1.0, np.sqrt(only_refit + only_searched))
        print(f"{results}: searched {100 * right[0].mean():.2f}%, refit {100 * right[1].mean():.2f}%, "
              f"right only when refit {only_refit}, only as searched {only_searched}, z {z:.2f}")


if __name__ == "__main__":
    main()
