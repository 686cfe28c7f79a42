"""What a study name may be, the check that every artifact path stays in its folder, and
checks that a folder can be written before any work starts.

A study name becomes a folder under the results folder, so it is one plain path component:
no separator, no `..`, nothing hidden, short enough for any file system.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

from tuner.errors import UserError

MAX_NAME = 100
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_RULE = f"1-{MAX_NAME} characters: letters, digits, '.', '_' and '-', starting with a letter or digit, no '..'"


def name_problem(name: object) -> str | None:
    """Why `name` cannot name a study, or None."""
    if not isinstance(name, str) or not name:
        return "empty"
    if len(name) > MAX_NAME:
        return f"{len(name)} characters, more than {MAX_NAME}"
    if ".." in name:
        return "it holds '..'"
    if not _NAME.fullmatch(name):
        return "it starts with or holds a character outside the rule"
    return None


def check_study_name(name: object, what: str = "study name") -> str:
    why = name_problem(name)
    if why is not None:
        shown = name if isinstance(name, str) and len(name) <= 60 else f"{str(name)[:60]}..."
        raise UserError(f"{what} {shown!r} is not allowed: {why} ({NAME_RULE})")
    return name  # type: ignore[return-value]


MAX_COMPONENT, MAX_PATH = 255, 4096  # bytes: Linux's NAME_MAX and PATH_MAX


def length_problem(path: str | os.PathLike[str]) -> str | None:
    """Why no file system would take `path` for its length, or None (checked before any OS call,
    whose error would name the whole path)."""
    data = os.fsencode(path)
    longest = max((len(part) for part in data.split(b"/")), default=0)
    if longest > MAX_COMPONENT:
        return f"a name in it is {longest:,} bytes long; a file system takes at most {MAX_COMPONENT}"
    if len(data) > MAX_PATH:
        return f"it is {len(data):,} bytes long; a path may be at most {MAX_PATH}"
    return None


FILE_NAME_ROOM = 64  # characters of the longest name `tune` writes in a folder (a temporary one included)


def check_room_for_files(folder: Path, option: str) -> None:
    """One line, before any work, if the files `tune` would write in `folder` would pass the
    system's limits (a folder path near PATH_MAX: its checks ran, then its picture failed)."""
    if why := length_problem(Path(os.path.abspath(folder)) / ("x" * FILE_NAME_ROOM)):
        from tuner.wording import clipped

        raise UserError(f"{option} {clipped(str(folder))}: too long a path for the files written in it ({why})")


def loop_error(error: BaseException) -> str | None:
    """What a loop of symbolic links met by a library (matplotlib's cache under a looping `~`)
    says, or None for any other error: Python raises RuntimeError for it before 3.13."""
    if isinstance(error, RuntimeError) and str(error).startswith("Symlink loop"):
        return str(error)
    if isinstance(error, OSError) and error.errno == errno.ELOOP:
        return f"{error.strerror}: {error.filename}"
    return None


def loop_problem(path: str | bytes | os.PathLike) -> str | None:
    """"a loop of symbolic links" if following `path`'s links never ends, else None. Asked of the
    system (`loop/..` is a loop to it, not to Python's `resolve`) and of `resolve`."""
    for follow in (os.stat, lambda p: Path(os.fsdecode(p)).resolve()):
        try:
            follow(path)
        except RuntimeError:  # Python before 3.13 says a loop so
            return "a loop of symbolic links"
        except OSError as e:
            if e.errno == errno.ELOOP:  # the system says the same of a chain of over 40 links
                return "a loop of symbolic links (or a chain of them too long to follow)"
    return None


def resolved(path: Path) -> Path:
    """`path` with its links followed and `..` taken away; one line for a loop of links."""
    if why := loop_problem(path):
        raise UserError(f"{path}: {why}")
    return path.resolve()


def inside(root: Path, path: Path) -> Path:
    """`path` if it resolves (links followed) to a place inside `root`; else one line."""
    base, target = resolved(root), resolved(path)
    if target != base and base not in target.parents:
        raise UserError(f"{path} resolves to {target}, outside the results folder {base}; refused")
    return path


def outside_data(folder: Path, data: Path | None, what: str, option: str) -> None:
    """One line if `folder`, to be written, lies in the image folder `data`: its files would be
    read as images of a class named after it, on this run or the next."""
    if data is None or not data.is_dir():
        return
    images, target = resolved(data), resolved(folder)
    if target == images or images in target.parents:
        raise UserError(f"the {what} {folder} lies in the image folder --data {data}, where its files would be read "
                        f"as images; choose another {option}")


def check_can_write(folder: Path, what: str = "folder") -> None:
    """One line if `folder` could not be created or written, without creating anything."""
    existing = folder
    while not os.path.exists(existing) and existing != existing.parent:  # past PATH_MAX: not there
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot use the {what} {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to {existing} (read-only or not yours); choose another {what}")


def make_folder(folder: Path) -> Path:
    """`folder` and its missing parents; if one cannot be made (a path past PATH_MAX, a full disk),
    none is left made."""
    created = _outermost_missing(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise UserError(f"cannot create the folder {folder}: {e.strerror or e}") from None
    return folder


def _outermost_missing(folder: Path) -> Path | None:
    """The first of `folder`'s parents (or itself) that does not exist: what making it creates."""
    return next((p for p in reversed((folder, *folder.parents)) if not os.path.exists(p)), None)


@contextlib.contextmanager
def new_folder(folder: Path) -> Iterator[Path]:
    """`make_folder` for work that fills it: if the work raises, or a Ctrl-C or SIGTERM ends the
    command, the folders this call created go with what the work wrote in them; a folder that was
    there stays, with the whole files written so far."""
    from tuner import interrupts

    folder = resolved(folder)  # `new/../out` would make `new` and `out`, and undo only `new`
    created = _outermost_missing(folder)
    check_can_write(folder)  # a read-only folder that is there: said now, not after the work
    make_folder(folder)
    if created is None:
        yield folder
        return
    with interrupts.removed_on_exit(created):
        try:
            yield folder
        except BaseException:
            shutil.rmtree(created, ignore_errors=True)
            raise


def replace_folder(built: Path, target: Path) -> None:
    """Put the complete folder `built` at `target` in one rename; an old `target` is moved
    aside first and deleted after, so `target` is always whole or absent, never half-written."""
    import tempfile

    # A fresh name of its own (`.tune-old-<pid>` replaced a user's empty folder of that name).
    old = Path(tempfile.mkdtemp(prefix=".tune-old-", dir=target.parent))
    if target.exists():
        target.rename(old)  # over its own empty folder
    try:
        built.rename(target)
    except OSError:
        if old.exists() and not target.exists():
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def atomic(path: Path, write: Callable[[Path], Any], suffix: str = "") -> None:
    """`write(tmp)` to a temporary name beside `path`, then rename it into place: `path` is
    whole or as it was, whatever stops the write (a full disk, a signal, a kill; a kill leaves
    only the hidden temporary file)."""
    from tuner import interrupts

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{suffix}")
    if tmp.is_symlink():
        tmp.unlink()  # a link planted at the temporary name is not written through
    try:
        with interrupts.removed_on_exit(tmp):  # a Ctrl-C's exit leaves at once, past this `finally`
            write(tmp)
            try:
                os.replace(tmp, path)
            except OSError as e:  # said of the file it was to be (a folder in its way), not of `tmp`
                raise type(e)(e.errno, e.strerror, str(path)) from None
    finally:
        remove_path(tmp)


def remove_path(path: Path) -> None:
    """Remove a file, a link or a folder with what it holds, if there."""
    try:
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.exists():
            shutil.rmtree(path, ignore_errors=True)
    except OSError:  # on the way out (a signal's exit): what cannot go stays
        pass


STALE_SECONDS = 24 * 3600  # a folder a killed command left behind is this old before it is removed


def remove_stale(folders: list[Path], keep: set[Path] = frozenset()) -> None:
    """Delete folders a killed command left half-written (none still in use is that old)."""
    import time

    for folder in folders:
        try:
            if folder not in keep and time.time() - folder.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass
