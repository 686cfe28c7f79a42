"""The same wall-clock budget for three contenders on Fashion-MNIST on the CPU, one after another:
a plain KerasTuner RandomSearch script and a plain Optuna script (TPE, median pruner,
`optimize(timeout=...)`) over a CNN of depth 1-3 and width 16/32/64 at batch 128, as their
documentation writes them, and the `tune search` command with its defaults on the built-in
fashion_mnist space. All see tune's split of the same data: 12,000 training and 3,000 validation
images of the training set (`max_train_samples`, `validation_fraction 0.05`), and the 10,000 test
images, read once at the end by each.

    .venv/bin/pip install tensorboard   # KerasTuner imports it in every trial on TensorFlow
    python bench/peers/fashion_budget.py --budget 420 --out bench/results/cpu-2026-12-02/fashion-budget.json

Each contender is a fresh process whose clock starts when it is started (imports and reading
the data count). KerasTuner has no time limit: as a user would, a callback stops the search once
the budget has passed (the running trial ends its epoch). Optuna's `timeout` lets the running
trial finish. `tune`'s whole command is timed: checks, search and the ensemble's test evaluation.
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

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OVERRIDES = {"max_train_samples": 12000, "validation_fraction": 0.05}
EPOCHS, PATIENCE, BATCH = 15, 3, 128  # the fashion_mnist space's epochs and patience, for the peers too


def space_file(folder: Path) -> Path:
    """The built-in fashion_mnist space with the comparison's data sizes."""
    import yaml

    raw = yaml.safe_load((ROOT / "search_spaces" / "fashion_mnist.yaml").read_text())
    raw["name"] = "fashion_budget"
    raw["training"].update(OVERRIDES)
    path = folder / "fashion_budget.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def splits(space_path: Path):
    from tuner import config
    from tuner.data import load_search_data, load_test_data
    from tuner.space.files import load_space

    space = load_space(str(space_path))
    data, _ = load_search_data(space, None, config.cache_dir())
    return data, load_test_data(space, None, config.cache_dir())


class Clock:
    def __init__(self, budget: float):
        self.t0, self.budget, self.trials = float(os.environ["PEER_T0"]), budget, []

    def now(self) -> float:
        return time.time() - self.t0

    def done(self, val_accuracy: float | None) -> None:
        self.trials.append({"end_seconds": self.now(), "val_accuracy": val_accuracy})
        print(f"trial {len(self.trials)} val_accuracy={val_accuracy} at {self.now():.1f} s", flush=True)


def _cnn(depth: int, width: int, input_shape):
    from peer_model import cnn

    return cnn(depth=depth, width=width, dropout=0.0, l2=1e-6, batch_norm=False, learning_rate=1e-3,
               input_shape=input_shape)


def run_optuna(space_path: Path, budget: float) -> dict:
    import keras
    import optuna

    data, (x_test, y_test) = splits(space_path)
    clock, best = Clock(budget), {"value": -1.0, "model": None}

    def objective(trial: optuna.Trial) -> float:
        keras.backend.clear_session()
        model = _cnn(trial.suggest_int("depth", 1, 3), trial.suggest_categorical("width", [16, 32, 64]), data.input_shape)

        class Pruning(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                trial.report(float(logs["val_accuracy"]), step=epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()

        history = model.fit(data.x_train, data.y_train, batch_size=BATCH, epochs=EPOCHS, verbose=2,
                            validation_data=(data.x_val, data.y_val),
                            callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=PATIENCE), Pruning()])
        value = max(history.history["val_accuracy"])
        if value > best["value"]:
            best.update(value=value, model=model)
        return value

    def record(study, trial) -> None:
        values = list(trial.intermediate_values.values())
        clock.done(trial.value if trial.value is not None else (max(values) if values else None))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.MedianPruner())
    study.optimize(objective, timeout=budget, callbacks=[record])
    test = float(best["model"].evaluate(x_test, y_test, verbose=0)[1]) if best["model"] is not None else None
    return {"tool": "optuna TPE + median pruner (plain script)", "trials": clock.trials, "test_accuracy": test,
            "wall_seconds": clock.now()}


def run_kerastuner(space_path: Path, budget: float) -> dict:
    import keras
    import keras_tuner

    data, (x_test, y_test) = splits(space_path)
    clock = Clock(budget)

    def build(hp):
        return _cnn(hp.Int("depth", 1, 3), hp.Choice("width", [16, 32, 64]), data.input_shape)

    tuner = keras_tuner.RandomSearch(build, objective="val_accuracy", max_trials=1000, seed=0,
                                     directory=tempfile.mkdtemp(prefix="kt-fashion-"), project_name="fashion")

    class Budget(keras.callbacks.Callback):
        """The user's time limit: past the budget, this trial ends its epoch and no other starts."""

        def on_train_begin(self, logs=None):
            self.best = None

        def on_epoch_end(self, epoch, logs=None):
            self.best = max(self.best or 0.0, float(logs["val_accuracy"]))
            if clock.now() >= budget:
                self.model.stop_training = True
                tuner.oracle.max_trials = len(tuner.oracle.trials)

        def on_train_end(self, logs=None):
            clock.done(self.best)

    tuner.search(data.x_train, data.y_train, epochs=EPOCHS, batch_size=BATCH, validation_data=(data.x_val, data.y_val),
                 verbose=2, callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=PATIENCE), Budget()])
    model = tuner.get_best_models(1)[0]
    return {"tool": "keras-tuner RandomSearch (plain script)", "trials": clock.trials,
            "test_accuracy": float(model.evaluate(x_test, y_test, verbose=0)[1]), "wall_seconds": clock.now()}


def run_tune(space_path: Path, budget: float) -> dict:
    """The command itself, then its study read back: each finished trial's end and value, and the
    evaluation's test figures."""
    from tuner.store import SearchStore

    t0 = float(os.environ["PEER_T0"])
    results = Path(tempfile.mkdtemp(prefix="tune-fashion-"))
    command = [str(ROOT / ".venv" / "bin" / "tune"), "search", "--space", str(space_path), "--trials", "1000",
               "--timeout", f"{budget:g}", "--results-dir", str(results)]
    subprocess.run(command, check=True, stdout=sys.stderr)  # the child's stdout carries its result only
    wall = time.time() - t0
    store = SearchStore(None, results)
    trials = sorted((t for t in store.trials.all("fashion_budget") if t.finished), key=lambda t: t.started)
    ends = [{"end_seconds": t.started.timestamp() + (t.seconds or 0.0) - t0, "val_accuracy": t.val_accuracy,
             "state": t.state.value, "reason": t.reason, "epochs": t.epochs} for t in trials]
    evaluation = store.evaluations.latest("fashion_budget")
    return {"tool": "tune search (defaults)", "trials": sorted(ends, key=lambda r: r["end_seconds"]), "wall_seconds": wall,
            "test_accuracy": evaluation.test["ensemble"]["accuracy"], "best_trial_test_accuracy": evaluation.test["best"]["accuracy"],
            "ensemble_members": list(evaluation.selection.members), "results": str(results)}


CONTENDERS = {"kerastuner": run_kerastuner, "optuna": run_optuna, "tune": run_tune}


def summary(r: dict) -> dict:
    values = [t["val_accuracy"] for t in r["trials"] if t["val_accuracy"] is not None]
    first = next((t["end_seconds"] for t in r["trials"] if t["val_accuracy"] is not None), None)
    return {"tool": r["tool"], "wall_seconds": r["wall_seconds"], "finished": len(r["trials"]), "first_result_seconds": first,
            "best_val_accuracy": max(values, default=None), "test_accuracy": r["test_accuracy"]}


def reached_after(trials: list[dict], target: float) -> float | None:
    best = -1.0
    for t in sorted(trials, key=lambda t: t["end_seconds"]):
        best = max(best, t["val_accuracy"] if t["val_accuracy"] is not None else -1.0)
        if best >= target:
            return t["end_seconds"]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=420.0)
    parser.add_argument("--only", default=",".join(CONTENDERS))
    parser.add_argument("--child")
    parser.add_argument("--space", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(Path(__file__).parent))
        print("RESULT " + json.dumps(CONTENDERS[args.child](args.space, args.budget)), flush=True)
        return
    folder = Path(tempfile.mkdtemp(prefix="fashion-budget-"))
    space = space_file(folder)
    splits(space)  # decode once, untimed: no contender pays it
    results = {}
    for name in args.only.split(","):
        env = {**os.environ, "PEER_T0": repr(time.time())}
        out = subprocess.run([sys.executable, __file__, "--child", name, "--space", str(space), "--budget", str(args.budget)],
                             env=env, stdout=subprocess.PIPE, text=True, check=True).stdout
        results[name] = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
        print(json.dumps(summary(results[name])), flush=True)
    tune = results.get("tune")
    if tune is not None:
        for name, r in results.items():
            best = summary(r)["best_val_accuracy"]
            if name != "tune" and best is not None:
                r["tune_reaches_best_after_seconds"] = reached_after(tune["trials"], best)
                print(f"tune reaches {r['tool']}'s best {best:.4f} after {r['tune_reaches_best_after_seconds']} s "
                      f"(its wall {r['wall_seconds']:.0f} s)", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "budget": args.budget,
                                        "summary": {k: summary(v) for k, v in results.items()}, "results": results}, indent=1))


if __name__ == "__main__":
    main()
