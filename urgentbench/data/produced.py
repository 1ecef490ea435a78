"""Helpers for corpora that are *produced* from an archive at prepare time (VCTK, DEMAND).

Such a corpus cannot pin every file it uses in advance (the official archive is pinned,
its members are not published with checksums, and resampling makes new files). Instead
``prepare``:

1. verifies the archive against its pin (size and sha256 or the provider's md5);
2. extracts (and converts) only the files the suites use, each written atomically;
3. records the sha256 and size of every file it produced in ``<root>/FILES.csv`` and
   of every source file it read in ``<root>/SOURCES.csv`` (both readable by
   :func:`~urgentbench.data.corpora.read_checksums`).

:func:`verify_produced` checks a prepared root against ``FILES.csv`` later on; every
missing or changed file is reported with its path and expected sha256.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from urgentbench.data.base import CorpusError
from urgentbench.data.corpora import FileEntry, read_checksums, verify_files, write_checksums

__all__ = [
    "PRODUCED_FILES",
    "SOURCE_FILES",
    "archive_problems",
    "atomic_write_bytes",
    "entry_for",
    "file_digests",
    "open_zip",
    "verify_produced",
    "write_records",
]

logger = logging.getLogger(__name__)

#: Per-file record of what ``prepare`` produced, relative to the corpus root.
PRODUCED_FILES = "FILES.csv"
#: Per-file record of the source files ``prepare`` read (archive members or local files).
SOURCE_FILES = "SOURCES.csv"


def file_digests(path: Path, algorithms: Iterable[str]) -> dict[str, str]:
    """Hex digests of a file for each hashlib algorithm name, in one read."""
    hashers = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            for h in hashers.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}


def archive_problems(
    path: Path, *, size: int | None, sha256: str | None = None, md5: str | None = None
) -> list[str]:
    """Check an archive against its pin; return every mismatch (empty when it matches).

    The size is checked first (cheap); the digests only when the size matches.

    Args:
        path: The archive.
        size: Expected size in bytes (None: not checked).
        sha256: Expected sha256 (None: not checked).
        md5: Expected md5, as some providers (Zenodo) publish (None: not checked).
    """
    expected = f"expected sha256 {sha256}" if sha256 else f"expected md5 {md5}" if md5 else "no digest pinned"
    if not path.is_file():
        return [f"{path}: missing ({expected})"]
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return [f"{path}: {actual_size} bytes, expected {size} ({expected})"]
    wanted = [a for a, v in (("sha256", sha256), ("md5", md5)) if v]
    if not wanted:
        return []
    digests = file_digests(path, wanted)
    problems = []
    for algorithm, value in (("sha256", sha256), ("md5", md5)):
        if value and digests[algorithm] != value.lower():
            problems.append(f"{path}: {algorithm} {digests[algorithm]}, expected {value.lower()}")
    return problems


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def entry_for(root: Path, relative: str) -> FileEntry:
    """sha256 and size of ``root/relative`` as a checksum entry."""
    path = root / relative
    return FileEntry(path=relative, sha256=file_digests(path, ["sha256"])["sha256"], size=path.stat().st_size)


def write_records(root: Path, produced: Iterable[FileEntry], sources: Iterable[FileEntry]) -> None:
    """Write ``FILES.csv`` (produced files) and ``SOURCES.csv`` (files read) under ``root``."""
    write_checksums(root / PRODUCED_FILES, produced)
    write_checksums(root / SOURCE_FILES, sources)


def verify_produced(
    corpus: str, root: str | os.PathLike, *, sample_rate: int | None = None, check_audio: bool = False
) -> list[FileEntry]:
    """Check every file listed in ``<root>/FILES.csv``.

    Args:
        corpus: Corpus name, for the error.
        root: The prepared corpus root.
        sample_rate: Expected rate of the audio files (with ``check_audio``).
        check_audio: Also open each audio file (``.flac`` / ``.wav``) with libsndfile.

    Returns:
        The entries of the record.

    Raises:
        CorpusError: When the record is missing, or listing every missing or changed file
            with its expected sha256 (the fix: prepare the corpus again).
    """
    root = Path(root)
    record = root / PRODUCED_FILES
    if not record.is_file():
        raise CorpusError(
            corpus, [f"{record}: missing; prepare the corpus again: urgentbench data prepare {corpus}"]
        )
    entries = read_checksums(record)
    audio = [e for e in entries if e.path.endswith((".flac", ".wav"))]
    other = [e for e in entries if not e.path.endswith((".flac", ".wav"))]
    problems = verify_files(root, audio, check_audio=check_audio, sample_rate=sample_rate, channels=1)
    problems += verify_files(root, other, check_audio=False)
    if problems:
        problems.append(f"fix: urgentbench data prepare {corpus} (again)")
        raise CorpusError(corpus, problems)
    return entries


def open_zip(path: Path, corpus: str) -> zipfile.ZipFile:
    """Open a zip archive, turning a broken file into a :class:`CorpusError` naming it."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CorpusError(corpus, [f"{path}: not a readable zip archive ({exc})"]) from exc


def safe_member_name(name: str) -> str | None:
    """The member name as a relative POSIX path, or None when it is absolute or contains ``..``."""
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or "\\" in name:
        return None
    return p.as_posix()
