"""What `tune predict` reads of an export folder: any labels.json and input.json gives the
export's classes and input size, or one line."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuner.ensemble.predict import MAX_SIDE, read_export
from tuner.errors import UserError

JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
SPEC = st.fixed_dictionaries({"height": JSON | st.integers(0, 2 * MAX_SIDE), "width": JSON | st.integers(0, 40),
                              "channels": JSON | st.sampled_from([1, 2, 3])})
LABELS = JSON | st.lists(st.text(max_size=6) | JSON, min_size=0, max_size=5).map(lambda v: {str(i): x for i, x in enumerate(v)})


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=SPEC | JSON, labels=LABELS)
def test_any_export_files_give_the_classes_and_input_or_one_line(tmp_path_factory, spec, labels):
    folder = tmp_path_factory.mktemp("export")
    (folder / "model.keras").write_bytes(b"not read here")
    (folder / "input.json").write_text(json.dumps(spec))
    (folder / "labels.json").write_text(json.dumps(labels))
    try:
        exported = read_export(folder)
    except UserError as e:
        assert "\n" not in str(e)
        return
    height, width, channels = exported.shape
    assert all(type(n) is int and 1 <= n <= MAX_SIDE for n in exported.shape) and channels in (1, 3)
    assert len(exported.labels) >= 2 and all(isinstance(name, str) for name in exported.labels)
    assert exported.labels == [labels[str(i)] for i in range(len(labels))]
