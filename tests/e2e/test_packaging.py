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
    (wheel,) = tmp_path.glob("tune_images-*.whl")
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    for space in ("digits", "mnist", "fashion_mnist", "cifar10", "folder"):
        assert f"tuner/search_spaces/{space}.yaml" in names
    entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "tune = tuner.cli:main" in entry_points
    # The metadata: a name of its own on PyPI ("tune" and "tuner" are other projects), the version
    # from its one source, the license as an SPDX expression with its text.
    from tuner import __version__

    metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    fields = [line.split(": ", 1) for line in metadata.split("\n\n")[0].splitlines() if ": " in line]
    assert ["Name", "tune-images"] in fields and ["Version", __version__] in fields
    assert ["License-Expression", "Apache-2.0"] in fields and ["License-File", "LICENSE"] in fields
    assert any(n.endswith("licenses/LICENSE") for n in names)
