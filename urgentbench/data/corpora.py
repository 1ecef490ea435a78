"""The corpus registry and the verification shared by corpora that pin every file's checksum.

``CORPORA`` maps a corpus name to its :class:`~urgentbench.data.base.Corpus` class
(imported lazily, so ``urgentbench data ls`` does not import every corpus module).
Third-party packages add corpora through the ``urgentbench.corpora`` entry-point group.

A checksum list is a CSV file with a header and the columns ``path``, ``sha256`` and
(optionally) ``size_bytes``; paths are relative to the corpus root and use ``/``.
:func:`verify_files` checks every listed file and returns *all* problems, so that a
corpus's ``prepare`` can report them in one :class:`~urgentbench.data.base.CorpusError`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from urgentbench.data.base import Corpus
from urgentbench.manifest import file_sha256
from urgentbench.registry import Registry

__all__ = ["CORPORA", "FileEntry", "read_checksums", "verify_files", "write_checksums"]

logger = logging.getLogger(__name__)

#: Corpus name -> Corpus class.
CORPORA: Registry[type[Corpus]] = Registry(
    "corpus", entry_point_group="urgentbench.corpora", plural="corpora"
)
CORPORA.register("dns2020", "urgentbench.data.dns2020:DNS2020")
CORPORA.register("masksr2-demo", "urgentbench.data.masksr2_demo:MaskSR2Demo")
CORPORA.register("vctk", "urgentbench.data.vctk:VCTK")
CORPORA.register("demand", "urgentbench.data.demand:DEMAND")
CORPORA.register("urgent2024", "urgentbench.data.urgent_official:URGENT2024")
CORPORA.register("urgent2025", "urgentbench.data.urgent_official:URGENT2025")
CORPORA.register("urgent2026-validation", "urgentbench.data.urgent_official:URGENT2026Validation")

#: The first bytes of a Git-LFS pointer file (what a clone without LFS holds instead of the audio).
_LFS_POINTER_PREFIX = b"version https://git-lfs"


@dataclass(frozen=True)
class FileEntry:
    """One file of a checksum list.

    Args:
        path: Path relative to the corpus root, with ``/`` separators.
        sha256: Expected hex digest (lower case).
        size: Expected size in bytes, if known.
    """

    path: str
    sha256: str
    size: int | None = None

    @classmethod
    def coerce(cls, item: FileEntry | Mapping[str, Any] | Sequence[Any]) -> FileEntry:
        """Accept a FileEntry, a mapping (``path``, ``sha256``, ``size``/``size_bytes``) or a tuple.

        Raises:
            ValueError: For anything else, or a missing path or checksum.
        """
        if isinstance(item, FileEntry):
            return item
        if isinstance(item, Mapping):
            path, sha, size = item.get("path"), item.get("sha256"), item.get("size", item.get("size_bytes"))
        elif isinstance(item, Sequence) and not isinstance(item, (str, bytes)) and len(item) in (2, 3):
            path, sha, size = item[0], item[1], item[2] if len(item) == 3 else None
        else:
            raise ValueError(f"not a checksum entry: {item!r}")
        if not path or not sha:
            raise ValueError(f"checksum entry without path or sha256: {item!r}")
        size = int(size) if size not in (None, "") else None
        return cls(path=str(path), sha256=str(sha).strip().lower(), size=size)


def read_checksums(source: str | os.PathLike | io.TextIOBase) -> list[FileEntry]:
    """Read a checksum CSV (``path,sha256[,size_bytes]`` with a header).

    Args:
        source: A path or an open text file.

    Raises:
        ValueError: For a missing column or a duplicate path (naming the file and line).
    """
    name = getattr(source, "name", str(source))
    if isinstance(source, (str, os.PathLike)):
        with open(source, newline="", encoding="utf-8") as f:
            return read_checksums(f)
    reader = csv.DictReader(source)
    missing = {"path", "sha256"} - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"{name}: checksum list lacks column(s) {', '.join(sorted(missing))}")
    entries: list[FileEntry] = []
    seen: set[str] = set()
    for row in reader:
        try:
            entry = FileEntry.coerce(row)
        except ValueError as exc:
            raise ValueError(f"{name}:{reader.line_num}: {exc}") from exc
        if entry.path in seen:
            raise ValueError(f"{name}:{reader.line_num}: duplicate path {entry.path!r}")
        seen.add(entry.path)
        entries.append(entry)
    return entries


def write_checksums(path: str | os.PathLike, entries: Iterable[FileEntry]) -> None:
    """Write a checksum CSV readable by :func:`read_checksums` (sorted by path)."""
    rows = sorted(entries, key=lambda e: e.path)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "sha256", "size_bytes"])
        for e in rows:
            writer.writerow([e.path, e.sha256, "" if e.size is None else e.size])


def _audio_issues(path: Path, sample_rate: int | None, channels: int | None) -> list[str]:
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [f"not readable as audio ({reason})"]
    issues = []
    if info.frames <= 0:
        issues.append("audio has no samples")
    if sample_rate is not None and info.samplerate != sample_rate:
        issues.append(f"sample rate {info.samplerate} Hz, expected {sample_rate} Hz")
    if channels is not None and info.channels != channels:
        issues.append(f"{info.channels} channels, expected {channels}")
    return issues


def _file_issues(
    root: Path, entry: FileEntry, check_audio: bool, sample_rate: int | None, channels: int | None
) -> list[str]:
    path = root / entry.path
    if not path.is_file():
        return [f"missing (expected sha256 {entry.sha256})"]
    issues = []
    actual_size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(len(_LFS_POINTER_PREFIX))
    if head == _LFS_POINTER_PREFIX and actual_size < 1024:
        return [
            f"a Git-LFS pointer file, not the audio itself (fetch the LFS objects, e.g. `git lfs pull`); "
            f"expected sha256 {entry.sha256}"
        ]
    if entry.size is not None and actual_size != entry.size:
        issues.append(f"{actual_size} bytes, expected {entry.size} (expected sha256 {entry.sha256})")
    else:
        actual = file_sha256(path)
        if actual != entry.sha256:
            issues.append(f"sha256 {actual}, expected {entry.sha256}")
    if check_audio:
        issues.extend(_audio_issues(path, sample_rate, channels))
    return issues


def verify_files(
    root: str | os.PathLike,
    entries: Iterable[FileEntry | Mapping[str, Any] | Sequence[Any]],
    *,
    check_audio: bool = True,
    sample_rate: int | None = None,
    channels: int | None = 1,
    progress: bool = False,
) -> list[str]:
    """Check every listed file under ``root`` and return all problems found.

    Each file is checked for existence, size, sha256 and (with ``check_audio``) that
    libsndfile can read it, it has samples, and it has ``sample_rate`` (when given) and
    ``channels`` (when given). A Git-LFS pointer in place of the file is named as such.

    Args:
        root: The corpus root the entries' paths are relative to.
        entries: :class:`FileEntry` objects (or mappings / tuples, see :meth:`FileEntry.coerce`).
        check_audio: Also open each file as audio.
        sample_rate: Expected rate in Hz (None: not checked).
        channels: Expected channel count (None: not checked).
        progress: Show a progress bar.

    Returns:
        One line per file with problems, ``"<path>: <problem>[; <problem>...]"``; a
        checksum problem names the expected sha256. Empty when everything matches.
    """
    root = Path(root)
    items = [FileEntry.coerce(e) for e in entries]
    problems = []
    for entry in tqdm(items, desc="verifying", unit="file", disable=not progress, leave=False):
        issues = _file_issues(root, entry, check_audio, sample_rate, channels)
        if issues:
            problems.append(f"{entry.path}: {'; '.join(issues)}")
    if problems:
        logger.debug("%d of %d files under %s have problems", len(problems), len(items), root)
    return problems
