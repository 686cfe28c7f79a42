"""Training on the JAX and PyTorch backends (the suite itself runs on TensorFlow): each runs
in a fresh process, since Keras picks its backend once per process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test here trains real models

ROOT = Path(__file__).resolve().parents[2]

# Two trials of one architecture that differ in every number tune keeps out of the compiled
# step (learning rate, schedule, L2, label smoothing, cutout size), then a wider one. Prints one RESULT line.
PROBE = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
cache = Path(sys.argv[2])
from tuner.training.backend import configure
configure("float32", cache)
import keras
from tuner.data import load_search_data
from tuner.space.files import load_space
from tuner.training.fit import train_trial
from tuner.training.memory import free_memory

space = load_space(sys.argv[3])
data, _ = load_search_data(space, None, cache / "data")
base = {"depth": 1, "width": 8, "learning_rate": 0.01, "optimizer": "adam", "augment": 1.0, "cutout": 3}
trials = [base, {**base, "learning_rate": 0.02, "lr_schedule": "cosine", "l2": 1e-4, "label_smoothing": 0.1, "cutout": 0},
          {**base, "width": 16}]
def programs():
    return {p.name for p in (cache / "jax").glob("*")} if (cache / "jax").is_dir() else set()
out = []
for params in trials:
    before = programs()
    result = train_trial(space.complete(params), data, max_epochs=2, patience=2, seed=0)
    t = result.timings
    out.append({"val_accuracy": result.val_accuracy, "loss": result.history["loss"], "new_programs": sorted(programs() - before),
                "hits": t.get("cache_hits"), "misses": t.get("cache_misses"), "programs": t.get("programs")})
    free_memory()  # as the runner does between trials: JAX's in-memory caches are emptied
print("RESULT " + json.dumps({"backend": keras.backend.backend(), "trials": out}))
# The optimizer's own tests on this backend, in the same process (one start and import of each
# backend, not two).
import pytest
tests = Path(sys.argv[1]) / "tests" / "training"
pytest.main(["-q", "-p", "no:cacheprovider", str(tests / "test_fit.py"), str(tests / "test_vocabulary.py"), "-k",
             "state_numbers or plateau or predictor_matches or kernels_are_drawn or history_is_the_optimizers or "
             "quarter_turn or (every_family_outputs and shape0)"])
"""


_RESULTS: dict[str, dict] = {}
# test_fit's selection; every family at one size (the other two sizes test Keras's shapes, the same
# on every backend: 15 s more on JAX); the exact quarter turn and half zoom (the property over
# random angles compiles a program per shape: 23 s on JAX, and the same numpy check).
EXPECTED_PASSED = 22 + 5 + 1


def run_probe(backend: str, tmp_path: Path) -> dict:
    """The probe's result on `backend`, run once per test session."""
    pytest.importorskip(backend)
    if backend in _RESULTS:
        return _RESULTS[backend]
    from conftest import TINY_SPACE

    env = {**os.environ, "KERAS_BACKEND": backend}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(ROOT), str(tmp_path / "cache"), str(TINY_SPACE)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result["backend"] == backend
    result["pytest"] = proc.stdout.strip().splitlines()[-1]  # the summary line of the optimizer's tests
    result["output"] = proc.stdout[-3000:] + proc.stderr[-2000:]
    _RESULTS[backend] = result
    return result


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_trials_train_on_the_other_backends(backend, tmp_path):
    trials = run_probe(backend, tmp_path)["trials"]
    # Two epochs on 8x8 digits with heavy cutout: one seed's trial may still be near chance (0.1),
    # so each trial's training loss must fall and the best must be well above chance.
    assert all(t["loss"][1] < t["loss"][0] for t in trials), trials
    assert max(t["val_accuracy"] for t in trials) > 0.3, trials


def test_jax_trials_of_one_architecture_share_the_compiled_step(tmp_path):
    first, same_architecture, wider = run_probe("jax", tmp_path)["trials"]
    assert first["new_programs"]  # the probe does record programs
    assert same_architecture["new_programs"] == [], "other numbers (cutout off too) recompiled the step"
    assert wider["new_programs"]  # a new architecture does compile
    # the trial's own record says so too (what a search on a GPU reports per trial): every program
    # it needed, small ones included, came from the cache although the caches in memory were emptied
    assert first["misses"] > 0 and same_architecture["misses"] == 0
    assert same_architecture["hits"] == same_architecture["programs"] > 0
    assert wider["misses"] > 0


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_optimizer_matches_keras_on_the_other_backends(backend, tmp_path):
    """The state-held schedule, L1, L2, max norm and label smoothing equal Keras's own on this
    backend too, for every optimizer (torch hands out its own optimizer subclasses; JAX runs the
    step stateless), and every family, rotation and zoom run there: test_fit's and
    test_vocabulary's tests of them, run in the probe's process on that backend."""
    result = run_probe(backend, tmp_path)
    assert re.match(rf"{EXPECTED_PASSED} passed\b", result["pytest"]), result["output"]
