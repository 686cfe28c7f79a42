"""`pip install .` ships the built-in spaces inside the package (no reliance on the cwd)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_the_builtin_spaces(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("tune-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for space in ("digits", "mnist", "fashion_mnist", "cifar10", "folder"):
        assert f"tuner/search_spaces/{space}.yaml" in names
    assert any(n.endswith("entry_points.txt") for n in names)
