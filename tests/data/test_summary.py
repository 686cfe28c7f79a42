"""The data summary's warnings, from a split record alone: a table of the cases each warning is
for, and any class counts (hypothesis): each warning fires exactly when its condition holds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.data.summary import FEW_IMAGES, FEW_STEPS, IMBALANCE_WARNING, batch_sizes, class_rows, data_warnings


def _split(train, val, test, names=None):
    names = names or [f"c{i}" for i in range(len(train))]
    return {"class_names": names, "class_counts": {"train": train, "val": val, "test": test},
            "n_train": sum(train), "n_val": sum(val), "n_test": sum(test)}


SPACE = {"params": {"batch_size": 32}}
CASES = [  # (train, val, test, space, the warnings' starts)
    ([400, 400], [100, 100], [100, 100], SPACE, []),
    ([400, 400], [100, 5], [100, 100], SPACE, ["fewer than 10 validation images of c1 (5)"]),
    ([400, 400], [100, 100], [100, 0], SPACE, ["no test images of c1: the test figures say nothing about it"]),
    ([1200, 100], [300, 25], [300, 25], SPACE, ["classes imbalanced 12.0:1 in training (c0: 1200 images, c1: 100); consider"]),
    ([1200, 100], [300, 25], [300, 25], {**SPACE, "training": {"objective": "balanced_accuracy"}},
     ["classes imbalanced 12.0:1 in training (c0: 1200 images, c1: 100)"]),
    ([150, 150], [40, 40], [40, 40], SPACE, ["9 training steps an epoch at batch size 32"]),
    ([400, 400], [100, 100], [100, 100], {"params": {"batch_size": {"type": "categorical", "choices": [16, 512]}}},
     ["1 training step an epoch at batch size 512"]),
    ([2000, 2000], [100, 100], [100, 100], {"params": {}}, []),  # the default batch size, 128: 31 steps
]


@pytest.mark.parametrize("train, val, test, space, expected", CASES)
def test_each_warning_says_what_it_found(train, val, test, space, expected):
    warnings = data_warnings(_split(train, val, test), space)
    assert len(warnings) == len(expected), warnings
    for line, start in zip(warnings, expected):
        assert line.startswith(start), (line, start)


def test_an_older_study_without_counts_has_no_warnings_and_no_rows():
    old = {"source": "digits", "n_train": 10, "n_val": 5, "n_test": 5, "fingerprint": "f"}
    assert data_warnings(old, SPACE) == [] and class_rows(old) == []


def test_batch_sizes_of_a_stored_space():
    assert batch_sizes({"params": {"batch_size": {"type": "int", "low": 8, "high": 64}}}) == [8, 64]
    assert batch_sizes({"params": {"batch_size": 7}}) == [7]
    assert batch_sizes({}) == [128]


def _splits(n: int):
    counts = st.lists(st.integers(0, 5000), min_size=n, max_size=n)
    return st.tuples(counts, counts, counts)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.integers(2, 12).flatmap(_splits).filter(lambda c: sum(c[0]) > 0), st.sampled_from([1, 16, 128, 4096]))
def test_any_counts_give_the_warnings_their_conditions_call_for(parts, batch):
    train, val, test = parts
    warnings = data_warnings(_split(train, val, test), {"params": {"batch_size": batch}})
    present = [c for c in train if c > 0]
    assert any(w.startswith("classes imbalanced") for w in warnings) == (max(present) / min(present) > IMBALANCE_WARNING)
    assert any("an epoch at batch size" in w for w in warnings) == (sum(train) // min(batch, sum(train)) < FEW_STEPS)
    for part, label in ((val, "validation"), (test, "test")):
        few = any(0 < c < FEW_IMAGES for c in part)
        assert any(w.startswith(f"fewer than {FEW_IMAGES} {label}") for w in warnings) == few
        assert any(w.startswith(f"no {label} images") for w in warnings) == (0 in part)
    assert [r[0] for r in class_rows(_split(train, val, test))] == [f"c{i}" for i in range(len(train))]
