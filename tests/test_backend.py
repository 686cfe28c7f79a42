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


def test_default_jobs_are_two_with_a_visible_gpu_and_one_without(monkeypatch):
    import tuner.backend as backend

    real_listdir = os.listdir

    def driver_lists(n: int | None):
        def listdir(path):
            if str(path) == "/proc/driver/nvidia/gpus":
                if n is None:
                    raise FileNotFoundError(path)
                return [f"0000:{i:02x}:00.0" for i in range(n)]
            return real_listdir(path)
        monkeypatch.setattr(os, "listdir", listdir)

    monkeypatch.setattr(backend, "_nvidia_smi_count", lambda: 0)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    driver_lists(None)
    assert backend.visible_gpus() == 0 and backend.default_jobs("optuna") == 1
    driver_lists(2)
    assert backend.visible_gpus() == 2 and backend.default_jobs("optuna") == 2
    assert backend.default_jobs("keras-tuner") == 1  # one process per study
    for listed, seen in (("1", 1), ("", 0), ("-1", 0), ("0,1,2,3", 2), ("0,-1,1", 1)):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", listed)
        assert backend.visible_gpus() == seen, listed
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert backend.default_jobs("optuna") == 1
