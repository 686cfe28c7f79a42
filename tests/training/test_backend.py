"""Backend choices made without importing Keras, the XLA rule, and the compilation cache."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuner.keras_backend import selected_backend

ROOT = Path(__file__).resolve().parents[2]


def test_selected_backend_reads_env_then_keras_json_then_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert selected_backend() == "tensorflow"  # no keras.json
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    assert selected_backend() == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert selected_backend() == "torch"
    monkeypatch.delenv("KERAS_BACKEND")
    (tmp_path / "keras.json").write_text("{not json")
    assert selected_backend() == "tensorflow"


@pytest.mark.slow
def test_no_xla_for_tensorflow_on_a_cpu(digits_data, tiny_space):
    """What the trained model was compiled with (Keras's own attribute), not what the rule says."""
    import keras
    import pytest

    from tuner.training.backend import accelerator
    from tuner.training.fit import train_trial

    if accelerator() != "cpu" or keras.backend.backend() != "tensorflow":
        pytest.skip("the rule under test is TensorFlow's on a CPU")
    data, _ = digits_data
    result = train_trial(tiny_space.complete({"depth": 1, "width": 4}), data, max_epochs=1, patience=1, seed=0)
    assert result.model.jit_compile is False


def test_the_compilation_cache_folder_is_bounded_least_recently_used_first(tmp_path):
    from tuner.training.compile_cache import bound_folder

    for i, name in enumerate(["old", "middle", "new"]):
        path = tmp_path / name
        path.write_bytes(b"x" * 100)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))  # access and modification times, oldest first
    bound_folder(tmp_path, 250)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["middle", "new"]
    bound_folder(tmp_path, 250)  # already under the cap: nothing more goes
    assert len(list(tmp_path.iterdir())) == 2
    bound_folder(tmp_path / "missing", 0)  # no cache yet: nothing to do


def test_default_jobs_are_two_on_two_cores_or_more_with_optuna(monkeypatch):
    import tuner.search.pool.jobs as jobs_module

    big_cpu, big_gpu = {"macs": 1.83e7, "accelerator": 0.0}, {"macs": 1.83e7, "accelerator": 1.0}
    small_cpu = {"macs": 1.5e6, "accelerator": 0.0}
    for cores, engine, reference, jobs in ((1, "optuna", None, 1), (2, "optuna", None, 2), (16, "optuna", None, 2),
                                           (16, "keras-tuner", None, 1), (2, "optuna", small_cpu, 2),
                                           (2, "optuna", big_cpu, 1), (2, "optuna", big_gpu, 2), (1, "optuna", small_cpu, 1),
                                           (2, "optuna", {"macs": 1.83e7}, 2)):  # device unknown: as before
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cores: set(range(n)), raising=False)
        assert jobs_module.default_jobs(engine, reference) == jobs, (cores, engine, reference)
        # One trial: one worker, with every core (a second only took a core from the lone trial).
        assert jobs_module.default_jobs(engine, reference, trials=1) == 1
        assert jobs_module.default_jobs(engine, reference, trials=2) == jobs


def test_the_cost_checks_figures_are_found_among_a_studys_checks():
    from tuner.search.pool.jobs import reference_cost

    figures = {"macs": 2.0e6, "weights": 10.0, "accelerator": 0.0}
    assert reference_cost([{"check": "data: classes"}, {"check": "cost of a trial", "figures": figures}]) == figures
    assert reference_cost([{"check": "cost of a trial", "figures": {}}]) is None and reference_cost([]) is None


CACHE_PROBE = r"""
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import jax, jax.numpy as jnp
from tuner.training.compile_cache import explain_cache  # what configure() calls with $TUNE_EXPLAIN_CACHE set (it imports Keras: slow)
jax.config.update("jax_compilation_cache_dir", sys.argv[2])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
explain_cache()
jax.jit(lambda x: jnp.sin(x) @ x.T + 1)(jnp.ones((16, 16))).block_until_ready()
"""


@pytest.mark.slow
def test_cache_misses_are_explained_by_the_part_of_the_key_that_differs(tmp_path):
    """With TUNE_EXPLAIN_CACHE each process logs its cache lookups; bench/cache_keys.py then names
    what made one process miss another's program (here: other XLA flags)."""
    pytest.importorskip("jax")
    logs = []
    for name, flags in (("first", ""), ("same", ""), ("other_flags", "--xla_cpu_enable_fast_math=false")):
        env = {**os.environ, "XLA_FLAGS": flags}
        proc = subprocess.run([sys.executable, "-c", CACHE_PROBE, str(ROOT), str(tmp_path / "cache")],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        logs.append(tmp_path / f"{name}.log")
        logs[-1].write_text(proc.stderr)
    spec = importlib.util.spec_from_file_location("cache_keys", ROOT / "bench" / "cache_keys.py")
    cache_keys = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cache_keys)
    found = cache_keys.lookups(logs)
    by_process = [[r["hit"] for r in found if r["pid"] == pid] for pid in dict.fromkeys(r["pid"] for r in found)]
    assert [all(h) for h in by_process] == [False, True, False]  # the second process hit everything
    assert cache_keys.explain(found) == {"new": len(by_process[0]), "same program, differs in XLA flags": len(by_process[2])}
