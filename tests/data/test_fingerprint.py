"""The test split's fingerprint (`tuner.data.fingerprint_of`): any change to its images or labels
changes it, and nothing else does."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tuner.data import fingerprint_of

IMAGES = hnp.arrays(np.uint8, hnp.array_shapes(min_dims=4, max_dims=4, min_side=1, max_side=4))


@settings(derandomize=True, database=None, deadline=None, max_examples=150)
@given(x=IMAGES, data=st.data())
def test_any_changed_pixel_or_label_changes_the_fingerprint(x, data):
    y = data.draw(hnp.arrays(np.int64, (len(x),), elements=st.integers(0, 9)))
    same = fingerprint_of(x.copy(), y.copy())
    assert same == fingerprint_of(x, y)
    pixel = tuple(data.draw(st.integers(0, n - 1)) for n in x.shape)
    changed = x.copy()
    changed[pixel] ^= data.draw(st.integers(1, 255))
    assert fingerprint_of(changed, y) != same
    label = data.draw(st.integers(0, len(y) - 1))
    relabelled = y.copy()
    relabelled[label] += data.draw(st.integers(1, 5))
    assert fingerprint_of(x, relabelled) != same
    assert fingerprint_of(x.astype(np.float32), y) != same  # the same values as another type: not the same split
    if len(x) > 1:
        assert fingerprint_of(x[::-1], y[::-1]) != same or (x == x[::-1]).all() and (y == y[::-1]).all()
