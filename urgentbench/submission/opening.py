"""Opening a submission: a folder as it is, a zip archive extracted safely; its layout and README read."""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from urgentbench.audio import file_problem
from urgentbench.hashing import sha256_file
from urgentbench.submission.archive import (
    DEFAULT_MAX_FILES,
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_TOTAL_BYTES,
    SubmissionError,
    extract_archive,
    ignored,
)
from urgentbench.submission.readme import METADATA_VALUE_MAX, README_NAMES, cap, read_readme
from urgentbench.suites import Suite

#: The folder of the enhanced files in URGENT's submission format.
ENHANCED_DIR = "enhanced"


@dataclass
class Submission:
    """An opened submission (extracted when it was an archive).

    Args:
        source: The path given (a zip file or a folder).
        is_archive: True for a zip archive.
        root: The folder holding README.yaml and ``enhanced/`` (inside a wrapper folder if any).
        enhanced_dir: The folder of the enhanced files (``root/enhanced``, or ``root`` itself
            for a flat folder).
        extraction_dir: The fresh folder an archive was extracted into (removed by
            :meth:`cleanup`), None for a folder.
        metadata: README.yaml fields for the leaderboard (strings, length-capped).
        readme_problem: Why README.yaml is missing or unusable, if it is.
        layout_problems: Problems with the layout (e.g. no ``enhanced/`` folder in an archive).
        warnings: Notes that never block scoring.
        sha256: sha256 of the archive file (None for a folder).
        lossy_files: Outputs found by :func:`validate_submission` to hold lossy content
            (MP3, Ogg...), as shown in messages; recorded in the leaderboard metadata.
    """

    source: Path
    is_archive: bool
    root: Path
    enhanced_dir: Path
    extraction_dir: Path | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    readme_problem: str | None = None
    layout_problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sha256: str | None = None
    lossy_files: list[str] = field(default_factory=list)

    def relative(self, path: Path) -> str:
        """``path`` relative to the archive's top (or the folder given), as in the archive listing."""
        base = self.extraction_dir if self.extraction_dir is not None else self.source
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            return str(path)

    def display(self, path: Path) -> str:
        """How a file of the submission is named in messages (``archive.zip:enhanced/x.flac``)."""
        if self.extraction_dir is not None:
            return f"{self.source}:{self.relative(path)}"
        return str(path)

    @property
    def team(self) -> str | None:
        """The team name from README.yaml, if given."""
        return self.metadata.get("team") or None

    def leaderboard_metadata(self) -> dict[str, str]:
        """README fields plus where the outputs came from (archive name and sha256, or folder).

        ``lossy_outputs`` (only when there are any) says how many outputs held lossy
        content and were therefore scored as the participant's failures.
        """
        out = dict(self.metadata)
        if self.is_archive:
            out["submission"] = self.source.name
            out["submission_sha256"] = self.sha256 or ""
        else:
            out["outputs"] = str(self.source)
        if self.lossy_files:
            lossy = sorted(set(self.lossy_files))
            names = ", ".join(self.relative(Path(p)) for p in lossy)
            text = f"{len(lossy)} output(s) with lossy content, scored as failures: {names}"
            out["lossy_outputs"] = cap(text, METADATA_VALUE_MAX)
        return out

    def cleanup(self) -> None:
        """Remove the extraction folder (nothing for a folder submission)."""
        if self.extraction_dir is not None and self.extraction_dir.exists():
            shutil.rmtree(self.extraction_dir, ignore_errors=True)

    def __enter__(self) -> Submission:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not ignored(p.name))


def _locate_root(base: Path) -> Path:
    """``base``, or its single non-debris subfolder when that wraps the whole submission."""
    entries = _visible(base)
    has_layout = any(p.name in README_NAMES or p.name == ENHANCED_DIR for p in entries)
    if not has_layout and len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return base


def open_submission(
    path: str | os.PathLike,
    suite: Suite,
    *,
    workdir: str | os.PathLike,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> Submission:
    """Open a submission: a folder as it is, a zip archive extracted safely under ``workdir``.

    Args:
        path: A zip archive in URGENT's format (README.yaml + ``enhanced/<id>.flac``,
            optionally inside one wrapper folder) or a folder (same layout, or the files
            directly in it).
        suite: The suite it is for (names the extraction folder).
        workdir: Parent of the fresh extraction folder of an archive.
        max_total_bytes: Cap on the archive's total uncompressed size.
        max_files: Cap on the archive's number of files.
        max_ratio: Cap on one entry's compression ratio.

    Returns:
        The :class:`Submission`; call :meth:`Submission.cleanup` (or use it as a context
        manager) to remove the extracted files.

    Raises:
        SubmissionError: When the path does not exist or is neither a folder nor a zip.
        UnsafeArchiveError: When an archive is refused.
    """
    source = Path(path).expanduser()
    if not source.is_dir() and os.path.lexists(source):  # a FIFO or device is never opened
        problem = file_problem(source)
        if problem:
            raise SubmissionError(f"{source}: {problem.replace('not a regular file', 'not a folder or a zip archive')}")
    if source.is_dir():
        root = _locate_root(source.resolve())
        sub = Submission(source=source.resolve(), is_archive=False, root=root, enhanced_dir=root)
    elif source.is_file():
        if not zipfile.is_zipfile(source):
            raise SubmissionError(f"{source}: neither a folder nor a zip archive")
        safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", suite.name)
        extracted = extract_archive(
            source, workdir, max_total_bytes=max_total_bytes, max_files=max_files, max_ratio=max_ratio,
            prefix=f"{safe_name}-",
        )
        root = _locate_root(extracted)
        sub = Submission(
            source=source.resolve(), is_archive=True, root=root, enhanced_dir=root, extraction_dir=extracted,
            sha256=sha256_file(source),
        )
    else:
        raise SubmissionError(f"{source}: submission not found")
    if (root / ENHANCED_DIR).is_dir():
        sub.enhanced_dir = root / ENHANCED_DIR
    elif sub.is_archive:
        sub.layout_problems.append(
            f"{source}: no {ENHANCED_DIR}/ folder; URGENT's format is README.yaml + {ENHANCED_DIR}/<id>.flac"
        )
    readme, sub.metadata, reason = read_readme(root)
    flat_folder = not sub.is_archive and sub.enhanced_dir == root
    if reason and not (readme is None and flat_folder):  # a plain folder of outputs needs no README
        sub.readme_problem = f"{sub.display(readme or root / README_NAMES[0])}: {reason}"
        if not sub.is_archive:
            sub.warnings.append(sub.readme_problem)
    return sub

