"""Run the peers and `tune` one after another on the same machine and data, and compare:
wall time, best validation accuracy, and how long `tune` took to reach each peer's best.

    python bench/peers/compare.py --data ../shared/datasets/cifar10.tar.gz --out bench/results/peers.json
    python bench/peers/compare.py --data ... --train-samples 3000 --val-fraction 0.04 --trials 6 --epochs 3  # CPU
    python bench/peers/compare.py --data ... --only optuna,tune --keep peers/   # then --only kerastuner, then all

Every contender runs in a fresh process; its clock starts when the process is started (imports
and reading the data count; the JPEG copy is decoded into the shared cache once before any starts). The target (issue 6): `tune` reaches the peer's best validation
accuracy in at most a third of the peer's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTENDERS = {"kerastuner": "kerastuner_random.py", "optuna": "optuna_tpe.py", "tune": "tune_search.py"}


def run(script: str, args: list[str], out: Path) -> dict:
    env = {**os.environ, "PEER_T0": repr(time.time())}
    subprocess.run([sys.executable, str(HERE / script), *args, "--out", str(out)], env=env, check=True)
    return json.loads(out.read_text())


def time_to_reach(trials: list[dict], target: float) -> float | None:
    best = None
    for t in trials:
        if t["val_accuracy"] is not None:
            best = max(best or 0.0, t["val_accuracy"])
            if best >= target:
                return t["end_seconds"]
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path)
    parser.add_argument("--train-samples", type=int)
    parser.add_argument("--val-fraction", type=float, help="of the training pool (default: the space's 0.2)")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=1, help="tune's --jobs")
    parser.add_argument("--only", default=",".join(CONTENDERS))
    parser.add_argument("--keep", type=Path, help="folder for each contender's record; one already there is "
                        "read, not run again (to split a comparison over several calls of one machine)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    common = ["--trials", str(args.trials), "--epochs", str(args.epochs)]
    common += ["--data", str(args.data)] if args.data else []
    common += ["--train-samples", str(args.train_samples)] if args.train_samples else []
    common += ["--val-fraction", str(args.val_fraction)] if args.val_fraction else []
    # Decode the JPEG copy once, untimed, so that no contender pays it and none gains from running
    # after another that did (on the H100 the Optuna script read what tune had just decoded).
    from common import load_data

    load_data(args.data, args.train_samples, args.val_fraction)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="peers-"))
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.only.split(","):
        extra = ["--jobs", str(args.jobs)] if name == "tune" else []
        kept = folder / f"{name}.json"
        results[name] = json.loads(kept.read_text()) if kept.is_file() else run(CONTENDERS[name], common + extra, kept)
    print("| contender | trials | wall | best val acc | tune reaches it after | ratio to the peer's wall |")
    print("| --- | --- | --- | --- | --- | --- |")
    tune = results.get("tune")
    for name, r in results.items():
        reach = time_to_reach(tune["trials"], r["best_val_accuracy"]) if tune and name != "tune" else None
        ratio = f"{reach / r['wall_seconds']:.2f}" if reach else ("-" if name == "tune" else "not reached")
        print(f"| {r['tool']} | {len(r['trials'])} | {r['wall_seconds']:.0f} s | {100 * r['best_val_accuracy']:.2f}% | "
              f"{f'{reach:.0f} s' if reach else '-'} | {ratio} |")
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1))


if __name__ == "__main__":
    main()
