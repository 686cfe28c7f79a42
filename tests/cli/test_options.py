"""Value types shared by the commands: every input is a size or one line saying why not."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.cli.options import Size


@pytest.mark.parametrize("text, expected", [
    ("2000000", 2_000_000), ("512MiB", 512 * 2**20), ("4GB", 4 * 10**9), ("1.5GiB", int(1.5 * 2**30)),
    ("1 kb", 1000), ("  8gib ", 8 * 2**30), ("1", 1), ("3b", 3), ("1TiB", 2**40)])
def test_sizes_read(text, expected):
    assert Size().convert(text, None, None) == expected


@pytest.mark.parametrize("text", ["", "MiB", "-1GB", "0", "0.5", "nan", "inf", "1e30GiB", "4 GiBs", "4XB",
                                  "1..5GB", "GiB4", "2**30"])
def test_anything_else_is_one_line(text):
    with pytest.raises(click.BadParameter) as e:
        Size().convert(text, None, None)
    assert "\n" not in e.value.format_message() and repr(text) in e.value.format_message()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=12))
def test_any_text_is_a_size_or_refused(text):
    try:
        size = Size().convert(text, None, None)
    except click.BadParameter:
        return
    assert isinstance(size, int) and 1 <= size <= 2**60


def test_tune_check_refuses_an_empty_out_folder_in_one_line(capsys):
    from tests.conftest import run_main

    code, out, err = run_main(["check", "--space", "digits", "--out", ""], capsys)
    assert code == 2 and err.count("\n") == 1 and "--out" in err and "an empty path" in err, err


LONG_NAME = "a" * 5000


@pytest.mark.parametrize("args, said", [
    (["studies", "--storage", f"sqlite:///{LONG_NAME}.db"], "storage sqlite:///aaaa"),
    (["studies", "--results-dir", LONG_NAME], "Invalid value for '--results-dir'"),
    (["search", "--space", "digits", "--data", f"/tmp/{LONG_NAME[:300]}"], "Invalid value for '--data'"),
    (["spaces", f"/tmp/{LONG_NAME[:300]}.yaml"], "no space '/tmp/aaaa"),
    (["best", "--export", f"x/{LONG_NAME[:256]}"], "Invalid value for '--export'"),
])
def test_a_path_too_long_for_any_file_system_is_one_short_line(args, said, tmp_path, capsys, monkeypatch):
    """A 5,000-character --storage path was exit 1 with the whole name in a 5,000-character line."""
    from tests.conftest import run_main

    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(args, capsys)
    assert code == 2 and err.count("\n") == 1 and said in err and len(err) < 400, err
    assert "characters)" in err and ("a file system takes at most 255" in err)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(parts=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=30),
       char=st.sampled_from(["a", "é", "\x1b"]))
def test_a_path_is_refused_for_its_length_exactly_when_no_file_system_takes_it(parts, char):
    from tuner.paths import MAX_COMPONENT, MAX_PATH, length_problem

    path = "/".join(char * n for n in parts)
    sizes = [len((char * n).encode()) for n in parts]
    too_long = max(sizes) > MAX_COMPONENT or len(path.encode()) > MAX_PATH
    assert (length_problem(path) is not None) == too_long


def _loop(folder, length: int) -> str:
    """`length` links in a ring under `folder`; the first one's path."""
    names = [folder / f"link{i}" for i in range(length)]
    for i, name in enumerate(names):
        name.symlink_to(names[(i + 1) % length].name)
    return str(names[0])


@pytest.mark.parametrize("args", [
    ["studies", "--results-dir", "{loop}"], ["leaderboard", "--results-dir", "{loop}/deeper"],
    ["report", "--out", "{loop}"], ["best", "--export", "{loop}/sub"], ["search", "--space", "digits", "--data", "{loop}"],
    ["check", "--space", "digits", "--out", "{loop}"],
    ["check", "--space", "{loop}/space.yaml"], ["studies", "--storage", "sqlite:///{loop}/tune.db"],
    ["search", "--space", "digits", "--storage", "sqlite:///{loop}"],
])
def test_a_loop_of_symbolic_links_is_one_line(args, tmp_path, capsys, monkeypatch):
    """It was an internal error (Python's RuntimeError "Symlink loop"), exit 1 with a crash log;
    in a space file's path or a SQLite path it read "does not exist"."""
    from tests.conftest import run_main

    monkeypatch.chdir(tmp_path)
    loop = _loop(tmp_path, 2)
    code, out, err = run_main([a.format(loop=loop) for a in args], capsys)
    assert code == 2 and err.count("\n") == 1 and "a loop of symbolic links" in err and "internal error" not in err, err


@pytest.mark.parametrize("args, env", [
    (["check", "--space", "~/{name}/space.yaml"], {}),
    (["check", "--space", "mnist"], {"TUNE_DATA_DIR": "~/{name}"}),
    (["check", "--space", "mnist"], {"TUNE_DATA_DIR": "{loop}"}),
    (["check", "--space", "digits"], {"TUNE_CACHE_DIR": "{loop}/cache"}),
])
def test_a_loop_reached_through_home_or_a_variable_is_named_as_a_loop(args, env, tmp_path, capsys, monkeypatch):
    """Through `~` or TUNE_DATA_DIR it read "not a built-in nor a file" or "no such folder"."""
    from tests.conftest import run_main

    monkeypatch.setenv("HOME", str(tmp_path))
    loop = _loop(tmp_path, 2)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(loop=loop, name=Path(loop).name))
    code, out, err = run_main([a.format(loop=loop, name=Path(loop).name) for a in args], capsys)
    assert code == 2 and err.count("\n") == 1 and "a loop of symbolic links" in err, err

@settings(max_examples=30, deadline=None, derandomize=True)
@given(length=st.integers(1, 6), tail=st.lists(st.sampled_from(["a", "..", "."]), max_size=3), looped=st.booleans())
def test_a_path_through_links_is_a_loop_exactly_when_its_links_never_end(length, tail, looped, tmp_path_factory):
    from tuner.paths import loop_problem

    folder = tmp_path_factory.mktemp("links")
    first = _loop(folder, length) if looped else str(folder / "plain")
    path = "/".join([first, *tail])
    assert (loop_problem(path) is not None) == looped



@pytest.mark.parametrize("form, looped", [
    ("{loop}", True), ("{loop}/x", True), ("{loop}/..", True),  # `..` after the loop: the system follows it first
    ("{folder}/missing/../link0", True),  # Python's `resolve` finds it; the system stops at `missing`
    ("{folder}/missing", False), ("{folder}", False)])
def test_every_form_of_a_loop_is_found(form, looped, tmp_path):
    from tuner.paths import loop_problem

    path = form.format(loop=_loop(tmp_path, 2), folder=tmp_path)
    assert (loop_problem(path) is not None) == looped


@pytest.mark.parametrize("command", [["best"], ["ensemble"], ["report"]])
def test_a_missing_data_path_is_refused_even_where_the_data_is_not_needed(command, tmp_path, capsys):
    """`best --data <missing>` was ignored when the study's evaluation was on record."""
    from tests.conftest import run_main

    code, out, err = run_main([*command, "--results-dir", str(tmp_path), "--data", str(tmp_path / "missing")], capsys)
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err and str(tmp_path / "missing") in err, err


@pytest.mark.parametrize("out, made", [("new", "new"), ("new/deeper", "new"), ("new/../other", "other")])
def test_check_removes_the_folder_it_made_when_the_data_is_refused(out, made, tmp_path, capsys):
    """`tune check --out` left the folder it made when its --data was refused."""
    from tests.conftest import run_main

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    code, _, err = run_main(["check", "--space", "mnist", "--data", str(bad), "--out", str(tmp_path / out)], capsys)
    assert code == 2 and "not a readable .npz" in err, err
    assert not (tmp_path / made).exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]


def test_check_keeps_a_folder_that_was_there(tmp_path, capsys):
    from tests.conftest import run_main

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    code, _, err = run_main(["check", "--space", "mnist", "--data", str(bad), "--out", str(tmp_path / "mine")], capsys)
    assert code == 2 and (tmp_path / "mine" / "notes.txt").read_text() == "kept", err


def test_check_never_removes_the_default_folder_which_other_checks_share(tmp_path, capsys, monkeypatch):
    """Two checks of one space share <tmp>/tune-check/<space>: one that made it and was refused
    (or interrupted) removed it, with the picture the other had just written there."""
    import tempfile

    from tests.conftest import run_main

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    code, _, err = run_main(["check", "--space", "mnist", "--data", str(bad)], capsys)
    assert code == 2 and "not a readable .npz" in err, err
    assert (tmp_path / "tune-check" / "mnist").is_dir()

@pytest.mark.parametrize("command", [["check", "--space", "digits"], ["report"]])
def test_an_out_folder_whose_files_would_pass_path_max_is_refused_before_any_work(command, tmp_path, capsys):
    """A --out path under PATH_MAX whose files would pass it: `tune check` ran every check, failed
    its picture and left the folders made; `tune report` said a name was too long, exit 1."""
    from tests.conftest import run_main

    base = tmp_path.joinpath(*["a" * 200] * ((4070 - len(str(tmp_path))) // 201))
    out = base / ("b" * (4070 - len(str(base)) - 1))  # 4,070 bytes: a folder the system takes, its files not
    before = sorted(tmp_path.rglob("*"))
    code, _, err = run_main([*command, "--results-dir", str(tmp_path), "--out", str(out)]
                            if command == ["report"] else [*command, "--out", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1 and "too long a path for the files written in it" in err, err
    assert sorted(tmp_path.rglob("*")) == before


def test_report_data_with_no_images_is_refused(tmp_path, capsys):
    """`--data` is read for the image grids only: with --no-images other data was accepted unread."""
    from tests.conftest import run_main

    code, _, err = run_main(["report", "--results-dir", str(tmp_path), "--no-images", "--data", str(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 1 and "--no-images" in err, err

@pytest.mark.slow  # a `tune` process of its own: Keras is imported with the looping HOME
def test_a_loop_under_home_met_by_a_library_is_one_line(tmp_path):
    """matplotlib's cache under a looping `~` was an internal error, after TensorFlow's start-up lines."""
    import subprocess
    import sys

    (tmp_path / "home").mkdir()
    (tmp_path / "self").symlink_to("self")
    (tmp_path / "home" / ".cache").symlink_to(tmp_path / "self")
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CACHE_HOME")}
    run = subprocess.run([sys.executable, "-m", "tuner", "check", "--space", "digits", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=300, env={**env, "HOME": str(tmp_path / "home")})
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "a loop of symbolic links" in run.stderr, run.stderr


LOOP_ERRORS = [(RuntimeError("Symlink loop from '/a/self'"), "Symlink loop from '/a/self'"),
               (OSError(40, "Too many levels of symbolic links", "/a/b"), "Too many levels of symbolic links: /a/b"),
               (RuntimeError("something else"), None), (OSError(2, "No such file", "/a"), None), (ValueError("x"), None)]


@pytest.mark.parametrize("error, said", LOOP_ERRORS)
def test_a_loop_met_anywhere_is_told_apart_from_other_errors(error, said):
    from tuner.paths import loop_error

    assert loop_error(error) == said

def _images(root):
    from tests.data.test_sources import make_folder

    return make_folder(root / "imgs")


@pytest.mark.parametrize("args, made", [
    (["search", "--space", "{space}", "--data", "{imgs}", "--results-dir", "{imgs}/results"], "results"),
    (["search", "--space", "{space}", "--data", "{imgs}", "--results-dir", "{imgs}"], None),
    (["search", "--space", "{space}", "--data", "{imgs}/cat/..", "--results-dir", "{imgs}/dog/../results"], "results"),
    (["check", "--space", "{space}", "--data", "{imgs}", "--out", "{imgs}/preview"], "preview"),
    (["check", "--space", "{space}", "--data", "{imgs}", "--out", "{imgs}/cat"], None),
])
def test_a_folder_written_inside_the_image_folder_is_refused(args, made, tmp_path, capsys, monkeypatch):
    """`cd imgs && tune search --data .` made `results/` among the classes, then failed on it as a
    class without images (exit 2, the folder left, every rerun the same)."""
    import yaml

    from tests.conftest import run_main
    from tests.data.test_sources import FOLDER_SPACE

    imgs = _images(tmp_path)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(FOLDER_SPACE))
    before = sorted(p.relative_to(imgs) for p in imgs.rglob("*"))
    code, out, err = run_main([a.format(imgs=imgs, space=space) for a in args], capsys)
    assert code == 2 and err.count("\n") == 1 and "lies in the image folder --data" in err, err
    assert sorted(p.relative_to(imgs) for p in imgs.rglob("*")) == before, made


def test_the_default_results_folder_in_the_image_folder_is_refused(tmp_path, capsys, monkeypatch):
    import yaml

    from tests.conftest import run_main
    from tests.data.test_sources import FOLDER_SPACE

    imgs = _images(tmp_path)
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(FOLDER_SPACE))
    monkeypatch.chdir(imgs)
    monkeypatch.delenv("TUNE_RESULTS_DIR", raising=False)
    code, out, err = run_main(["search", "--space", str(tmp_path / "space.yaml"), "--data", "."], capsys)
    assert code == 2 and "choose another --results-dir" in err and not (imgs / "results").exists(), err


@settings(max_examples=60, deadline=None, derandomize=True)
@given(parts=st.lists(st.sampled_from(["a", "b", "..", "."]), min_size=0, max_size=6))
def test_a_folder_is_refused_exactly_when_it_resolves_into_the_image_folder(parts, tmp_path_factory):
    import os

    from tuner.errors import UserError
    from tuner.paths import outside_data

    root = tmp_path_factory.mktemp("data")
    data = root / "images"
    data.mkdir()
    folder = data.joinpath(*parts) if parts else data
    target = Path(os.path.normpath(folder))
    inside = target == data or data in target.parents
    try:
        outside_data(folder, data, "folder", "--out")
        refused = False
    except UserError:
        refused = True
    assert refused == inside


@pytest.mark.parametrize("command", [
    ["check", "--space", "digits", "--out", "{folder}"],
    pytest.param(["report", "--results-dir", "{results}", "--out", "{folder}"], marks=pytest.mark.slow)])
def test_an_existing_folder_that_cannot_be_written_is_refused_before_any_work(command, tmp_path, capsys, monkeypatch):
    """`tune check --out <read-only folder>` ran every check (18 s), then failed the picture with a raw
    OSError and exit 1; `tune report` named its temporary file."""
    import os

    from tests.conftest import run_main

    if command[0] == "report":
        from tests.conftest import search_once

        search_once(tmp_path / "results", "a", "--no-ensemble")
    folder = tmp_path / "ro"
    folder.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == folder and mode & os.W_OK
                        else real_access(path, mode, **kw))
    code, out, err = run_main([a.format(folder=folder, results=tmp_path / "results") for a in command], capsys)
    assert code == 2 and err.count("\n") == 1 and f"cannot write to {folder}" in err, err
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["check", "--space", "digits", "--set", "width=" + "a" * 20000],
    ["check", "--space", "digits", "--set", "b" * 20000 + "=1"],
    ["search", "--space", "digits", "--study", "c" * 20000],
])
def test_an_error_line_is_clipped_to_a_readable_length(args, capsys):
    """A 20,000-character `--set` value gave a 20,100-character line, an unknown name 40,410."""
    from tests.conftest import run_main
    from tuner.cli.app import MAX_ERROR

    code, out, err = run_main(args, capsys)
    assert code == 2 and err.count("\n") == 1 and len(err) <= MAX_ERROR + 60 and "characters" in err, len(err)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(message=st.text(min_size=0, max_size=5000))
def test_any_error_message_is_one_line_of_bounded_length(message):
    import io
    import contextlib

    from tuner.cli.app import MAX_ERROR, abort

    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        abort(message)
    line = err.getvalue()
    assert exit_info.value.code == 2 and line.count("\n") == 1 and len(line) <= MAX_ERROR + 60


@pytest.mark.slow  # a search
@pytest.mark.parametrize("command", [["ensemble", "--reevaluate"], ["best"]])
def test_a_studys_folder_that_moved_is_named_not_asked_for(command, tmp_path, capsys):
    """The folder a study was searched on, moved: "the 'folder' space needs --data PATH", as if
    none had been given."""
    import yaml

    from tests.conftest import run_main
    from tests.data.test_sources import FOLDER_SPACE, make_folder

    imgs = make_folder(tmp_path / "imgs", n=12)
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(FOLDER_SPACE))
    where = ["--results-dir", str(tmp_path / "results")]
    code, _, err = run_main(["search", "--space", str(tmp_path / "space.yaml"), "--data", str(imgs), "--study", "f",
                             "--trials", "1", "--jobs", "1", "--in-process", "--no-ensemble", *where], capsys)
    assert code == 0, err
    imgs.rename(tmp_path / "moved")
    code, _, err = run_main([*command, "--study", "f", *where], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"its data was read from {imgs}, which is not there now" in err and "--data PATH where it is" in err
    code, _, err = run_main([*command, "--study", "f", "--data", str(tmp_path / "moved"), *where], capsys)
    assert code == 0, err


@pytest.mark.parametrize("sets, said", [
    (("width=500",), ["--set width=500 lies outside what the space searches (500 is outside the searched range [8, 32])"]),
    (("width=16",), []),
    (("batch_size=48",), ["--set batch_size=48 lies outside what the space searches (48 is not one of the choices"]),
    (("head_units=0", "dropout=0.9"), ["--set dropout=0.9 lies outside"]),
    (("max_shift=2",), []),  # fixed in the space, not searched: nothing to be outside of
])
def test_a_set_value_outside_the_spaces_search_is_said(sets, said):
    """`--set width=500` in a space searching 16-96 built a 3.5G multiply-add model unsaid (the
    trial lines leave fixed values out)."""
    from tuner.cli.options import requested_space

    warned: list[str] = []
    requested_space("digits", None, sets, warned.append)
    assert len(warned) == len(said) and all(w.startswith(s) for w, s in zip(warned, said)), warned


@pytest.mark.parametrize("sets", [("width=abc",), ("optimizer=lion",), ("depth=null",), ("dropout=.nan",)])
def test_a_set_value_the_space_refuses_is_its_one_line_with_no_warning_before_it(sets):
    """A value refused as invalid was first warned about as "outside what the space searches":
    two lines where a refusal is one."""
    from tuner.cli.options import requested_space
    from tuner.errors import UserError

    warned: list[str] = []
    with pytest.raises(UserError):
        requested_space("digits", None, sets, warned.append)
    assert warned == []
