"""Archive safety: an untrusted zip is checked entry by entry, then extracted under caps.

:func:`extract_archive` refuses unsafe entries (absolute paths, ``..`` components,
symbolic links and other special files, duplicate names, encrypted entries) and archives
that are too large, hold too many files or compress suspiciously well, before writing
anything; it then extracts into a fresh folder of its own, enforcing the same limits on
the decompressed bytes (a zip bomb can lie about sizes in its headers).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from urgentbench.errors import squash
from urgentbench.pipeline.errors import RunError

#: One logger for the package: users see "urgentbench.submission" whichever module speaks.
logger = logging.getLogger(__package__)

#: Default cap on the total uncompressed size of an archive (2 GiB).
DEFAULT_MAX_TOTAL_BYTES = 2 * 1024**3
#: Default cap on the number of files in an archive.
DEFAULT_MAX_FILES = 20_000
#: Default cap on the uncompressed/compressed size ratio of one entry. FLAC barely
#: compresses further; deflate's own ceiling is about 1030:1.
DEFAULT_MAX_RATIO = 200.0
#: Entries smaller than this are exempt from the ratio cap (a tiny README compresses well).
RATIO_EXEMPT_BYTES = 1 << 20
_IGNORED_DIRS = {"__MACOSX"}
_IGNORED_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}
_CHUNK = 1 << 20


class SubmissionError(RunError):
    """A submission that cannot be scored; ``problems`` holds one line per problem."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


class UnsafeArchiveError(SubmissionError):
    """An archive refused for safety (path escape, link, size, file count, compression ratio)."""


def _refuse(archive: Path, entry: str, what: str) -> UnsafeArchiveError:
    """The one-line refusal of an archive entry."""
    return UnsafeArchiveError(f"{archive}: entry {entry!r} {what}; refused")


def ignored(name: str) -> bool:
    """Whether a file or folder name is operating-system debris to skip."""
    return name in _IGNORED_DIRS or name in _IGNORED_FILES or name.startswith("._")


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]


def _entry_parts(archive: Path, info: zipfile.ZipInfo) -> tuple[str, ...]:
    """Safe path components of a zip entry.

    Raises:
        UnsafeArchiveError: For an absolute path, a ``..`` component or control characters.
    """
    raw = info.filename
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise _refuse(archive, raw, "has control characters in its name")
    name = raw.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise _refuse(archive, raw, "has an absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _refuse(archive, raw, "has a '..' component")
    return parts


def _plan_extraction(
    archive: Path, infos: list[zipfile.ZipInfo], max_total_bytes: int, max_files: int, max_ratio: float
) -> list[_Entry]:
    """Check every entry of an archive before anything is written.

    Returns:
        The regular files to extract (directories and ignored debris left out).

    Raises:
        UnsafeArchiveError: Naming the archive and the first offending entry.
    """
    files: list[_Entry] = []
    seen: dict[str, str] = {}  # case-folded path -> "file" or "dir"
    total = 0
    for info in infos:
        parts = _entry_parts(archive, info)
        if not parts:
            continue
        shown = info.filename
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise _refuse(archive, shown, "is a symbolic link")
        kind = stat.S_IFMT(mode)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise _refuse(archive, shown, "is not a regular file or folder")
        is_dir = info.is_dir() or kind == stat.S_IFDIR
        # every ancestor is a folder; a path may not be both a file and a folder
        for depth in range(1, len(parts)):
            key = "/".join(parts[:depth]).casefold()
            if seen.setdefault(key, "dir") != "dir":
                raise _refuse(archive, shown, "lies under a file of the same name")
        key = "/".join(parts).casefold()
        if is_dir:
            if seen.setdefault(key, "dir") != "dir":
                raise _refuse(archive, shown, "is both a file and a folder")
            continue
        if key in seen:
            raise _refuse(archive, shown, "is a duplicate name")
        seen[key] = "file"
        if any(ignored(p) for p in parts):
            continue
        if info.flag_bits & 0x1:
            raise _refuse(archive, shown, "is encrypted")
        if len(files) >= max_files:
            raise UnsafeArchiveError(
                f"{archive}: more than {max_files} files (limit reached at entry {shown!r}); refused"
            )
        total += info.file_size
        if total > max_total_bytes:
            raise UnsafeArchiveError(
                f"{archive}: declared uncompressed size exceeds the limit of {max_total_bytes} bytes "
                f"at entry {shown!r}; refused"
            )
        if info.file_size > RATIO_EXEMPT_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            what = f"declares a compression ratio of {ratio:.0f}:1, above the limit of {max_ratio:.0f}:1"
            raise _refuse(archive, shown, what)
        files.append(_Entry(info, parts))
    return files


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` resolves to a location inside ``folder`` (already resolved)."""
    try:
        path.resolve().relative_to(folder)
    except ValueError:
        return False
    return True


_ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError)


def _corrupt(archive: Path, shown: str, exc: BaseException) -> SubmissionError:
    reason = squash(str(exc)) or type(exc).__name__
    return SubmissionError(f"{archive}: entry {shown!r} cannot be extracted ({reason})")


def _open_entry(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
    """``zf.open(info)``; a bad header or unsupported method becomes :class:`SubmissionError`."""
    try:
        return zf.open(info)
    except _ZIP_READ_ERRORS as exc:
        raise _corrupt(archive, info.filename, exc) from exc


def _read_entry(archive: Path, src: Any, shown: str) -> bytes:
    """The next chunk of an entry; a CRC or decompression failure becomes :class:`SubmissionError`."""
    try:
        return src.read(_CHUNK)
    except _ZIP_READ_ERRORS as exc:
        raise _corrupt(archive, shown, exc) from exc


def _copy_entry(
    archive: Path,
    zf: zipfile.ZipFile,
    entry: _Entry,
    dest: Path,
    total: int,
    max_total_bytes: int,
    max_ratio: float,
) -> int:
    """Stream one entry into ``dest`` with the caps enforced on the real bytes; returns the new total.

    Raises:
        UnsafeArchiveError: When the entry outgrows its declared size, the total cap or the ratio cap.
        SubmissionError: When the entry is corrupt or cannot be decompressed.
    """
    info = entry.info
    shown = info.filename
    target = dest.joinpath(*entry.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not _inside(target.parent, dest):
        raise _refuse(archive, shown, "would be written outside the extraction folder")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError as exc:
        raise _refuse(archive, shown, "is a duplicate name") from exc
    written = 0
    with os.fdopen(fd, "wb") as out, _open_entry(archive, zf, info) as src:
        while chunk := _read_entry(archive, src, shown):
            written += len(chunk)
            total += len(chunk)
            if written > info.file_size:
                declared = info.file_size
                raise _refuse(archive, shown, f"decompresses to more than its declared {declared} bytes")
            if total > max_total_bytes:
                raise UnsafeArchiveError(
                    f"{archive}: uncompressed size exceeds the limit of {max_total_bytes} bytes "
                    f"at entry {shown!r}; refused"
                )
            if written > RATIO_EXEMPT_BYTES and written > max_ratio * max(info.compress_size, 1):
                raise _refuse(archive, shown, f"decompresses beyond a ratio of {max_ratio:.0f}:1")
            out.write(chunk)
    if written != info.file_size:
        raise SubmissionError(
            f"{archive}: entry {shown!r} holds {written} bytes but declares {info.file_size}; corrupt archive"
        )
    return total


def extract_archive(
    archive: str | os.PathLike,
    workdir: str | os.PathLike,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    prefix: str = "submission-",
) -> Path:
    """Safely extract an untrusted zip archive into a fresh folder created under ``workdir``.

    Every entry is checked before anything is written; the caps are then enforced again
    on the decompressed bytes. On any failure the fresh folder is removed.

    Args:
        archive: The zip file.
        workdir: Parent of the extraction folder (created if needed).
        max_total_bytes: Cap on the total uncompressed size.
        max_files: Cap on the number of files.
        max_ratio: Cap on one entry's uncompressed/compressed size ratio (entries under
            1 MiB are exempt).
        prefix: Name prefix of the fresh folder.

    Returns:
        The fresh folder holding the extracted files (never a folder that existed before).

    Raises:
        UnsafeArchiveError: For an unsafe entry or an archive over a cap, naming both.
        SubmissionError: For a file that is not a readable zip archive or a corrupt entry.
    """
    archive = Path(archive)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise SubmissionError(f"{archive}: not a readable zip archive ({exc})") from exc
    with zf:
        entries = _plan_extraction(archive, zf.infolist(), max_total_bytes, max_files, max_ratio)
        Path(workdir).mkdir(parents=True, exist_ok=True)
        dest = Path(tempfile.mkdtemp(prefix=prefix, dir=workdir)).resolve()
        try:
            total = 0
            for entry in entries:
                total = _copy_entry(archive, zf, entry, dest, total, max_total_bytes, max_ratio)
        except BaseException as exc:
            shutil.rmtree(dest, ignore_errors=True)
            if isinstance(exc, OSError):
                raise SubmissionError(f"{archive}: extraction failed ({exc})") from exc
            raise
    logger.debug("extracted %d files of %s into %s", len(entries), archive, dest)
    return dest

