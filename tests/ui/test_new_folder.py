"""A folder made for work that fills it (`tuner.paths.new_folder`, the report's --out): work that
fails or is interrupted leaves no folder it made, and never touches one that was there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.paths import new_folder

ERRORS = [KeyboardInterrupt, SystemExit, RuntimeError]
CASES = [  # (folders there before, the folder asked for, what is left after the work raised)
    ([], "out", []),
    ([], "a/b/out", []),
    ([], "other/../out", []),  # `other` was made by the path's `..` and left
    (["a"], "a/b/out", ["a"]),
    (["a/b/out"], "a/b/out", ["a", "a/b", "a/b/out", "a/b/out/figure.png"]),
]


@pytest.mark.parametrize("error", ERRORS)
@pytest.mark.parametrize("before, asked, left", CASES)
def test_work_that_raises_leaves_only_what_was_there(before, asked, left, error, tmp_path):
    for folder in before:
        (tmp_path / folder).mkdir(parents=True)
    with pytest.raises(error):
        with new_folder(tmp_path / asked) as out:
            (out / "figure.png").write_bytes(b"png")
            raise error()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == left


def test_work_that_ends_keeps_its_folder(tmp_path):
    with new_folder(tmp_path / "a" / "out") as out:
        (out / "report.html").write_text("page")
    assert (tmp_path / "a" / "out" / "report.html").read_text() == "page"


@settings(derandomize=True, database=None, deadline=None, max_examples=60)
@given(depth=st.integers(1, 5), there=st.integers(0, 5), files=st.lists(st.sampled_from("xyz"), max_size=3),
       error=st.sampled_from(ERRORS))
def test_any_depth_of_new_folders_is_undone_whatever_was_written(depth, there, files, error, tmp_path_factory):
    root = tmp_path_factory.mktemp("f")
    chain = [root.joinpath(*(f"d{i}" for i in range(n + 1))) for n in range(depth)]
    existing = chain[:min(there, depth)]
    for folder in existing:
        folder.mkdir(exist_ok=True)
        (folder / "mine.txt").write_text("kept")
    before = {p: p.read_bytes() if p.is_file() else None for p in root.rglob("*")}
    with pytest.raises(error):
        with new_folder(chain[-1]) as out:
            for name in files:
                (out / name).write_text(name)
            raise error()
    after = {p: p.read_bytes() if p.is_file() else None for p in root.rglob("*")}
    if len(existing) == depth:  # the folder was there: the files written stay beside what was
        assert {p: v for p, v in after.items() if p in before} == before
    else:
        assert after == before


def test_replacing_a_folder_leaves_a_users_folder_of_any_name_beside_it(tmp_path):
    """The old folder was moved aside to `.tune-old-<pid>`: a user's empty folder of that name was
    replaced by it, then removed."""
    from tuner.paths import replace_folder

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    (tmp_path / "built").mkdir()
    (tmp_path / "built" / "new.txt").write_text("new")
    mine = tmp_path / f".tune-old-{os.getpid()}"
    mine.mkdir()
    replace_folder(tmp_path / "built", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", mine.name])
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["new.txt"]


def _past_path_max(root: Path, name: str = "n" * 200) -> Path:
    """A folder under `root` whose path is past PATH_MAX (4,096 bytes) in its last few names."""
    path = root
    while len(os.fsencode(path)) < 4096 + 2 * len(name):
        path = path / name
    return path


@pytest.mark.parametrize("there", [0, 1, 5])
@pytest.mark.parametrize("how", ["make_folder", "new_folder"])
def test_a_folder_past_path_max_leaves_none_of_its_parents_made(there, how, tmp_path):
    """An error naming a path near PATH_MAX left the folders made for it: `mkdir -p` makes each
    parent the system takes, then fails at the first past the limit."""
    from tuner.errors import UserError
    from tuner.paths import make_folder

    asked = _past_path_max(tmp_path)
    kept = tmp_path.joinpath(*asked.relative_to(tmp_path).parts[:there])  # there before
    kept.mkdir(parents=True, exist_ok=True)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(UserError, match="cannot create the folder"):
        if how == "make_folder":
            make_folder(asked)
        else:
            with new_folder(asked):
                pass
    assert sorted(tmp_path.rglob("*")) == before


@settings(derandomize=True, database=None, deadline=None, max_examples=30)
@given(name_length=st.integers(1, 255), there=st.integers(0, 3))
def test_any_folder_past_path_max_is_made_whole_or_not_at_all(name_length, there, tmp_path_factory):
    from tuner.errors import UserError
    from tuner.paths import make_folder

    root = tmp_path_factory.mktemp("long")
    asked = _past_path_max(root, "d" * name_length)
    for part in list(asked.relative_to(root).parents)[::-1][1:there + 1]:
        (root / part).mkdir()
    before = sorted(root.rglob("*"))
    with pytest.raises(UserError):
        make_folder(asked)
    assert sorted(root.rglob("*")) == before
