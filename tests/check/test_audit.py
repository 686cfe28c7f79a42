"""The data audit (check 1) on splits made to fail each of its checks, and a property: the copies
it counts are the copies planted, whatever the sizes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import SHARED
from tuner.check.audit import Splits, audit
from tuner.check.findings import Status

NAMES = ["a", "b", "c", "d"]


def _clean(seed: int = 0, n: tuple[int, int, int] = (400, 100, 100), channels: int = 1) -> Splits:
    """Random distinct images (no two equal: 8x8 random bytes), balanced labels."""
    rng = np.random.default_rng(seed)
    x = {s: rng.integers(0, 256, (k, 8, 8, channels), dtype=np.uint8) for s, k in zip(("train", "validation", "test"), n)}
    y = {s: np.arange(k) % len(NAMES) for s, k in zip(("train", "validation", "test"), n)}
    return Splits(x, y, NAMES)


def _copy_train_into_test(k: int):
    def plant(s: Splits) -> Splits:
        s.x["test"][:k] = s.x["train"][:k]
        return s
    return plant


def _repeat_in_train(k: int):
    def plant(s: Splits) -> Splits:
        s.x["train"][100:100 + k] = s.x["train"][:k]
        s.y["train"][100:100 + k] = s.y["train"][:k]
        return s
    return plant


def _relabel_copies(k: int):
    """k training images copied within train under another label."""
    def plant(s: Splits) -> Splits:
        s.x["train"][200:200 + k] = s.x["train"][:k]
        s.y["train"][200:200 + k] = (s.y["train"][:k] + 1) % len(NAMES)
        return s
    return plant


def _blank(s: Splits) -> Splits:
    s.x["validation"][3] = 17
    return s


def _drop_class_from_test(s: Splits) -> Splits:
    s.y["test"][s.y["test"] == 3] = 0
    return s


def _imbalance(s: Splits) -> Splits:
    s.y["train"][:] = np.where(np.arange(400) < 320, 0, np.arange(400) % 3 + 1)  # 320 : 26-27 each
    return s


def _brighter_test(s: Splits) -> Splits:
    s.x["test"] = (s.x["test"] // 2 + 120).astype(np.uint8)
    return s


def _dead_channel(s: Splits) -> Splits:
    for x in s.x.values():
        x[..., 1] = 0
    return s


def _skipped(s: Splits) -> Splits:
    return Splits(s.x, s.y, s.class_names, ("skipped 3 files in pets/ not readable as an image (e.g. 'x.jpg')",))


# case -> (how the clean splits are changed, the checks that must not pass and their status)
CASES = {
    "clean": (lambda s: s, {}),
    "one test image copies a training image": (_copy_train_into_test(1), {"data: copies across splits": Status.WARN}),
    "5% of the test split copies train": (_copy_train_into_test(5), {"data: copies across splits": Status.FAIL}),
    "2% of train repeats": (_repeat_in_train(8), {"data: repeats in train": Status.WARN}),
    "one image under two labels": (_relabel_copies(1), {"data: one image, two labels": Status.WARN,
                                                        "data: repeats in train": Status.PASS}),
    "2% of images under two labels": (_relabel_copies(12), {"data: one image, two labels": Status.FAIL,
                                                            "data: repeats in train": Status.WARN}),
    "a blank validation image": (_blank, {"data: blank images": Status.WARN}),
    "a class missing from test": (_drop_class_from_test, {"data: classes": Status.FAIL}),
    "imbalanced 12:1": (_imbalance, {"data: classes": Status.WARN}),
    "test images drawn brighter": (_brighter_test, {"data: pixels": Status.WARN}),
    "a constant channel": (lambda s: _dead_channel(_clean(channels=3)), {"data: pixels": Status.FAIL}),
    "unreadable files skipped": (_skipped, {"data: reading": Status.WARN}),
    "a constant channel and a brighter test split": (lambda s: _brighter_test(_dead_channel(_clean(channels=3))),
                                                     {"data: pixels": Status.FAIL}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_audit_check_fails_on_data_made_to_fail_it(case):
    change, expected = CASES[case]
    findings = {f.check: f for f in audit(change(_clean()))}
    assert len(findings) == 7
    for check, finding in findings.items():
        assert finding.status is expected.get(check, Status.PASS), (check, finding.evidence)
        assert re.search(r"\d", finding.evidence) or check == "data: reading", finding.evidence  # its figures


def test_blank_images_are_the_blank_check_s_not_copies_or_repeats():
    """300 blank images across the splits made "copies across splits" fail as a leak."""
    s = _clean()
    for name in ("train", "validation", "test"):
        s.x[name][:50] = 0
    findings = {f.check: f for f in audit(s)}
    assert findings["data: blank images"].status is Status.WARN
    for check in ("data: copies across splits", "data: repeats in train", "data: one image, two labels"):
        assert findings[check].status is Status.PASS, findings[check].evidence


def test_the_audit_says_how_many_copies_and_where():
    findings = {f.check: f for f in audit(_copy_train_into_test(5)(_clean()))}
    assert findings["data: copies across splits"].evidence.startswith(
        "0 of 100 validation images copy an earlier split's; 5 of 100 test images copy an earlier split's")


@settings(max_examples=40, deadline=None, derandomize=True)
@given(n_train=st.integers(1, 60), n_val=st.integers(0, 20), n_test=st.integers(1, 30), data=st.data())
def test_the_copies_counted_are_the_copies_planted(n_train, n_val, n_test, data):
    """Images drawn from a small palette (so accidental copies happen too); the count in the
    evidence equals a count made another way: rows compared with numpy."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    palette = rng.integers(0, 256, (data.draw(st.integers(1, 40)), 4, 4, 1), dtype=np.uint8)
    if data.draw(st.booleans()):
        palette[0] = palette[0, 0, 0]  # a blank image: the blank-images check's, not a copy or a repeat
    x = {s: palette[rng.integers(0, len(palette), k)] for s, k in (("train", n_train), ("validation", n_val), ("test", n_test))}
    y = {s: rng.integers(0, 2, len(a)) for s, a in x.items()}
    found = {f.check: f for f in audit(Splits(x, y, ["a", "b"]))}
    rows = {s: [a.tobytes() for a in arr if a.min() != a.max()] for s, arr in x.items()}
    n = {s: len(r) for s, r in rows.items()}
    copies_in_test = sum(r in set(rows["train"]) | set(rows["validation"]) for r in rows["test"])
    if n["train"] and n["test"]:
        assert f"{copies_in_test:,} of {n['test']:,} test images copy" in found["data: copies across splits"].evidence
    repeats = n["train"] - len(set(rows["train"]))
    assert found["data: repeats in train"].evidence.startswith(f"{repeats:,} of {n['train']:,} training images repeat")
    share = copies_in_test / max(n["test"], 1)
    if n["validation"]:
        share = max(share, sum(r in set(rows["train"]) for r in rows["validation"]) / n["validation"])
    status = found["data: copies across splits"].status
    assert status is (Status.FAIL if share > 0.01 else Status.WARN if share > 0 else Status.PASS)


def test_an_empty_class_fails_and_the_ratio_is_of_the_classes_there():
    s = _clean()
    s.y["train"][s.y["train"] >= 2] = 0  # classes 'c' and 'd' gone from train: 300 of 'a', 100 of 'b'
    finding = {f.check: f for f in audit(s)}["data: classes"]
    assert finding.status is Status.FAIL
    assert finding.evidence.startswith("no image of 'c' in train, 'd' in train; 4 classes;")
    assert "train ratio 3.00 (largest class over smallest)" in finding.evidence


@pytest.mark.slow
@pytest.mark.parametrize("space, data", [
    ("digits", None),
    pytest.param("mnist", "mnist.npz", marks=pytest.mark.skipif(
        not (SHARED / "mnist.npz").is_file(), reason="needs ../shared/datasets/mnist.npz")),
    pytest.param("fashion_mnist", None, marks=pytest.mark.skipif(
        not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="needs dataset-fashion-mnist (apt-get)")),
])
def test_the_built_in_datasets_pass_the_audit(space, data, tmp_path):
    """The real data of the built-in spaces, split as their studies split it (the training checks
    on them are timed in BENCHMARKS.md: minutes on a CPU)."""
    from tuner.check import load_splits
    from tuner.space.files import load_space

    _, splits = load_splits(load_space(space), SHARED / data if data else None, tmp_path)
    findings = audit(splits)
    assert [f.status for f in findings] == [Status.PASS] * 7, [f for f in findings if f.status is not Status.PASS]
