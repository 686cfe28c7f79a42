"""Where each trial of a stored study spent its time, and which worker ran it: a table for
reading a search after the fact (per worker, does a trial hit what another worker compiled?).

    python bench/trial_costs.py results/tune.db cifar10
    python bench/trial_costs.py bench/results/h100-2026-11-23/run2-tune.db cifar10 --json costs.json

Reads the study's database with Optuna (any storage URL works, or a SQLite file's path). Times in
seconds; `compile` is the first epoch's excess over the steady epoch; hits/misses are JAX's
persistent-cache counts for the trial's programs (studies made before these were recorded have
none; pruned trials before they kept timings have none either); `fixed` is the trial's wall time
less its epochs at the steady epoch time (build, compiles, validation, artifacts), whose median
over all trials is a search's fixed cost per trial.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import optuna


def rows(storage: str, study: str) -> list[dict]:
    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    start = min((t.datetime_start for t in trials if t.datetime_start), default=None)
    out = []
    for t in trials:
        attrs, timings = t.user_attrs, t.user_attrs.get("timings") or {}
        first, epoch = timings.get("first_epoch_seconds"), timings.get("epoch_seconds")
        epochs = len((attrs.get("history") or {}).get("val_loss", []))
        out.append({
            "trial": t.number, "state": t.state.name.lower(), "worker": (attrs.get("worker") or {}).get("pid"),
            "started": round((t.datetime_start - start).total_seconds(), 1) if t.datetime_start and start else None,
            "width": (attrs.get("params") or {}).get("width"), "epochs": epochs,
            "seconds": attrs.get("seconds"), "build": timings.get("build_seconds"),
            "compile": first - epoch if first is not None and epoch is not None else None, "epoch": epoch,
            "validation": timings.get("predict_seconds"), "programs": timings.get("programs"),
            "hits": timings.get("cache_hits"), "misses": timings.get("cache_misses"),
            # search_bench's definition: the trial's wall time less its epochs at the steady epoch time
            "fixed": attrs["seconds"] - epochs * epoch if attrs.get("seconds") and epoch is not None else None,
        })
    return out


def summary(table: list[dict]) -> dict:
    """The search's fixed cost per trial (median over every trial that trained) and the cache's counts."""
    fixed = [r["fixed"] for r in table if r["fixed"] is not None]
    complete = [r["fixed"] for r in table if r["fixed"] is not None and r["state"] == "complete"]
    return {"trials": len(table), "median_fixed_seconds_all": statistics.median(fixed) if fixed else None,
            "median_fixed_seconds_complete": statistics.median(complete) if complete else None,
            "cache_hits": sum(r["hits"] or 0 for r in table), "cache_misses": sum(r["misses"] or 0 for r in table)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storage", help="a storage URL, or a SQLite file's path")
    parser.add_argument("study")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    storage = args.storage if "://" in args.storage else f"sqlite:///{Path(args.storage).resolve()}"
    table = rows(storage, args.study)
    columns = ["trial", "state", "worker", "started", "width", "epochs", "seconds", "build", "compile", "epoch",
               "validation", "fixed", "programs", "hits", "misses"]
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    for row in table:
        cells = [f"{v:.2f}" if isinstance(v, float) else ("-" if v is None else str(v)) for v in (row[c] for c in columns)]
        print("| " + " | ".join(cells) + " |")
    totals = summary(table)
    print(json.dumps(totals))
    if args.json:
        args.json.write_text(json.dumps({"summary": totals, "trials": table}, indent=1))


if __name__ == "__main__":
    main()
