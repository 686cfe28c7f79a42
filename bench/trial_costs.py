"""Where each trial of a stored study spent its time, and which worker ran it: a table for
reading a search after the fact (per worker, does a trial hit what another worker compiled?).

    python bench/trial_costs.py results/tune.db cifar10
    python bench/trial_costs.py bench/results/h100-2026-11-23/run2-tune.db cifar10 --json costs.json

Reads the study's database with Optuna (any storage URL works, or a SQLite file's path). Times in
seconds; `compile` is the first epoch's excess over the steady epoch; hits/misses are JAX's
persistent-cache counts for the trial's programs (recorded since session 4; pruned trials since
session 5).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import optuna


def rows(storage: str, study: str) -> list[dict]:
    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    start = min((t.datetime_start for t in trials if t.datetime_start), default=None)
    out = []
    for t in trials:
        attrs, timings = t.user_attrs, t.user_attrs.get("timings") or {}
        first, epoch = timings.get("first_epoch_seconds"), timings.get("epoch_seconds")
        out.append({
            "trial": t.number, "state": t.state.name.lower(), "worker": (attrs.get("worker") or {}).get("pid"),
            "started": round((t.datetime_start - start).total_seconds(), 1) if t.datetime_start and start else None,
            "width": (attrs.get("params") or {}).get("width"), "epochs": len((attrs.get("history") or {}).get("val_loss", [])),
            "seconds": attrs.get("seconds"), "build": timings.get("build_seconds"),
            "compile": first - epoch if first is not None and epoch is not None else None, "epoch": epoch,
            "validation": timings.get("predict_seconds"), "programs": timings.get("programs"),
            "hits": timings.get("cache_hits"), "misses": timings.get("cache_misses"),
        })
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storage", help="a storage URL, or a SQLite file's path")
    parser.add_argument("study")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    storage = args.storage if "://" in args.storage else f"sqlite:///{Path(args.storage).resolve()}"
    table = rows(storage, args.study)
    columns = ["trial", "state", "worker", "started", "width", "epochs", "seconds", "build", "compile", "epoch",
               "validation", "programs", "hits", "misses"]
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    for row in table:
        cells = [f"{v:.2f}" if isinstance(v, float) else ("-" if v is None else str(v)) for v in (row[c] for c in columns)]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
