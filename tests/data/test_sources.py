"""Data sources, the fixed split, caching and every way input data can be wrong."""

from __future__ import annotations

import io
import os
import re
import tarfile
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.conftest import SHARED
from tuner.data import load_search_data, load_test_data
from tuner.errors import UserError
from tuner.space.files import load_space
from tuner.space.schema import parse_space

FOLDER_SPACE = {"name": "f", "dataset": "folder", "input": {"height": 16, "width": 16, "channels": 3},
                "training": {"max_epochs": 1, "test_fraction": 0.25}, "params": {"depth": 1}}


def make_folder(root: Path, classes=("cat", "dog"), n=8, broken=0, sizes=((20, 30), (9, 9))) -> Path:
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            mode = "RGB" if i % 2 else "L"  # mixed modes and sizes, as photo folders are
            img = Image.new(mode, sizes[i % len(sizes)], color=(c * 100, i * 10, 50) if mode == "RGB" else c * 100)
            img.save(root / name / f"{i}.png")
        for i in range(broken):
            (root / name / f"broken{i}.jpg").write_bytes(b"not an image")
    return root


def test_digits_split_is_fixed_stratified_and_disjoint():
    space = load_space("digits")
    a, info_a = load_search_data(space, None, Path("/nonexistent"))
    b, info_b = load_search_data(space, None, Path("/nonexistent"))
    assert info_a.fingerprint == info_b.fingerprint and np.array_equal(a.y_val, b.y_val)
    assert (info_a.n_train, info_a.n_val, info_a.n_test) == (1149, 288, 360)
    # Stratified: every class has about 20% of its samples in validation.
    shares = [np.mean(a.y_val == c) for c in range(10)]
    assert max(shares) - min(shares) < 0.02
    x_test, y_test = load_test_data(space, None, Path("/nonexistent"))
    assert len(y_test) == 360 and a.x_train.dtype == np.uint8
    # No test image is in train or validation (compare raw bytes of every image).
    seen = {img.tobytes() for img in np.concatenate([a.x_train, a.x_val])}
    overlap = sum(img.tobytes() in seen for img in x_test)
    assert overlap <= 5  # digits has a handful of exact duplicate images; a leak would be hundreds


def test_another_seed_gives_another_split():
    base = load_space("digits")
    other = parse_space({**base.to_dict(), "training": {**base.to_dict()["training"], "seed": 1}}, "x")
    assert load_search_data(base, None, Path("/x"))[1].fingerprint != load_search_data(other, None, Path("/x"))[1].fingerprint


def test_npz_source_and_shape_mismatch(tmp_path: Path):
    path = tmp_path / "mini.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 255, (200, 28, 28), dtype=np.uint8), y_train=np.arange(200) % 10,
             x_test=rng.integers(0, 255, (50, 28, 28), dtype=np.uint8), y_test=np.arange(50) % 10)
    data, info = load_search_data(load_space("mnist"), path, tmp_path)
    assert data.x_train.shape[1:] == (28, 28, 1) and info.n_test == 50 and info.n_val == 40
    with pytest.raises(UserError, match="images are 28x28x1 but space 'cifar10'"):
        load_search_data(load_space("cifar10"), path, tmp_path)


def test_data_dir_finds_dataset_by_name(tmp_path: Path, monkeypatch):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mnist.npz", x_train=rng.integers(0, 255, (100, 28, 28), dtype=np.uint8),
             y_train=np.arange(100) % 10, x_test=np.zeros((10, 28, 28), np.uint8), y_test=np.arange(10))
    monkeypatch.setenv("TUNE_DATA_DIR", str(tmp_path))
    _, info = load_search_data(load_space("mnist"), None, tmp_path / "cache")
    assert info.source.endswith("mnist.npz")


def test_sources_are_looked_for_in_the_documented_order(tmp_path: Path, monkeypatch):
    """--data first, then $TUNE_DATA_DIR, then Keras's cache (README's order); each source told
    apart by its number of images."""
    def npz(path: Path, n: int) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(n)
        np.savez(path, x_train=rng.integers(0, 255, (n, 28, 28), dtype=np.uint8), y_train=np.arange(n) % 10,
                 x_test=rng.integers(0, 255, (10, 28, 28), dtype=np.uint8), y_test=np.arange(10))
        return path

    given, in_data_dir = npz(tmp_path / "given.npz", 140), npz(tmp_path / "data" / "mnist.npz", 100)
    in_keras_cache = npz(tmp_path / "keras" / "datasets" / "mnist.npz", 120)
    monkeypatch.setenv("TUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def found(data: Path | None = None) -> tuple[str, int]:
        _, info = load_search_data(load_space("mnist"), data, tmp_path / "cache")
        return info.source, info.n_train + info.n_val

    assert found(given) == (str(given), 140)
    assert found() == (str(in_data_dir), 100)
    in_data_dir.unlink()
    assert found() == (str(in_keras_cache), 120)


_NOISE = np.random.default_rng(1).integers(0, 256, (25, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("arrays, message", [
    ({"x_train": _NOISE[:20], "y_train": np.arange(20) % 10 + 5,
      "x_test": _NOISE[20:], "y_test": np.arange(5)}, "out of range for 10 classes"),
    ({"x_train": _NOISE[:20], "y_train": np.zeros(20, int),
      "x_test": _NOISE[20:], "y_test": np.zeros(5, int)}, "at least 2 classes"),
    ({"x_train": np.zeros((20, 28, 28), np.uint8)}, "missing arrays"),
])
def test_bad_npz_contents(tmp_path: Path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(UserError, match=message):
        load_search_data(load_space("mnist"), path, tmp_path)


def test_truncated_npz(tmp_path: Path):
    good = tmp_path / "good.npz"
    np.savez(good, x_train=np.zeros((20, 28, 28), np.uint8), y_train=np.arange(20) % 10,
             x_test=np.zeros((5, 28, 28), np.uint8), y_test=np.arange(5))
    bad = tmp_path / "trunc.npz"
    bad.write_bytes(good.read_bytes()[:300])
    with pytest.raises(UserError, match="not a readable .npz"):
        load_search_data(load_space("mnist"), bad, tmp_path)


def test_image_folder_resizes_converts_counts_unreadable_and_caches(tmp_path: Path, monkeypatch):
    root = make_folder(tmp_path / "pets", n=8, broken=2)
    space = parse_space(FOLDER_SPACE, "f.yaml")
    data, info = load_search_data(space, root, tmp_path / "cache")
    assert data.x_train.shape[1:] == (16, 16, 3) and data.class_names == ["cat", "dog"]
    assert info.n_train + info.n_val + info.n_test == 16
    assert info.notes == [f"skipped 4 files in {root} not readable as an image (e.g. "
                          f"{str(root / 'cat' / 'broken0.jpg')!r})"]
    cached = list((tmp_path / "cache" / "decoded").glob("*.npz"))
    assert len(cached) == 1
    # A second load of the unchanged folder reads the cache: it decodes nothing.
    from tuner.data import sources

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(sources, "decode_folder", no_decoding)
    again, info2 = load_search_data(space, root, tmp_path / "cache")
    assert info2.fingerprint == info.fingerprint and info2.notes == info.notes
    # A file changed in place is a new entry: the folder is decoded again (here, refused: all gone).
    monkeypatch.undo()
    for f in root.rglob("*.png"):
        f.write_bytes(b"gone")
    with pytest.raises(UserError, match="no readable images"):
        load_search_data(space, root, tmp_path / "cache")


NOT_FILES = [  # what an image folder may hold besides image files: each is skipped and said
    ("a dangling link", lambda at: at.symlink_to(at.parent / "gone.png")),
    ("a link to a folder", lambda at: at.symlink_to(at.parent.parent / "dog", target_is_directory=True)),
    ("a pipe", lambda at: os.mkfifo(at)),
]


@pytest.mark.parametrize("what, make", NOT_FILES, ids=[c[0] for c in NOT_FILES])
def test_what_is_not_a_file_in_an_image_folder_is_skipped_and_said(what, make, tmp_path: Path):
    """They were left out without a word in the checks' "reading" line."""
    root = make_folder(tmp_path / "pets", n=8)
    make(root / "cat" / "zz")
    data, info = load_search_data(parse_space(FOLDER_SPACE, "f.yaml"), root, tmp_path / "cache")
    assert info.n_train + info.n_val + info.n_test == 16
    assert info.notes == [f"skipped 1 file in {root} not readable as an image (e.g. {str(root / 'cat' / 'zz')!r})"]

def test_train_test_folders_and_archives(tmp_path: Path):
    make_folder(tmp_path / "ds" / "train", n=6)
    make_folder(tmp_path / "ds" / "test", n=2)
    archive = tmp_path / "ds.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tmp_path / "ds", arcname="ds")
    space = parse_space(FOLDER_SPACE, "f.yaml")
    _, info = load_search_data(space, archive, tmp_path / "cache")
    assert info.n_test == 4 and info.n_train + info.n_val == 12
    zipped = tmp_path / "ds.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for f in (tmp_path / "ds").rglob("*.png"):
            zf.write(f, f.relative_to(tmp_path))
    _, info_zip = load_search_data(space, zipped, tmp_path / "cache")
    assert info_zip.n_test == 4
    mac = tmp_path / "mac.zip"  # macOS's Archive Utility adds __MACOSX/ beside the folder: never a class
    with zipfile.ZipFile(mac, "w") as zf:
        for f in (tmp_path / "ds").rglob("*.png"):
            zf.write(f, f.relative_to(tmp_path))
            zf.writestr(str(Path("__MACOSX") / f.relative_to(tmp_path).parent / f"._{f.name}"), b"resource fork")
    _, info_mac = load_search_data(space, mac, tmp_path / "cache")
    assert (info_mac.n_test, info_mac.class_names) == (4, ["cat", "dog"])
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("notes.txt", "no classes")
    with pytest.raises(UserError, match=rf"^{re.escape(str(empty))}: needs at least 2 class subfolders"):
        load_search_data(space, empty, tmp_path / "cache")  # named by the archive, not by the cache's copy


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        tf.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: _tar_with(p / "a.tar.gz", tarfile.TarInfo("../evil.png")), "outside the folder"),
    (lambda p: _tar_with(p / "a.tar.gz", tarfile.TarInfo("/tmp/evil.png")), "has an absolute path"),
    (lambda p: _tar_with(p / "a.tar.gz", tarfile.TarInfo("pets/x/../cls/0.png")), "has '..' in its path"),
    (lambda p: _tar_with(p / "a.tar.gz", _symlink("cat/link.png", "/etc/passwd")), "is a link"),
])
def test_hostile_archives_are_refused(tmp_path: Path, make, message):
    archive = make(tmp_path)
    with pytest.raises(UserError, match=message):
        load_search_data(parse_space(FOLDER_SPACE, "f.yaml"), archive, tmp_path / "cache")
    assert not (tmp_path / "evil.png").exists()


def test_hostile_zip_is_refused(tmp_path: Path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../evil.png", b"x")
    with pytest.raises(UserError, match="outside the folder"):
        load_search_data(parse_space(FOLDER_SPACE, "f.yaml"), archive, tmp_path / "cache")


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def test_folder_faults(tmp_path: Path):
    space = parse_space(FOLDER_SPACE, "f.yaml")
    with pytest.raises(UserError, match="at least 2 class subfolders"):
        load_search_data(space, make_folder(tmp_path / "one", classes=("cat",)), tmp_path / "c")
    broken = make_folder(tmp_path / "broken", n=0, broken=3)
    with pytest.raises(UserError, match="no readable images"):
        load_search_data(space, broken, tmp_path / "c")
    with pytest.raises(UserError, match="no such file"):
        load_search_data(space, tmp_path / "missing", tmp_path / "c")
    lonely = make_folder(tmp_path / "lonely", classes=("cat", "dog"), n=8)
    for f in list((lonely / "dog").glob("*.png"))[1:]:
        f.unlink()  # one dog: no stratified split can hold it out
    with pytest.raises(UserError, match=r"too few images in class 'dog' \(1 image\); every class needs at least 3"):
        load_search_data(space, lonely, tmp_path / "c")
    (tmp_path / "wrapped" / "only").mkdir(parents=True)
    with pytest.raises(UserError, match=r"wrapped: needs at least 2 class subfolders, .* \(found 1: only\)$"):
        load_search_data(space, tmp_path / "wrapped", tmp_path / "c")  # the folder named, not its lone one


def _empty_class(root: Path) -> Path:
    make_folder(root, n=4)
    (root / "bird").mkdir()
    return root


def _unreadable_class(root: Path) -> Path:
    make_folder(root, classes=("cat",), n=4)
    make_folder(root, classes=("dog",), n=0, broken=3)
    return root


CLASS_FOLDER_CASES = [  # (what the folder holds, what the one line says)
    (_empty_class, "the class folder 'bird' has no training image: it holds no image files"),
    (_unreadable_class, "the class folder 'dog' has no training image: its 3 files are not readable images, e.g."),
    (lambda r: make_folder(r, classes=("caf\u00e9", "cafe\u0301"), n=4),
     "differ only in how their Unicode is written (they look the same)"),
    (lambda r: make_folder(r, classes=("new\nline", "dog"), n=4), "the class folder 'new\\nline' has a control character"),
    (lambda r: make_folder(r, classes=(os.fsdecode(b"b\xffd"), "dog"), n=4), "the class folder 'b\\xffd' has a control"),
    (lambda r: make_folder(r, classes=("cat", "dog", "test"), n=4), "a class folder is named 'test', like a split"),
    (lambda r: make_folder(r, classes=("Train", "Test"), n=4), "a class folder is named 'Test', like a split"),
]


@pytest.mark.parametrize("make, expected", CLASS_FOLDER_CASES, ids=["empty", "unreadable", "nfc-nfd", "newline", "not utf-8", "test as a class", "Train and Test"])
def test_a_class_folder_that_cannot_be_a_class_is_one_line(make, expected, tmp_path: Path):
    """An empty class (with --no-check) got an output and was predicted; an unreadable one was
    'needs at least 2 classes (found 1)'; names alike on screen were two classes."""
    with pytest.raises(UserError) as raised:
        load_search_data(parse_space(FOLDER_SPACE, "f.yaml"), make(tmp_path / "f"), tmp_path / "c")
    assert expected in str(raised.value)


_CLASS_NAME = st.text(st.characters(codec="utf-8", exclude_characters="/\\\x00", categories=("L", "M", "N", "Cc", "Zs")),
                      min_size=1, max_size=4).filter(lambda n: not n.startswith(".") and n.strip() == n)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(classes=st.dictionaries(_CLASS_NAME, st.tuples(st.integers(0, 2), st.integers(0, 1)), min_size=2, max_size=4))
def test_any_class_folders_read_as_distinct_printable_classes_each_with_images_or_one_line(classes):
    """Each class the model will have an output for has a training image and a name that shows as
    written and as no other; else one line says which folder."""
    import tempfile

    from tuner.data.sources import read_image_folder
    from tuner.wording import printable

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "f"
        root.mkdir()
        for name, (good, broken) in classes.items():
            make_folder(root / "x", classes=(name,), n=good, broken=broken)
            (root / "x" / name).rename(root / name)
            (root / "x").rmdir()
        try:
            raw = read_image_folder(root, (8, 8, 1), Path(folder) / "cache")
        except UserError as e:
            assert str(e).startswith(str(root)) and "\n" not in str(e)
            return
    assert all(printable(c) == c for c in raw.class_names)
    assert len({unicodedata.normalize("NFC", c) for c in raw.class_names}) == len(raw.class_names)
    assert set(np.unique(raw.y_train)) == set(range(len(raw.class_names)))


@pytest.mark.parametrize("folders, found, hidden", [
    (["c at ü", "..dog"], "found 1: c at ü", "..dog"),  # a hidden class folder said, not silently lost
    ([".cats", ".dogs"], "found 0", ".cats, .dogs"),
    (["cat"], "found 1: cat", None),
])
def test_too_few_classes_names_what_the_folder_holds(tmp_path: Path, folders, found, hidden):
    space = parse_space(FOLDER_SPACE, "f.yaml")
    for name in folders:
        make_folder(tmp_path / "f", classes=(name,), n=2)
    with pytest.raises(UserError) as raised:
        load_search_data(space, tmp_path / "f", tmp_path / "c")
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'f'}: needs at least 2 class subfolders") and f"({found})" in message
    assert ("skipped as hidden" in message) == (hidden is not None) and (hidden is None or message.endswith(hidden))


def test_no_source_says_where_it_looked(tmp_path: Path, monkeypatch):
    import tuner.data.sources as sources

    monkeypatch.setattr(sources, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setattr(sources, "read_online", lambda name: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(UserError, match="no cifar10 data: looked in .*keras.* pass --data PATH"):
        load_search_data(load_space("cifar10"), None, tmp_path)


@pytest.mark.skipif(not (SHARED / "mnist.npz").is_file(), reason="needs ../shared/datasets/mnist.npz")
def test_real_mnist_copy():
    data, info = load_search_data(load_space("mnist"), SHARED / "mnist.npz", Path("/tmp/unused"))
    assert (info.n_train, info.n_val, info.n_test) == (48000, 12000, 10000)
    assert abs(float(np.concatenate([data.x_train, data.x_val]).mean()) - 33.318) < 0.05


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="needs dataset-fashion-mnist")
def test_real_fashion_mnist_from_debian():
    _, info = load_search_data(load_space("fashion_mnist"), None, Path("/tmp/unused"))
    assert info.source == "/usr/share/datasets/fashion-mnist" and info.n_test == 10000


@pytest.mark.parametrize("filters", [True, False], ids=["with tarfile filters", "a Python without them"])
def test_archives_extract_alike_with_or_without_tarfiles_filters(tmp_path: Path, monkeypatch, filters):
    """Python 3.10.0-3.10.11 and 3.11.0-3.11.3 have no `filter=`: there the member checks refuse
    what is hostile and the special permission bits are dropped, as the "data" filter does."""
    import stat

    from tuner.data.archives import extract

    if not filters:  # what such a Python's tarfile is: no filters, and a TypeError for `filter=`
        real = tarfile.TarFile.extractall

        def old_extractall(self, path=".", members=None, *, numeric_owner=False, **unexpected):
            if unexpected:
                raise TypeError(f"extractall() got an unexpected keyword argument {next(iter(unexpected))!r}")
            return real(self, path, members, numeric_owner=numeric_owner, filter="fully_trusted")

        monkeypatch.delattr(tarfile, "data_filter")
        monkeypatch.setattr(tarfile.TarFile, "extractall", old_extractall)
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, mode in (("cat/0.png", 0o4755), ("dog/0.png", 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = 1, mode
            tf.addfile(info, io.BytesIO(b"x"))
    out = extract(archive, tmp_path / "out")
    modes = {p.relative_to(out).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*.png")}
    assert set(modes) == {"cat/0.png", "dog/0.png"} and not modes["cat/0.png"] & (stat.S_ISUID | stat.S_ISGID)
    for hostile in (tarfile.TarInfo("../evil.png"), _symlink("cat/link.png", "/etc/passwd")):
        with pytest.raises(UserError):
            extract(_tar_with(tmp_path / f"h{hostile.name.count('/')}.tar.gz", hostile), tmp_path / f"o{id(hostile)}")
    assert not (tmp_path / "evil.png").exists()


@pytest.mark.parametrize("training, expected", [
    ({"validation_fraction": 0.0001}, "training.validation_fraction holds out 1 of 1"),
    ({"validation_fraction": 0.999}, "training.validation_fraction keeps 1 of 1"),
])
def test_a_split_too_small_for_every_class_names_its_setting(training, expected, tmp_path):
    base = load_space("digits").to_dict()
    base["training"].update(training)
    with pytest.raises(UserError, match=re.escape(expected) + r"\d* images, fewer than the 10 classes \(each needs one\)"):
        load_search_data(parse_space(base, "d.yaml"), None, tmp_path / "c")


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n_per_class=st.integers(2, 12), classes=st.integers(2, 6), fraction=st.floats(0.001, 0.999))
def test_a_stratified_split_holds_each_class_on_both_sides_or_says_why_in_one_line(n_per_class, classes, fraction):
    from tuner.data import _stratified

    y = np.repeat(np.arange(classes), n_per_class)
    try:
        kept, held = _stratified(y, fraction, 0, "validation")
    except UserError as e:
        assert str(e).startswith("cannot hold out a stratified validation split: ") and "\n" not in str(e)
        return
    assert len(kept) + len(held) == len(y) and set(y[held]) == set(y[kept]) == set(range(classes))


def _decode_in_child(folder: str, send) -> None:
    from tuner.data.images import decode_folder

    try:
        send.send(decode_folder(Path(folder), ["a", "b"], (4, 4, 1)).x.sum())
    except BaseException as e:  # the child's error, told to the test
        send.send(f"{type(e).__name__}: {e}")


def test_a_folder_large_enough_for_a_pool_decodes_in_a_daemonic_process_too(tmp_path: Path):
    """The checks' and the workers' processes are daemonic and may not start the decoding pool's
    processes ("daemonic processes are not allowed to have children" ended CIFAR-10's first search
    from its archive): there the folder decodes in the process itself, to the same pixels."""
    import multiprocessing

    from tuner.data.images import POOL_FROM, decode_folder

    for i in range(POOL_FROM + 1):
        name = tmp_path / "ab"[i % 2]
        name.mkdir(exist_ok=True)
        Image.new("L", (4, 4), color=i % 251).save(name / f"{i}.png")
    here = decode_folder(tmp_path, ["a", "b"], (4, 4, 1)).x.sum()  # with the pool: this process is no daemon
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_decode_in_child, args=(str(tmp_path), send), daemon=True)
    child.start()
    assert receive.poll(120) and receive.recv() == here
    child.join()


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_an_archive_with_a_wrapper_folder_is_named_by_the_archive_in_its_notes(tmp_path: Path, suffix):
    """The note said "/root/.cache/tune/archives/<key>: read the class folders of its lone
    subfolder pets/", a path the user never gave."""
    make_folder(tmp_path / "src" / "pets", n=8)
    archive = tmp_path / f"pets{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(archive, "w") as z:
            for f in sorted((tmp_path / "src").rglob("*.png")):
                z.write(f, f.relative_to(tmp_path / "src"))
    else:
        with tarfile.open(archive, "w:gz") as t:
            t.add(tmp_path / "src" / "pets", "pets")
    _, info = load_search_data(parse_space(FOLDER_SPACE, "f.yaml"), archive, tmp_path / "cache")
    assert info.notes == [f"{archive}: read the class folders of its lone subfolder pets/"]


@pytest.mark.parametrize("dogs, test_fraction, said", [
    (1, 0.25, "test split: too few images in class 'dog' (1 image); every class needs at least 3, one for each of "
              "training, validation and test"),
    (2, 0.25, "test split: too few images in class 'dog' (2 images); every class needs at least 3"),
    (3, 0.25, None),
    (3, 0.6, "validation split: too few images left after the test split in class 'dog' (1 image); every class "
             "needs at least 2, one for each of training and validation"),
])
def test_a_class_too_small_for_the_splits_is_named_with_its_count(dogs, test_fraction, said, tmp_path: Path):
    """A class of 2 images, 1 left after the test split, was said to have "only 1 image"."""
    space = parse_space({**FOLDER_SPACE, "training": {"max_epochs": 1, "test_fraction": test_fraction,
                                                      "validation_fraction": 0.3}}, "f.yaml")
    folder = make_folder(tmp_path / "f", n=8)
    for f in sorted((folder / "dog").glob("*.png"))[dogs:]:
        f.unlink()
    if said is None:
        data, _ = load_search_data(space, folder, tmp_path / "c")
        assert set(data.y_train) == set(data.y_val) == {0, 1}
        return
    with pytest.raises(UserError) as e:
        load_search_data(space, folder, tmp_path / "c")
    assert said in str(e.value) and "\n" not in str(e.value)


_INTERRUPTED_EXTRACTION = """
import sys, time
from pathlib import Path
from tuner import interrupts
from tuner.data import archives

def slow(archive, target):  # one file written, then the signal comes
    (target / "half.png").write_bytes(b"x")
    Path(sys.argv[3]).write_text("started")
    time.sleep(60)

archives._extract_into = slow
with interrupts.exiting_on_signals():
    archives.extract(Path(sys.argv[1]), Path(sys.argv[2]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_an_interrupted_extraction_leaves_no_partial_folder(signal_name, tmp_path: Path):
    """The temporary folder was removed in a `finally` that a signal's exit skips: a
    `.extract-*` folder of 3,242 files stayed in the cache for good."""
    import signal
    import subprocess
    import sys
    import time

    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(make_folder(tmp_path / "src"), arcname="src")
    cache, started = tmp_path / "cache", tmp_path / "started"
    cache.mkdir()
    # SIGINT as a terminal leaves it (a pytest-xdist worker ignores it, and a child inherits that).
    child = subprocess.Popen([sys.executable, "-c", _INTERRUPTED_EXTRACTION, str(archive), str(cache / "a"), str(started)],
                             cwd=Path(__file__).resolve().parents[2], stderr=subprocess.PIPE, text=True,
                             start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not started.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(getattr(signal, signal_name))
    _, err = child.communicate(timeout=60)
    assert child.returncode in (130, 143), err
    assert list(cache.iterdir()) == [], list(cache.iterdir())


@pytest.mark.parametrize("age_hours, kept", [(0, True), (23, True), (25, False), (24 * 30, False)])
def test_a_killed_extractions_folder_is_removed_a_day_on(age_hours, kept, tmp_path: Path):
    """A SIGKILL or a crash leaves its folder; the next extraction beside it removes it once it is
    a day old (no extraction runs that long)."""
    import time

    from tuner.data.archives import extract

    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(make_folder(tmp_path / "src"), arcname="src")
    cache = tmp_path / "cache"
    left = cache / ".extract-k1ll3d00"
    (left / "src").mkdir(parents=True)
    then = time.time() - age_hours * 3600
    os.utime(left, (then, then))
    extract(archive, cache / "a")
    assert (cache / "a" / "src").is_dir() and left.exists() == kept


@pytest.mark.parametrize("space_name, classes, shape", [
    ("digits", ("class0", "class1"), (8, 8)),  # two folders under a ten-class dataset's space
    ("digits", tuple("0123456789"), (8, 8)),  # the dataset's own names: the same as before
    ("cifar10", ("cat", "dog"), (32, 32)),  # named airplane and automobile in an export's labels.json
])
def test_a_folder_read_under_a_datasets_space_keeps_its_own_class_names(space_name, classes, shape, tmp_path: Path):
    """`--space digits --data pets/` named the folder's classes by the dataset's: 'class0' became
    '0', a cat 'airplane' under cifar10, with ten outputs for two classes."""
    folder = make_folder(tmp_path / "f", classes=classes, n=10, sizes=(shape,))
    data, split = load_search_data(load_space(space_name), folder, tmp_path / "c")
    assert data.class_names == split.class_names == list(classes) and data.n_classes == len(classes)
    assert sorted(set(data.y_train)) == list(range(len(classes)))
