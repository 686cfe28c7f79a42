"""Arrays in, uint8 images and int64 labels out, or one line: each rule at its boundary."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tuner.data.sources import RawDataset
from tuner.data.validate import images, labels, validated
from tuner.errors import UserError

RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 256, (6, 4, 4), dtype=np.uint8)

REFUSED_IMAGES = [
    ("NaN", np.where(PIXELS > 200, np.nan, PIXELS / 255.0), "x: 1"),  # counted below
    ("infinite", np.full((2, 4, 4), np.inf), "x: 32 pixels are NaN or infinite"),
    ("float32 NaN", np.full((2, 4, 4), np.nan, np.float32), "x: 32 pixels are NaN or infinite"),
    ("negative float", (PIXELS - 127.5) / 64, "negative values (normalized or standardized images)"),
    ("negative int", np.where(PIXELS > 127, 254, -1).astype(np.int16), "x: pixels range over [-1, 254]"),
    ("256 reached", np.full((2, 4, 4), 256, np.uint16), "pixels reach 256 (dtype uint16)"),
    ("complex", PIXELS.astype(np.complex64), "pixels must be numbers (dtype complex64)"),
    ("strings", np.full((2, 4, 4), "a"), "pixels must be numbers"),
    ("no images", np.zeros((0, 4, 4), np.uint8), "x: no images"),
    ("no pixels", np.zeros((2, 4, 0), np.uint8), "x: images of shape (4, 0, 1) hold no pixels"),
    ("channels first", np.zeros((2, 3, 4, 4), np.uint8), "x: images must be (n, height, width[, 1 or 3]); got shape "
     "(2, 3, 4, 4); channels first? (n, c, h, w) needs moving to (n, h, w, c)"),
    ("one channel first", np.zeros((2, 1, 4, 5), np.uint8), "got shape (2, 1, 4, 5); channels first?"),
    ("two channels", np.zeros((2, 4, 4, 2), np.uint8), "x: images must be (n, height, width[, 1 or 3]); got shape (2, 4, 4, 2)"),
    ("two channels first", np.zeros((2, 2, 4, 4), np.uint8), "x: images must be (n, height, width[, 1 or 3]); got shape (2, 2, 4, 4)"),
    ("a vector each", np.zeros((2, 16), np.uint8), "x: images must be (n, height, width[, 1 or 3]); got shape (2, 16)"),
]
EXACT = {"channels first", "two channels", "two channels first", "a vector each", "no pixels"}


@pytest.mark.parametrize("case, x, expected", REFUSED_IMAGES, ids=[c[0] for c in REFUSED_IMAGES])
def test_images_that_cannot_be_read_one_way_are_refused_in_one_line(case, x, expected):
    if case == "NaN":
        expected = f"x: {int(np.count_nonzero(PIXELS > 200))} pixels are NaN or infinite"
    with pytest.raises(UserError) as e:
        images(x, "x", [])
    assert (str(e.value) == expected) if case in EXACT else (expected in str(e.value) and "\n" not in str(e.value))


CONVERTED = [  # (case, pixels in, pixels out as 8-bit, the note or None)
    ("uint8", PIXELS, PIXELS, None),
    ("uint8 of 0 to 2", PIXELS % 3, PIXELS % 3, None),
    ("uint8 of 0 and 1", (PIXELS > 127).astype(np.uint8), (PIXELS > 127).astype(np.uint8) * 255, "of 0 and 1 only"),
    ("bool", PIXELS > 127, (PIXELS > 127).astype(np.uint8) * 255, "boolean pixels scaled to 0 and 255"),
    ("int of 0 and 1", (PIXELS > 127).astype(np.int32), (PIXELS > 127).astype(np.uint8) * 255,
     "int32 pixels of 0 and 1 only, scaled to 0 and 255"),
    ("int of 0 to 2", (PIXELS % 3).astype(np.int32), PIXELS % 3, "int32 pixels read as 8-bit values 0-255"),
    ("uint16 up to 255", np.full((2, 4, 4), 255, np.uint16), np.full((2, 4, 4), 255, np.uint8), "read as 8-bit"),
    ("float in [0, 1]", PIXELS / 255.0, PIXELS, "float64 pixels in [0, 1] scaled to 0-255"),
    ("float32 in [0, 1]", (PIXELS / 255.0).astype(np.float32), PIXELS, "float32 pixels in [0, 1] scaled to 0-255"),
    ("float32 in [0, 255]", PIXELS.astype(np.float32) + 0.25, PIXELS, "float32 pixels in [0, 255] rounded"),
    ("float up to exactly 1", np.full((2, 4, 4), 1.0), np.full((2, 4, 4), 255, np.uint8), "in [0, 1] scaled"),
    ("whole float of 0 to 2", (PIXELS % 3).astype(np.float32), PIXELS % 3, "float32 pixels read as 8-bit values"),
    ("float up to 1.5", np.full((2, 4, 4), 1.5), np.full((2, 4, 4), 2, np.uint8),
     "float64 pixels in [0, 255] rounded to whole values"),
    ("float in [0, 255]", PIXELS + 0.25, PIXELS, "rounded to whole values"),
]


@pytest.mark.parametrize("case, x, expected, note", CONVERTED, ids=[c[0] for c in CONVERTED])
def test_images_with_one_meaning_become_uint8_and_say_so(case, x, expected, note):
    notes: list[str] = []
    got = images(x, "x", notes)
    assert got.dtype == np.uint8 and got.shape == (*np.shape(x), 1)
    assert np.array_equal(got[..., 0], expected)
    assert notes == [] if note is None else (len(notes) == 1 and note in notes[0])


REFUSED_LABELS = [
    ("soft one-hot", np.full((3, 2), 0.5), "labels have shape (3, 2) but are not one-hot rows"),
    ("two ones in a row", np.array([[1, 1, 0], [0, 1, 0]]), "not one-hot rows"),
    ("rows of 0 and 1 summing to 0", np.array([[0, 0], [1, 0]]), "not one-hot rows"),
    ("string one-hot", np.array([["1", "0"], ["0", "1"]]), "not one-hot rows"),
    ("a matrix each", np.ones((3, 2, 2), int), "shape (n,); got shape (3, 2, 2)"),
    ("strings", np.array(["cat", "dog"]), "integer class indices (dtype <U3)"),
    ("bools", np.array([True, False]), "integer class indices (dtype bool)"),
    ("halves", np.array([0.5, 1.0]), "whole class indices"),
    ("NaN", np.array([np.nan, 1.0]), "whole class indices"),
    ("float32 halves", np.array([0.5, 1.0], np.float32), "labels must be whole class indices"),
    ("negative", np.array([0, -2]), "labels must be 0 or more (found -2)"),
    ("too many classes", np.array([0, 10_000]), "label 10000 would mean more than 10000 classes"),
]


@pytest.mark.parametrize("case, y, expected", REFUSED_LABELS, ids=[c[0] for c in REFUSED_LABELS])
def test_labels_that_are_not_class_indices_are_refused_in_one_line(case, y, expected):
    with pytest.raises(UserError) as e:
        labels(y, "y", [])
    assert expected in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("y, expected, note", [
    (np.array([2, 0, 9_999]), [2, 0, 9_999], None),
    (np.array([[2], [0], [1]]), [2, 0, 1], None),
    (np.array([2.0, 0.0, 1.0]), [2, 0, 1], "y: float64 labels read as class indices"),
    (np.array([2.0, 0.0, 1.0], np.float32), [2, 0, 1], "y: float32 labels read as class indices"),
    (np.array([2, 0, 1], np.uint8), [2, 0, 1], None),
    (np.eye(3, dtype=bool)[[2, 0, 1]], [2, 0, 1], "y: one-hot labels (3 columns) read as class indices"),
    (np.eye(3, dtype=np.float32)[[2, 0, 1]], [2, 0, 1], "y: one-hot labels (3 columns) read as class indices"),
])
def test_labels_with_one_meaning_become_int64_indices(y, expected, note):
    notes: list[str] = []
    got = labels(y, "y", notes)
    assert got.dtype == np.int64 and got.tolist() == expected
    assert notes == ([] if note is None else [note])


def _raw(**arrays) -> RawDataset:
    base = {"x_train": PIXELS, "y_train": np.arange(6) % 3, "x_test": PIXELS[:2], "y_test": np.array([0, 2])}
    return RawDataset(source="src", class_names=[], **{**base, **arrays})


@pytest.mark.parametrize("change, expected", [
    ({"y_train": np.arange(5)}, "src: x_train has 6 images but y_train has 5 labels"),
    ({"y_test": np.array([0])}, "src: x_test has 2 images but y_test has 1 labels"),
    ({"y_test": None}, "src: a test split needs both its images and its labels"),
    ({"x_test": PIXELS[:2, :2]}, "src: test images are 2x4x1 but training images 4x4x1"),
    ({"x_train": np.full((6, 4, 4), 7, np.uint8)}, "src: every training pixel is 7; the images are blank"),
    ({"x_train": np.zeros((0, 4, 4), np.uint8)}, "src: x_train: no images"),
    ({"x_test": np.zeros((2, 4, 4), np.complex64)}, "src: x_test: pixels must be numbers (dtype complex64)"),
    ({"y_train": np.arange(6) - 1}, "src: y_train: labels must be 0 or more (found -1)"),
    ({"y_test": np.array([0.5, 1])}, "src: y_test: labels must be whole class indices (found non-integer or NaN values)"),
])
def test_a_dataset_whose_parts_disagree_is_refused(change, expected):
    with pytest.raises(UserError, match="^" + expected.replace("(", r"\(").replace(")", r"\)") + "$"):
        validated(_raw(**change))


def test_a_valid_dataset_comes_out_converted_with_each_note_once():
    raw = validated(_raw(x_train=PIXELS / 255.0, y_train=(np.arange(6) % 3).astype(np.float32),
                         x_test=PIXELS[:2] / 255.0, y_test=np.array([0.0, 2.0])))
    assert [a.dtype for a in (raw.x_train, raw.y_train, raw.x_test, raw.y_test)] == [np.uint8, np.int64, np.uint8, np.int64]
    assert np.array_equal(raw.x_train[..., 0], PIXELS) and raw.y_test.tolist() == [0, 2]
    assert raw.notes == ["src: x_train: float64 pixels in [0, 1] scaled to 0-255",
                         "src: y_train: float32 labels read as class indices",
                         "src: x_test: float64 pixels in [0, 1] scaled to 0-255",
                         "src: y_test: float64 labels read as class indices"]
    again = validated(_raw(x_train=PIXELS / 255.0, x_test=PIXELS[:2] / 255.0, notes=["src: x_train: float64 pixels in [0, 1] scaled to 0-255"]))
    assert again.notes == ["src: x_train: float64 pixels in [0, 1] scaled to 0-255",
                           "src: x_test: float64 pixels in [0, 1] scaled to 0-255"]  # said once


def test_a_valid_dataset_is_named_by_its_largest_label_and_checked_once():
    raw = validated(_raw(y_test=np.array([0, 4])))
    assert raw.class_names == ["0", "1", "2", "3", "4"] and raw.checked and raw.y_train.dtype == np.int64
    assert validated(raw) is raw
    assert validated(_raw(x_test=None, y_test=None)).class_names == ["0", "1", "2"]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(hnp.arrays(np.uint8, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=5)))
def test_any_uint8_images_beyond_binary_pass_unchanged(x):
    notes: list[str] = []
    if x.max() <= 1 or x.min() == x.max():
        return
    assert np.array_equal(images(x, "x", notes)[..., 0], x) and notes == []


@settings(max_examples=60, deadline=None, derandomize=True)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
                  elements=st.floats(0, 1, allow_nan=False)))
def test_any_float_images_in_0_1_are_scaled_by_255(x):
    assert np.array_equal(images(x, "x", [])[..., 0], np.round(x * 255).astype(np.uint8))


PIXEL_ARRAYS = st.one_of(
    hnp.arrays(st.sampled_from([np.float32, np.float64]), (2, 3, 3), elements=st.floats(-300, 300, width=32)),
    hnp.arrays(st.sampled_from([np.float32, np.float64]), (2, 3, 3)),  # NaN and infinities too
    hnp.arrays(st.sampled_from([np.int16, np.int64, np.uint16]), (2, 3, 3), elements=st.integers(0, 300)),
    hnp.arrays(np.int16, (2, 3, 3), elements=st.integers(-300, 300)))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(PIXEL_ARRAYS)
def test_any_images_become_uint8_or_are_refused_for_what_they_hold(x):
    finite = bool(np.isfinite(x).all())
    readable = finite and x.min() >= 0 and x.max() <= 255
    try:
        got = images(x, "x", [])
    except UserError as e:
        assert not readable and "\n" not in str(e)
        return
    assert readable and got.dtype == np.uint8
    scale = 255 if x.max() <= 1 else 1  # [0, 1] floats and 0/1 integers are scaled, the rest kept
    assert np.array_equal(got[..., 0], np.round(x.astype(np.float64) * scale).astype(np.uint8))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(pixels=hnp.arrays(np.uint16, (5, 7)), mode=st.sampled_from(["I;16", "I", "F"]))
def test_deep_grey_images_scale_to_eight_bits_as_a_float64_reference_does(pixels, mode):
    """16-bit, 32-bit and float grey files, scaled in float32 in place (a float64 copy of a large
    16-bit file took gigabytes), give the bytes the float64 scaling gives."""
    from PIL import Image

    from tuner.data.images import _eight_bit

    values = {"I;16": pixels, "I": pixels.astype(np.int32), "F": pixels.astype(np.float32) / 65535}[mode]
    img = Image.fromarray(values)
    assert img.mode == mode
    reference = values.astype(np.float64)
    reference = (reference / 257 if mode == "I;16" or mode == "I" and 255 < reference.max() else
                 reference * 255 if mode == "F" else reference)
    assert (np.asarray(_eight_bit(img)) == np.round(reference).astype(np.uint8)).all()


_TRAIN = np.random.default_rng(0).integers(0, 256, (20, 8, 8), dtype=np.uint8)  # a 0-255 training split
TEST_SCALE_CASES = [  # (the test images, their largest pixel once read, or the refusal)
    ("blank", np.zeros((6, 8, 8), np.uint8), 0),
    ("dark: 0 and 1 only", np.eye(8, dtype=np.uint8)[None].repeat(6, 0), 1),  # was scaled up to 255 on its own
    ("0-1 floats", np.full((6, 8, 8), 0.5), "pixels in [0, 1] while the training images' are 0-255"),
    ("0-255 like the training", np.full((6, 8, 8), 200, np.uint8), 200),
]


@pytest.mark.parametrize("case, x_test, expected", TEST_SCALE_CASES, ids=[c[0] for c in TEST_SCALE_CASES])
def test_the_test_split_is_read_on_the_training_splits_scale(case, x_test, expected):
    raw = RawDataset(_TRAIN, np.arange(20) % 2, x_test, np.arange(6) % 2, ["a", "b"], "s")
    if isinstance(expected, str):
        with pytest.raises(UserError) as refused:
            validated(raw)
        assert expected in str(refused.value)
        return
    assert int(validated(raw).x_test.max()) == expected


@settings(max_examples=60, deadline=None, derandomize=True)
@given(x=hnp.arrays(np.uint8, (3, 4, 4), elements=st.integers(0, 1)))
def test_any_binary_looking_test_split_keeps_its_values_beside_a_0_255_training_split(x):
    """Each split alone: a dark test split read as 0-1 and multiplied by 255, beside 0-255 training images."""
    raw = RawDataset(_TRAIN[:, :4, :4], np.arange(20) % 2, x, np.arange(3) % 2, ["a", "b"], "s")
    assert np.array_equal(validated(raw).x_test[..., 0], x)
