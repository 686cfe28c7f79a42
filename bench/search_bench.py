"""Benchmark a whole search: trials per hour, time per trial outside the training steps,
accelerator busy fraction, best validation accuracy and (optionally) the ensemble's test figures.

    python bench/search_bench.py --space digits --trials 20
    KERAS_BACKEND=jax python bench/search_bench.py --space cifar10 --data cifar10.tar.gz --trials 20 --ensemble
    KERAS_BACKEND=jax python bench/search_bench.py --space cifar10 --data cifar10.tar.gz --trials 20 --jobs 2

Per trial, "steady training" is epochs x the median epoch time (epochs after the first); the
first epoch's excess over that median is compilation; everything else in the trial's wall time
(build, validation predictions, artifact writes, the sampler, memory release) is "outside".
With --jobs N, trials overlap: "busy" then sums their training time and can pass 100%, since
each trial's epochs are timed while others share the device; compare trials/hour instead.
Prints a JSON record (also written with --out) and one Markdown table row for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tuner.ui.board import trial_times  # noqa: E402
from tuner.search.observer import QuietObserver  # noqa: E402


class Recorder(QuietObserver):
    """A search observer that keeps every finished trial's record."""

    def __init__(self) -> None:
        self.records: list = []
        self.setup: dict = {}

    def search_started(self, setup: dict) -> None:
        self.setup = setup
        print(f"# {setup}", flush=True)

    def trial_finished(self, record) -> None:
        self.records.append(record)
        t = record.timings
        print(f"trial {record.number} {record.state} val_acc={record.value} epochs={record.epochs} "
              f"wall={record.seconds:.1f}s first_epoch={t.get('first_epoch_seconds', 0):.1f}s "
              f"epoch={t.get('epoch_seconds', 0):.2f}s predict={t.get('predict_seconds', 0):.1f}s "
              f"programs={t.get('programs', '-')} cache hits/misses={t.get('cache_hits', '-')}/{t.get('cache_misses', '-')}",
              flush=True)

    def note(self, message: str) -> None:
        print(f"note: {message}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="digits")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--engine", default="optuna")
    parser.add_argument("--sampler")
    parser.add_argument("--pruner")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--timeout", type=float)
    parser.add_argument("--seed", type=int, default=0, help="sampler seed")
    parser.add_argument("--space-seed", type=int, help="override training.seed (split and initialisation)")
    parser.add_argument("--train-samples", type=int, help="override training.max_train_samples (a stratified subset)")
    parser.add_argument("--val-fraction", type=float, help="override training.validation_fraction")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (tune search --jobs)")
    parser.add_argument("--isolate", action="store_true", help="train in worker processes (the CLI's default on TF)")
    parser.add_argument("--results-dir", type=Path)
    parser.add_argument("--ensemble", action="store_true", help="also select and evaluate the ensemble")
    parser.add_argument("--refit", action="store_true", help="with --ensemble: refit its members on train + "
                        "validation and score that ensemble in the same test pass")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from tuner.search.request import SearchRequest
    from tuner.search.run import run_search
    from tuner.space.files import load_space
    from tuner.space.reading import parse_value
    from tuner.store import SearchStore

    space = load_space(args.space)
    fixed = {k: parse_value(v) for k, v in (s.split("=", 1) for s in args.sets)}
    if args.epochs or fixed:
        space = space.with_overrides(epochs=args.epochs, fixed=fixed)
    if args.space_seed is not None or args.train_samples or args.val_fraction:
        from tuner.space.schema import parse_space

        data = space.to_dict()
        if args.space_seed is not None:
            data["training"]["seed"] = args.space_seed
        if args.train_samples:
            data["training"]["max_train_samples"] = args.train_samples
        if args.val_fraction:
            data["training"]["validation_fraction"] = args.val_fraction
        space = parse_space(data, space.source)
    results = args.results_dir or Path(tempfile.mkdtemp(prefix="tune-bench-"))
    from tuner import config
    cache = config.cache_dir()
    store = SearchStore(None, results, create=True)
    recorder = Recorder()
    request = SearchRequest(space, "bench", args.trials, args.engine, args.sampler, args.pruner, args.timeout,
                            args.data, cache, args.seed, precision=args.precision, jobs=args.jobs,
                            isolate=args.isolate)
    start = time.perf_counter()
    run_search(store, request, recorder)
    wall = time.perf_counter() - start
    done = [r for r in recorder.records if r.state == "complete" and r.timings]
    parts = [trial_times(r) for r in done]
    steady = sum(p.training for p in parts)
    best = max((r.value for r in done), default=None)
    fixed = [r.seconds - r.epochs * r.timings["epoch_seconds"] for r in recorder.records
             if r.state in ("complete", "pruned") and "epoch_seconds" in r.timings and r.seconds]
    report = {
        "space": args.space, "engine": args.engine, "sampler": args.sampler, "trials": len(recorder.records),
        "complete": len(done), "setup": recorder.setup, "python": platform.python_version(),
        "wall_seconds": wall, "trials_per_hour": 3600 * len(recorder.records) / wall,
        "median_trial_seconds": statistics.median(p.wall for p in parts) if parts else None,
        "median_outside_seconds": statistics.median(p.outside for p in parts) if parts else None,
        "median_compile_seconds": statistics.median(p.compile for p in parts) if parts else None,
        "median_validation_seconds": statistics.median(p.validation for p in parts) if parts else None,
        "median_epoch_seconds": statistics.median(r.timings["epoch_seconds"] for r in done) if done else None,
        # Pruned trials pay build, compile and validation too: the fixed cost over every trial
        # that trained (wall minus its epochs at the steady epoch time).
        "median_fixed_seconds_all": statistics.median(fixed) if fixed else None,
        "busy_fraction": steady / wall, "best_val_accuracy": best,
    }
    if args.ensemble and done:
        from tuner.ensemble.evaluate import run_ensemble

        start = time.perf_counter()
        record = run_ensemble(store, "bench", 10, 20, "log_loss", args.data, cache, refit=args.refit, progress=print)
        report["ensemble_seconds"] = time.perf_counter() - start
        report["test_ensemble"] = record.test["ensemble"]["accuracy"]
        report["test_best"] = record.test["best"]["accuracy"]
        report["test_loss"] = {k: v["loss"] for k, v in record.test.items()}
        report["ensemble_members"] = record.selection.members
        if args.refit and record.refit:
            report["test_refit"] = record.test["refit"]["accuracy"]
            report["refit_seconds"] = sum(record.refit["seconds"].values())
            report["refit_failed"] = record.refit["failed"]
    text = json.dumps(report, indent=1, default=str)
    print(text)
    if args.out:
        args.out.write_text(text)
    s = recorder.setup
    print(f"| {args.space} | {args.engine}/{args.sampler or 'default'} | {s.get('backend')} {s.get('device')} "
          f"{s.get('precision')} | {len(recorder.records)} | {wall:.0f} s | {report['trials_per_hour']:.0f} | "
          f"{report['median_outside_seconds'] or 0:.1f} s | {report['median_compile_seconds'] or 0:.1f} s | "
          f"{100 * report['busy_fraction']:.0f}% | {100 * (best or 0):.2f}% |")


if __name__ == "__main__":
    main()
