"""Safe extraction of .zip and .tar(.gz) archives of image folders.

A member that would land outside the target folder (an absolute path, `..`, or a link) is
refused before anything is written. Extraction goes to a temporary folder that is renamed
into place, so an interrupted run never leaves a half-extracted cache behind.
"""

from __future__ import annotations

import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from tuner.errors import UserError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _check_member(archive: Path, name: str, is_link: bool) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if is_link:
        raise UserError(f"{archive}: member '{name}' is a link; archives with links are refused")
    if pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", name):
        raise UserError(f"{archive}: member '{name}' would land outside the folder; refused")


def _extract_zip(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            mode = info.external_attr >> 16
            _check_member(archive, info.filename, stat.S_ISLNK(mode))
        zf.extractall(target)


def _extract_tar(archive: Path, target: Path) -> None:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for m in members:
            _check_member(archive, m.name, m.issym() or m.islnk())
            if not (m.isfile() or m.isdir()):
                raise UserError(f"{archive}: member '{m.name}' is not a file or folder; refused")
        tf.extractall(target, members=members, filter="data")


def extract(archive: Path, target: Path) -> Path:
    """Extract `archive` into `target` once; later calls reuse the folder."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        if archive.name.lower().endswith(".zip"):
            _extract_zip(archive, tmp)
        else:
            _extract_tar(archive, tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not target.is_dir():  # else another worker extracted it first: use theirs
                raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        raise UserError(f"{archive}: cannot extract ({type(e).__name__}: {e})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
