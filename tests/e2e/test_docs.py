"""The project's documents name only what exists: every test RELIABILITY.md or README.md cites
is a test of the suite, and every module or folder they cite is in the tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "RELIABILITY.md", "BENCHMARKS.md")
_TEST = re.compile(r"`(?:(tests/[\w/]+\.py)::)?(test_\w+)(?:\[[^\]`]*\])?`")
NOT_TESTS = {"test_fraction"}  # a space-file field that happens to start like a test
_PATH = re.compile(r"`((?:tuner|tests|bench|search_spaces|scripts)/[\w./-]*)")
NOT_PATHS = {"tuner/epochs"}  # KerasTuner's name of a Hyperband trial's epoch budget


def _defined_tests() -> dict[str, set[str]]:
    """test name -> the files that define it."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        for name in re.findall(r"^def (test_\w+)", path.read_text(), re.M):
            found.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    return found


def _cited(doc: str) -> list[tuple[str | None, str]]:
    return _TEST.findall((ROOT / doc).read_text())


@pytest.mark.parametrize("doc", ["README.md", "RELIABILITY.md", "BENCHMARKS.md"])
def test_every_cited_test_exists(doc):
    defined = _defined_tests()
    missing = [f"{path or ''}::{name}" for path, name in _cited(doc) if name not in NOT_TESTS
               and (name not in defined or path and path not in defined[name])]
    assert not missing, f"{doc} cites tests that do not exist: {missing}"


def test_reliability_cites_tests():
    assert len(_cited("RELIABILITY.md")) > 50  # the table is there, and this check reads it


@pytest.mark.parametrize("doc", DOCS)
def test_every_cited_path_exists(doc):
    paths = {p.rstrip(".,:;)") for p in _PATH.findall((ROOT / doc).read_text())}
    missing = sorted(p for p in paths - NOT_PATHS if not (ROOT / p.split("::")[0]).exists())
    assert not missing, f"{doc} cites paths that are not in the tree: {missing}"
