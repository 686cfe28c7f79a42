"""Backend choices made without importing Keras, and the XLA rule."""

from __future__ import annotations

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
