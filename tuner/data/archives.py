"""Safe extraction of .zip and .tar(.gz) archives of image folders.

A member that would land outside the target folder (an absolute path, `..`, or a link) is
refused before anything is written, and so is an archive whose members add up to more than
the limits (`TUNE_MAX_EXTRACT_BYTES`, `TUNE_MAX_EXTRACT_FILES`) or than the free disk: the
sizes are the archive's own headers, which extraction cannot exceed. Extraction goes to a temporary folder that is renamed
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

from tuner import config, interrupts
from tuner.errors import UserError
from tuner.paths import remove_stale

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _check_member(archive: Path, name: str, is_link: bool) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if is_link:
        raise UserError(f"{archive}: member '{name}' is a link; archives with links are refused")
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", name):
        raise UserError(f"{archive}: member '{name}' has an absolute path (it would land outside the folder); refused")
    if ".." in pure.parts:  # refused whether or not it climbs out: a path is checked as written, not resolved
        raise UserError(f"{archive}: member '{name}' has '..' in its path (it could land outside the folder); refused")


def _check_size(archive: Path, sizes: list[int], target: Path) -> None:
    max_bytes, max_files = config.extract_limits()
    total = sum(sizes)
    if len(sizes) > max_files:
        raise UserError(f"{archive}: {len(sizes)} members, more than the limit of {max_files} "
                        f"(set TUNE_MAX_EXTRACT_FILES to raise it)")
    if total > max_bytes:
        raise UserError(f"{archive}: would extract {_gib(total)}, more than the limit of {_gib(max_bytes)} "
                        f"(set TUNE_MAX_EXTRACT_BYTES to raise it)")
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if total > free:
        raise UserError(f"{archive}: would extract {_gib(total)} but {existing} has {_gib(free)} free")


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB ({n} bytes)"


def _zip_members(archive: Path, target: Path) -> None:
    """Check every member of a zip before anything is written."""
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            _check_member(archive, info.filename, stat.S_ISLNK(info.external_attr >> 16))
        _check_size(archive, [i.file_size for i in infos], target)


def _tar_members(archive: Path, tf: tarfile.TarFile, target: Path) -> list[tarfile.TarInfo]:
    """Check every member of a tar before anything is written (its index is the whole archive,
    so reading stops past the count limit)."""
    _, max_files = config.extract_limits()
    members = []
    for member in tf:
        members.append(member)
        if len(members) > max_files:
            raise UserError(f"{archive}: more than {max_files} members (set TUNE_MAX_EXTRACT_FILES to raise it)")
        _check_member(archive, member.name, member.issym() or member.islnk())
        if not (member.isfile() or member.isdir()):
            raise UserError(f"{archive}: member '{member.name}' is not a file or folder; refused")
    _check_size(archive, [m.size for m in members], target)
    return members


def _check_archive(archive: Path, target: Path) -> None:
    if archive.name.lower().endswith(".zip"):
        _zip_members(archive, target)
    else:
        with tarfile.open(archive) as tf:
            _tar_members(archive, tf, target)


def _extract_into(archive: Path, target: Path) -> None:
    if archive.name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(target)
    else:
        with tarfile.open(archive) as tf:
            members = _tar_members(archive, tf, target)
            if hasattr(tarfile, "data_filter"):
                tf.extractall(target, members=members, filter="data")
                return
            # Python before 3.10.12 / 3.11.4 has no extraction filters: the member checks above
            # refuse links, devices and paths out; what the "data" filter also does is drop
            # set-uid and other special permission bits.
            for member in members:
                member.mode &= 0o755
            tf.extractall(target, members=members)


_PARTIAL = ".extract-"  # an extraction's temporary folder, renamed into place when whole


def extract(archive: Path, target: Path) -> Path:
    """Extract `archive` into `target` once (every member checked before anything is written);
    later calls reuse the folder."""
    if target.is_dir():
        return target
    try:
        _check_archive(archive, target)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        raise UserError(f"{archive}: cannot read the archive ({type(e).__name__}: {e})") from None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_PARTIAL, dir=target.parent))
    except OSError as e:
        raise UserError(f"{archive}: cannot extract into {target.parent} ({e.strerror}); set TUNE_CACHE_DIR to a "
                        f"writable folder") from None
    # A killed extraction (SIGKILL, a crash) leaves its folder; a day on, no extraction still uses it.
    remove_stale([p for p in target.parent.glob(f"{_PARTIAL}*") if p != tmp])
    try:
        with interrupts.removed_on_exit(tmp):  # a signal's exit skips the `finally` below
            _extract_into(archive, tmp)
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
