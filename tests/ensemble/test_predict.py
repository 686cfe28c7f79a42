"""What `tune predict` reads of an export folder: any labels.json and input.json gives the
export's classes and input size, or one line."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuner.ensemble.predict import MAX_SIDE, image_files, read_export
from tuner.errors import UserError

JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
SPEC = st.fixed_dictionaries({"height": JSON | st.integers(0, 2 * MAX_SIDE), "width": JSON | st.integers(0, 40),
                              "channels": JSON | st.sampled_from([1, 2, 3])})
LABELS = JSON | st.lists(st.text(max_size=6) | JSON, min_size=0, max_size=5).map(lambda v: {str(i): x for i, x in enumerate(v)})


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=SPEC | JSON, labels=LABELS)
def test_any_export_files_give_the_classes_and_input_or_one_line(tmp_path_factory, spec, labels):
    folder = tmp_path_factory.mktemp("export")
    (folder / "model.keras").write_bytes(b"not read here")
    (folder / "input.json").write_text(json.dumps(spec))
    (folder / "labels.json").write_text(json.dumps(labels))
    try:
        exported = read_export(folder)
    except UserError as e:
        assert "\n" not in str(e)
        return
    height, width, channels = exported.shape
    assert all(type(n) is int and 1 <= n <= MAX_SIDE for n in exported.shape) and channels in (1, 3)
    assert len(exported.labels) >= 2 and all(isinstance(name, str) for name in exported.labels)
    assert exported.labels == [labels[str(i)] for i in range(len(labels))]


# A folder tree: each entry a file, a hidden file, a sub-folder, a link to an earlier entry (a
# file or a folder, the folder's parent too: a loop), or a link to nothing.
_ENTRY = st.sampled_from(["file", "hidden", "folder", "link", "dangling"])


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.tuples(_ENTRY, st.integers(0, 20)), max_size=14),
       named=st.lists(st.integers(0, 20), min_size=1, max_size=4))
def test_any_tree_of_files_folders_and_links_gives_each_real_file_once(tmp_path_factory, entries, named):
    """However the folders named link into each other (or above themselves), every regular file
    reachable through names that are not hidden is predicted exactly once, and only those."""
    root = tmp_path_factory.mktemp("tree")
    folders, made = [0], [0]  # entry 0 is the root
    paths, kinds, parent_of, target = {0: root}, {0: "folder"}, {}, {}
    for i, (kind, pick) in enumerate(entries, 1):
        parent = folders[pick % len(folders)]
        path = paths[parent] / (f".h{i}" if kind == "hidden" else f"e{i}")
        paths[i], kinds[i], parent_of[i] = path, kind, parent
        if kind == "folder":
            path.mkdir()
            folders.append(i)
        elif kind in ("file", "hidden"):
            path.write_bytes(b"x")
        elif kind == "link":
            target[i] = made[pick % len(made)]
            path.symlink_to(paths[target[i]])
        else:
            path.symlink_to(root / "nowhere")
        made.append(i)
    named_folders = [folders[i % len(folders)] for i in named]
    reachable = _reachable(named_folders, kinds, parent_of, target)
    try:
        inputs = image_files([paths[f] for f in named_folders])
    except UserError as e:
        assert str(e).startswith("no files in ") and not reachable
        return
    identities = [(f.stat().st_dev, f.stat().st_ino) for f in inputs.files]
    assert len(set(identities)) == len(identities)
    assert set(identities) == {(paths[n].stat().st_dev, paths[n].stat().st_ino) for n in reachable}


def _reachable(starts, kinds, parent_of, target) -> set[int]:
    """The regular files (entry numbers) reachable from the folders `starts` in the tree as built:
    through entries whose names are not hidden, links followed, each folder once."""
    found, seen, todo = set(), set(), list(starts)
    while todo:
        folder = todo.pop()
        if folder in seen:
            continue
        seen.add(folder)
        for child in (c for c, p in parent_of.items() if p == folder and kinds[c] != "hidden"):
            while kinds[child] == "link":
                child = target[child]
            if kinds[child] == "folder":
                todo.append(child)
            elif kinds[child] in ("file", "hidden"):
                found.add(child)
    return found


_NAME_BYTES = st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\\" not in b and b"\0" not in b)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(a=_NAME_BYTES, b=_NAME_BYTES)
def test_any_file_name_prints_as_text_of_its_own(a, b):
    """Names that are not UTF-8 (both once printed as x\ufffd.png) or that hold a terminal's
    escape sequences print as plain text, and two names never print alike."""
    import os

    from tuner.wording import printable

    shown_a, shown_b = printable(os.fsdecode(a)), printable(os.fsdecode(b))
    assert shown_a.isprintable() and shown_a.encode("utf-8")
    assert (shown_a == shown_b) == (a == b)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(files=st.lists(_NAME_BYTES | st.sampled_from([b"back\\tslash.png", b"back\tslash.png", b"new\nline,\"q\".png"]),
                      min_size=1, max_size=4, unique=True),
       label=st.text(min_size=1, max_size=8))
def test_json_and_csv_give_each_name_back_as_it_is(files, label):
    """A real tab and a written backslash-t came out alike, and a byte that is not UTF-8 as the
    text \\xff, naming a file that does not exist: a script could not map a row to its file."""
    import csv
    import io
    import json
    import os

    from tuner.cli.predict import predictions_json, write_csv
    from tuner.ensemble.predict import Prediction

    names = [os.fsdecode(f) for f in files]
    predictions = [Prediction(name, [(label, 0.5)]) for name in names]
    rows = [{"file": p["file"], "class": p["top"][0]["class"]} for p in json.loads(predictions_json(predictions))]
    assert rows == [{"file": name, "class": label} for name in names]
    out = io.BytesIO()
    write_csv(predictions, out)
    read = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8", "surrogateescape"), newline="")))
    assert [(os.fsencode(r[0]), r[2]) for r in read[1:]] == [(f, label) for f in files]


def test_a_name_that_looks_like_markup_or_holds_control_bytes_is_shown_as_written():
    from rich.console import Console

    from tuner.ensemble.predict import Prediction
    from tuner.ui.tables import predictions_table

    console = Console(width=200, record=True)
    console.print(predictions_table([Prediction("[bold]q[/bold].png", [("[red]cat", 0.5)]),
                                     Prediction("a\tb\udcff.png", [("c\x1bat", 0.5)])]))
    shown = console.export_text()  # (exporting clears the record)
    assert "[bold]q[/bold].png" in shown and "[red]cat" in shown
    assert "a\\tb\\xff.png" in shown and "c\\x1bat" in shown  # the names, as text a terminal shows as written
