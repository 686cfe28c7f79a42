"""What a killed export leaves beside its folder, and only that, is removed once a day old: a
user's own `.tune-export-mine` beside an export was deleted as a leftover."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.ensemble.export import _LEFT_BY_AN_EXPORT

NAMES = [(".tune-export-a1b2c3d4", True), (".tune-export-ab_cd_12", True), (".tune-old-4242", True), (".tune-old-x1y2z3_4", True),
         (".tune-export-mine", False), (".tune-export-a1b2c3d4-copy", False), (".tune-old-link", False),
         (".tune-old-", False), ("tune-export-a1b2c3d4", False), (".tune-export-A1B2C3D4", False)]


@pytest.mark.parametrize("name, leftover", NAMES)
def test_only_the_names_an_export_makes_are_its_leftovers(name, leftover, tmp_path):
    import tempfile

    from tuner.paths import remove_stale

    (tmp_path / name).mkdir()
    old = time.time() - 3 * 24 * 3600
    os.utime(tmp_path / name, (old, old))
    remove_stale([p for p in tmp_path.glob(".tune-*") if _LEFT_BY_AN_EXPORT.fullmatch(p.name)])
    assert (tmp_path / name).exists() != leftover
    for prefix in (".tune-export-", ".tune-old-"):  # what an export makes is one of them
        assert _LEFT_BY_AN_EXPORT.fullmatch(os.path.basename(tempfile.mkdtemp(prefix=prefix, dir=tmp_path)))


@settings(derandomize=True, database=None, deadline=None, max_examples=300)
@given(suffix=st.text(max_size=12))
def test_a_name_is_a_leftover_only_in_the_forms_an_export_makes(suffix):
    name = ".tune-export-" + suffix
    made_form = len(suffix) == 8 and all(c in "abcdefghijklmnopqrstuvwxyz0123456789_" for c in suffix)
    assert bool(_LEFT_BY_AN_EXPORT.fullmatch(name)) == made_form
    assert bool(_LEFT_BY_AN_EXPORT.fullmatch(".tune-old-" + suffix)) == (made_form or suffix.isascii() and suffix.isdigit())
