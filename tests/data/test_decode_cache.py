"""The decode cache's entry is whole or as it was, whatever stops its write midway."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuner.data import decode_cache

OLD = (np.zeros((2, 4, 4, 1), np.uint8), np.array([0, 1]), None, None, ["old"])
NEW = (np.full((3, 4, 4, 1), 7, np.uint8), np.array([1, 0, 1]), None, None, ["new"])


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(a, b))


def _savez_that_stops(cut: int, error: BaseException):
    """np.savez that writes the first `cut` bytes of the real file, then fails with `error`."""
    real = np.savez

    def savez(file, **arrays):
        real(file, **arrays)
        path = Path(file)
        path.write_bytes(path.read_bytes()[:cut])
        raise error

    return savez


@pytest.mark.parametrize("error, raised", [
    (OSError(errno.ENOSPC, "No space left on device"), None),  # a full disk: a note, decode next time
    (OSError(errno.EROFS, "Read-only file system"), None),
    (KeyboardInterrupt(), KeyboardInterrupt),  # a signal mid-write goes on up
])
@pytest.mark.parametrize("before", ["absent", "present"])
def test_a_write_stopped_midway_leaves_the_entry_as_it_was(tmp_path, monkeypatch, error, raised, before):
    cached = tmp_path / "decoded" / "k.npz"
    if before == "present":
        assert decode_cache.write(cached, *OLD) is None
    monkeypatch.setattr(np, "savez", _savez_that_stops(100, error))
    if raised:
        with pytest.raises(raised):
            decode_cache.write(cached, *NEW)
    else:
        assert "cannot write the decode cache" in decode_cache.write(cached, *NEW)
    monkeypatch.undo()
    got = decode_cache.read(cached)
    assert (got is None) if before == "absent" else _same(got, OLD)
    assert sorted(p.name for p in cached.parent.iterdir()) == (["k.npz"] if before == "present" else [])


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=2000), before=st.booleans())
def test_any_cut_point_leaves_a_whole_entry_or_none(tmp_path_factory, cut, before):
    cached = tmp_path_factory.mktemp("cache") / "decoded" / "k.npz"
    if before:
        decode_cache.write(cached, *OLD)
    original = np.savez
    np.savez = _savez_that_stops(cut, OSError(errno.ENOSPC, "No space left on device"))
    try:
        decode_cache.write(cached, *NEW)
    finally:
        np.savez = original
    got = decode_cache.read(cached)
    assert _same(got, OLD) if before else got is None


def test_a_process_killed_while_writing_leaves_the_old_entry_and_the_next_write_works(tmp_path):
    cached = tmp_path / "decoded" / "k.npz"
    assert decode_cache.write(cached, *OLD) is None
    # SIGKILL after half the new entry is on disk: no handler runs, no clean-up.
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        import numpy as np
        from tuner.data import decode_cache
        real = np.savez
        def savez(file, **arrays):
            real(file, **arrays)
            path = Path(file)
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        np.savez = savez
        decode_cache.write(Path({str(cached)!r}), np.ones((5, 4, 4, 1), np.uint8), np.arange(5), None, None, ["x"])
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == -signal.SIGKILL
    leftovers = [p.name for p in cached.parent.iterdir() if p.name != "k.npz"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".")  # only the hidden temporary file
    assert _same(decode_cache.read(cached), OLD)
    assert decode_cache.write(cached, *NEW) is None and _same(decode_cache.read(cached), NEW)


def test_a_link_planted_at_the_temporary_name_is_not_written_through(tmp_path):
    cached = tmp_path / "decoded" / "k.npz"
    cached.parent.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    os.symlink(victim, cached.with_name(f".k.{os.getpid()}.tmp.npz"))
    assert decode_cache.write(cached, *NEW) is None
    assert victim.read_text() == "keep me" and _same(decode_cache.read(cached), NEW)


@pytest.mark.parametrize("change", ["rewritten in place", "rewritten, its times put back", "one more file",
                                    "one removed"])
def test_a_folder_changed_in_any_way_is_decoded_again(tmp_path, change):
    """The entry's key follows every file: a file replaced in place (same name, same size, even
    with its modification time restored, as `cp -p` or `touch -r` would) is a new entry."""
    root = tmp_path / "pets"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(2):
            (root / name / f"{i}.png").write_bytes(bytes([i]) * 64)
    before = decode_cache.entry(tmp_path / "cache", root, (8, 8, 3), ["cat", "dog"])
    target = root / "dog" / "1.png"
    stat = target.stat()
    time.sleep(0.05)  # past the file system's timestamp tick (ext4 keeps coarse times: up to 10 ms)
    if change.startswith("rewritten"):
        target.write_bytes(bytes([9]) * 64)
        if "times" in change:
            os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    elif change == "one more file":
        (root / "dog" / "2.png").write_bytes(b"x")
    else:
        target.unlink()
    assert decode_cache.entry(tmp_path / "cache", root, (8, 8, 3), ["cat", "dog"]) != before
    assert decode_cache.entry(tmp_path / "cache", root, (8, 8, 4), ["cat", "dog"]) != before  # and the shape
