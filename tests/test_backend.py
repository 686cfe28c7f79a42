"""Backend choices made without importing Keras, and the XLA rule."""

from __future__ import annotations

import os
import json

from tuner.backend import selected_backend


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


def test_no_xla_for_tensorflow_on_a_cpu():
    import keras
    import pytest

    from tuner.backend import accelerator, jit_compile

    if accelerator() != "cpu":
        pytest.skip("the rule under test is the CPU's")
    assert jit_compile() == (False if keras.backend.backend() == "tensorflow" else "auto")


def test_the_compilation_cache_folder_is_bounded_least_recently_used_first(tmp_path):
    from tuner.backend import bound_folder

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
    import tuner.backend as backend

    for cores, engine, jobs in ((1, "optuna", 1), (2, "optuna", 2), (16, "optuna", 2), (16, "keras-tuner", 1)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cores: set(range(n)), raising=False)
        assert backend.default_jobs(engine) == jobs, (cores, engine)
