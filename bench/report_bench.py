"""How long `tune report` takes on a study of many trials (target: 10 s for 200 on a 2-core
CPU). The study is built from records: the digits space and its real split, N trials with
15-epoch histories, timings and parameters drawn from the space (augmentation fixed on, so the
image grid shows the best trial's augmentation) by Optuna's random sampler, and
validation predictions for the best one (for the image grids); then `tune report` runs as a
command, timed whole (start-up and imports included).

    python bench/report_bench.py --trials 200
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tuner.data import load_search_data  # noqa: E402
from tuner.search.engines.optuna_engine import suggest_params  # noqa: E402
from tuner.search.request import SearchRequest, study_meta  # noqa: E402
from tuner.space.files import load_space  # noqa: E402
from tuner.store import SearchStore, TrialRecord  # noqa: E402


def build(results: Path, n: int) -> None:
    import optuna

    space = load_space("digits").with_overrides(fixed={"augment": 1.0})  # every trial augments: the grid's worst case
    data, split = load_search_data(space, None, results / "cache")
    store = SearchStore(None, results, create=True)
    store.open_study("bench", study_meta(SearchRequest(space, "bench", n), "tpe", "median", split))
    store.artifacts.save_val_labels("bench", data.y_val)
    rng = np.random.default_rng(0)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for i in range(n):
        proposal = study.ask()
        params = space.complete(suggest_params(proposal, space))
        epochs = int(rng.integers(2, 16))
        curve = 1 - 0.9 * np.exp(-np.arange(1, epochs + 1) / rng.uniform(1, 6))
        history = {"loss": (1.5 * (1 - curve)).tolist(), "accuracy": (curve * 0.98).tolist(),
                   "val_loss": (1.6 * (1 - curve)).tolist(), "val_accuracy": (curve * 0.95).tolist(),
                   "lr": [params["learning_rate"]] * epochs}
        state = "pruned" if i % 4 == 3 else "complete"
        timings = {"build_seconds": 0.3, "train_seconds": epochs * 0.5, "predict_seconds": 0.2, "total_seconds": epochs * 0.6,
                   "first_epoch_seconds": 1.5, "epoch_seconds": 0.5}
        best = int(np.argmin(history["val_loss"]))
        record = TrialRecord(-1, state, history["val_accuracy"][best if state == "complete" else -1], params,
                             history=history, best_epoch=best if state == "complete" else None,
                             val_loss=history["val_loss"][best], seconds=epochs * 0.6 + 0.5, timings=timings, seed=i)
        number = store.trials.begin("bench", params, searched=(proposal.params, proposal.distributions))
        store.trials.finish("bench", replace(record, number=number))
        if state == "complete":
            probs = rng.dirichlet(np.ones(10), len(data.y_val)).astype("float32")
            store.artifacts.save_trial_files("bench", replace(record, number=number), probs[None])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    results = Path(tempfile.mkdtemp(prefix="report-bench-"))
    build(results, args.trials)
    timings = {}
    for label, extra in (("records only (--no-images)", ["--no-images"]), ("with the image grids", [])):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tuner", "report", "--results-dir", str(results), *extra], check=True,
                       stdout=subprocess.DEVNULL)
        timings[label] = round(time.perf_counter() - start, 1)
    print(json.dumps({"trials": args.trials, "seconds": timings, "date": time.strftime("%Y-%m-%d")}, indent=1))


if __name__ == "__main__":
    main()
