"""Outside submissions in URGENT's format: check everything first, then score.

A submission is a zip archive (or a folder) holding::

    README.yaml          team name, data used, pre-trained models used, ...
    enhanced/<id>.flac   one mono file per utterance, at the utterance's rate and exactly
                         as long as its noisy input (``.wav`` is accepted too)

A single top-level folder wrapping both is tolerated, and macOS debris (``__MACOSX/``,
``.DS_Store``, ``._*``) is ignored. A plain folder of ``<id>.flac`` files (the layout of
``urgentbench score --outputs DIR``) is a submission without README.

Archives are untrusted: :func:`open_submission` refuses unsafe entries (absolute paths,
``..`` components, symbolic links and other special files, duplicate names) and archives
that are too large, hold too many files or compress suspiciously well, before writing
anything; it then extracts into a fresh folder of its own, enforcing the same limits
while decompressing (a zip bomb can lie about sizes in its headers).

:func:`validate_submission` reports every problem at once (missing, extra and duplicate
outputs, wrong rate, channels or length, unreadable or non-finite audio, a missing or
malformed README.yaml), one line per problem naming the file. :func:`score_submission`
opens, validates (aborting before any scoring when ``strict``), scores with the runner
and removes the extracted files.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from urgentbench.manifest import Utterance
from urgentbench.runner import AUDIO_EXTENSIONS, MetricSpec, ProducerSpec, RunError, RunReport, input_paths
from urgentbench.suites import Suite

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_FILES",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_TOTAL_BYTES",
    "Submission",
    "SubmissionError",
    "SubmissionRun",
    "UnsafeArchiveError",
    "expected_length",
    "extract_archive",
    "open_submission",
    "score_submission",
    "validate_submission",
]

#: Default cap on the total uncompressed size of an archive (2 GiB).
DEFAULT_MAX_TOTAL_BYTES = 2 * 1024**3
#: Default cap on the number of files in an archive.
DEFAULT_MAX_FILES = 20_000
#: Default cap on the uncompressed/compressed size ratio of one entry. FLAC barely
#: compresses further; deflate's own ceiling is about 1030:1.
DEFAULT_MAX_RATIO = 200.0
#: Entries smaller than this are exempt from the ratio cap (a tiny README compresses well).
RATIO_EXEMPT_BYTES = 1 << 20

README_NAMES = ("README.yaml", "README.yml")
ENHANCED_DIR = "enhanced"
README_MAX_BYTES = 64 * 1024
METADATA_MAX_FIELDS = 32
METADATA_KEY_MAX = 64
METADATA_VALUE_MAX = 500
_TEAM_KEYS = {"team", "team_name", "teamname", "team_id"}
_IGNORED_DIRS = {"__MACOSX"}
_IGNORED_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}
_CHUNK = 1 << 20
_BLOCK_FRAMES = 1 << 20


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


def _ignored(name: str) -> bool:
    """Whether a file or folder name is operating-system debris to skip."""
    return name in _IGNORED_DIRS or name in _IGNORED_FILES or name.startswith("._")


# --------------------------------------------------------------------------- archives


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
        if any(_ignored(p) for p in parts):
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
    reason = _one_line(str(exc)) or type(exc).__name__
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


# --------------------------------------------------------------------------- README.yaml


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _render(value: Any, budget: int, depth: int = 0) -> str:
    """One-line text of a YAML value, about ``budget`` characters at most.

    Containers are rendered item by item, each child getting only the budget left, so
    the work stays proportional to the budget even for huge or self-referencing values
    (YAML aliases).
    """
    if value is None or budget <= 0:
        return ""
    if isinstance(value, bytes):
        value = value[: budget * 4].decode("utf-8", "replace")
    if isinstance(value, str) or not isinstance(value, (list, tuple, dict)):
        return _one_line(str(value)[: budget * 4])
    if depth >= 3:
        return "…"
    pieces: list[str] = []
    used = 0
    items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
    for key, item in items:
        if used >= budget:
            pieces.append("…")
            break
        piece = _render(item, budget - used, depth + 1)
        if key is not None:
            piece = f"{_render(key, METADATA_KEY_MAX, depth + 1)}: {piece}"
        pieces.append(piece)
        used += len(piece) + 2
    if depth == 0:
        return "; ".join(pieces)
    text = ", ".join(pieces)
    return f"{{{text}}}" if isinstance(value, dict) else f"[{text}]"


def readme_metadata(data: dict) -> dict[str, str]:
    """Leaderboard metadata from a parsed README.yaml: strings only, length-capped.

    The team name (key ``team``, ``team name``, ``team_name``...) is stored as ``team``;
    other top-level fields keep their key. Empty values are dropped.
    """
    out: dict[str, str] = {}
    for key, value in data.items():
        if len(out) >= METADATA_MAX_FIELDS:
            break
        name = _cap(_render(key, METADATA_KEY_MAX), METADATA_KEY_MAX)
        text = _cap(_render(value, METADATA_VALUE_MAX), METADATA_VALUE_MAX)
        if not name or not text:
            continue
        if re.sub(r"[\s\-]+", "_", name.lower()) in _TEAM_KEYS:
            name = "team"
        out.setdefault(name, text)
    return out


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line on why README.yaml could not be parsed; a YAML tag (``!!python/object``...) is named."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or ""
    tag = re.search(r"tag '([^']*)'", problem)
    if isinstance(exc, yaml.constructor.ConstructorError) and tag:
        name = tag.group(1).replace("tag:yaml.org,2002:", "!!")
        where = f" ({where})" if where else ""
        return f"YAML tag {_cap(name, 80)!r} is not allowed{where}; README.yaml must be plain key: value text"
    detail = _one_line(f"{problem}, {where}" if problem and where else problem or where or str(exc))
    return f"not valid YAML ({detail[:200]})"


def read_readme(root: Path) -> tuple[Path | None, dict[str, str], str | None]:
    """Find and parse the README.yaml of a submission folder.

    Returns:
        ``(path or None, metadata, problem or None)``; the problem is a one-line reason
        without the file name.
    """
    from urgentbench.audio import AudioError, read_file_bytes

    path = next((root / n for n in README_NAMES if os.path.lexists(root / n)), None)
    if path is None:
        return None, {}, "not found (it gives the team name, data used and pre-trained models used)"
    try:  # a regular file (or a link to one inside the submission), checked before it is opened
        raw = read_file_bytes(path, inside=root, max_bytes=README_MAX_BYTES)
    except AudioError as exc:
        problem = exc.problem.replace("allowed for this file", "allowed")
        return path, {}, "empty (0 bytes)" if problem == "file is empty (0 bytes)" else problem
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return path, {}, "not UTF-8 text"
    except yaml.YAMLError as exc:
        return path, {}, _yaml_problem(exc)
    if not isinstance(data, dict):
        return path, {}, f"expected a YAML mapping (key: value lines), got {type(data).__name__}"
    metadata = readme_metadata(data)
    if not metadata:
        return path, {}, "no fields"
    return path, metadata, None


# --------------------------------------------------------------------------- submissions


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
            out["lossy_outputs"] = _cap(text, METADATA_VALUE_MAX)
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
    return sorted(p for p in folder.iterdir() if not _ignored(p.name))


def _locate_root(base: Path) -> Path:
    """``base``, or its single non-debris subfolder when that wraps the whole submission."""
    entries = _visible(base)
    has_layout = any(p.name in README_NAMES or p.name == ENHANCED_DIR for p in entries)
    if not has_layout and len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return base


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


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
        from urgentbench.audio import file_problem

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
            sha256=_file_sha256(source),
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


# --------------------------------------------------------------------------- validation


def expected_length(utt: Utterance, suite: Suite, results_dir: str | os.PathLike | None = None) -> int:
    """Number of samples of an utterance's noisy input at ``utt.sample_rate``, without rendering it.

    The cached rendered input (under ``results_dir``) is used when present; otherwise the
    length of the source file (the recorded ``noisy`` file, or the ``clean`` file of a
    simulated utterance, whose degradations never change the length) after soxr
    resampling, computed by resampling silence of the same length (exact, and cheap).

    Raises:
        AudioError: When the source file cannot be read.
        CorpusNotPreparedError: When the source lies in a corpus that is not prepared.
    """
    import soundfile as sf

    from urgentbench.audio import AudioError, probe_audio, read_checked_bytes, resample

    if results_dir is not None:
        cached = input_paths(Path(results_dir), suite.key, utt.id)[0]
        if os.path.lexists(cached):
            try:  # only a cache entry whose sha256 matches the one recorded is trusted
                info = probe_audio(read_checked_bytes(cached), cached)
                if info.sample_rate == utt.sample_rate:
                    return info.frames
            except AudioError as exc:  # damaged, replaced or unrecorded: fall back to the source
                logger.debug("cached input not used: %s", exc)
    source = suite.resolve(utt.noisy if utt.noisy is not None else utt.clean)  # type: ignore[arg-type]
    try:
        info = sf.info(str(source))
    except Exception as exc:
        raise AudioError(source, f"not a readable audio file ({_one_line(str(exc))[:200]})") from exc
    frames = int(info.frames)
    if info.samplerate == utt.sample_rate:
        return frames
    return len(resample(np.zeros(frames, dtype=np.float32), int(info.samplerate), utt.sample_rate))


def _decoded_frames(data: bytes) -> tuple[int, int]:
    """``(frames decoded, NaN/Inf samples)`` of in-memory audio, block by block.

    Reading stops at the first short block, so a header declaring more samples than the
    data holds costs nothing (soundfile's ``blocks()`` would go on for every declared block).
    """
    import soundfile as sf

    frames = bad = 0
    with sf.SoundFile(io.BytesIO(data)) as f:
        while True:
            block = f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
            frames += len(block)
            bad += int(np.count_nonzero(~np.isfinite(block)))
            if len(block) < _BLOCK_FRAMES:
                return frames, bad


def check_output_file(
    path: Path, utt: Utterance, expected_len: int | None, name: str, *, inside: Path | None = None
) -> list[str]:
    """Every problem of one enhanced file, one line each.

    Checks, in order: that it is a regular file (or a link to one inside ``inside``),
    decided before anything is opened; its size (:func:`urgentbench.runner.max_output_bytes`);
    that it is audio, and lossless (MP3 or Ogg content under a ``.flac`` name is a
    problem); rate, channels and exact length; that every declared sample decodes; NaN/Inf.
    The file is read once.
    """
    from urgentbench.audio import AudioError, libsndfile_reason, lossy_problem, probe_audio, read_file_bytes
    from urgentbench.runner import max_output_bytes

    max_bytes = DEFAULT_MAX_TOTAL_BYTES if expected_len is None else max_output_bytes(expected_len)
    try:
        data = read_file_bytes(path, inside=inside, max_bytes=max_bytes)
        info = probe_audio(data, path)
    except AudioError as exc:
        return [f"{name}: {exc.problem}"]
    problems = []
    lossy = lossy_problem(info, path)
    if lossy:
        problems.append(f"{name}: {lossy}")
    if info.sample_rate != utt.sample_rate:
        problems.append(
            f"{name}: sample rate {info.sample_rate} Hz, expected the input's {utt.sample_rate} Hz"
        )
    if info.channels != 1:
        problems.append(f"{name}: {info.channels} channels, expected mono")
    if expected_len is not None and info.sample_rate == utt.sample_rate and info.frames != expected_len:
        problems.append(
            f"{name}: {info.frames} samples, expected exactly the input's {expected_len} "
            f"(outputs are never trimmed or padded)"
        )
    try:
        frames, bad = _decoded_frames(data)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        problems.append(f"{name}: not a readable audio file ({libsndfile_reason(exc)})")
        return problems
    if frames == 0:
        problems.append(f"{name}: no audio (0 samples)")
    elif frames < info.frames:
        problems.append(
            f"{name}: header declares {info.frames} samples but only {frames} decode (truncated or damaged file)"
        )
    if bad:
        problems.append(f"{name}: {bad} NaN or Inf samples")
    return problems


def _scan_audio(sub: Submission) -> tuple[dict[str, list[Path]], list[Path]]:
    """Audio files anywhere under the submission root by utterance id, and other files."""
    by_id: dict[str, list[Path]] = {}
    others: list[Path] = []
    for folder, dirs, names in os.walk(sub.root):  # links to folders are listed, never entered
        # a folder (or a link to one) named like an output is an output that is not a file
        outputs = [d for d in dirs if Path(d).suffix.lower() in AUDIO_EXTENSIONS and not _ignored(d)]
        dirs[:] = sorted(d for d in dirs if not _ignored(d) and d not in outputs)
        for name in sorted(names + outputs):
            if _ignored(name):
                continue
            path = Path(folder) / name
            suffix = path.suffix
            if suffix.lower() in AUDIO_EXTENSIONS:
                by_id.setdefault(name[: -len(suffix)], []).append(path)
            elif not (path.parent == sub.root and name in README_NAMES):
                others.append(path)
    return by_id, others


def validate_submission(
    submission: Submission,
    suite: Suite,
    *,
    limit: int | None = None,
    results_dir: str | os.PathLike | None = None,
    jobs: int = 1,
) -> list[str]:
    """Check a whole submission before scoring and report every problem at once.

    Checks: README.yaml (a problem for an archive, a warning for a folder), the layout,
    missing outputs, extra files (ids not in the suite), duplicate outputs (``x.flac`` and
    ``x.wav``, or the same id in two folders), misplaced or upper-case-extension files,
    and per file: readability, sample rate (the utterance's), mono, exact length (the
    noisy input's) and NaN/Inf samples. Warnings go to ``submission.warnings``.

    Args:
        submission: From :func:`open_submission`.
        suite: The suite.
        limit: Only the first ``limit`` utterances are expected (files for the others are
            not counted as extra).
        results_dir: Where cached rendered inputs may already give the input lengths.
        jobs: Threads checking files.

    Returns:
        One line per problem, each naming the file; empty when the submission is valid.
    """
    all_utts = suite.utterances()
    expected = all_utts if limit is None else all_utts[:limit]
    known = {u.id for u in all_utts}
    problems: list[str] = list(submission.layout_problems)
    if submission.readme_problem and submission.is_archive:
        problems.append(submission.readme_problem)
    by_id, others = _scan_audio(submission)
    for path in others:
        submission.warnings.append(f"{submission.display(path)}: not a .flac or .wav file; ignored")

    def check(utt: Utterance) -> list[str]:
        paths = by_id.get(utt.id, [])
        if not paths:
            where = submission.display(submission.enhanced_dir / f"{utt.id}.flac")
            return [f"{where}: missing (no output for utterance {utt.id!r})"]
        out = []
        if len(paths) > 1:
            names = ", ".join(submission.relative(p) for p in paths)
            out.append(f"{submission.display(paths[0])}: duplicate outputs for utterance {utt.id!r}: {names}")
        for path in paths:
            name = submission.display(path)
            if path.parent != submission.enhanced_dir:
                out.append(f"{name}: not directly in {submission.display(submission.enhanced_dir)}")
            if path.suffix not in AUDIO_EXTENSIONS:
                out.append(f"{name}: extension must be lower-case .flac or .wav")
        try:
            n = expected_length(utt, suite, results_dir)
        except Exception as exc:  # a suite-side problem: say so, still check the files
            out.append(f"{utt.id}: cannot determine the input length ({_one_line(str(exc))[:200]})")
            n = None
        for path in paths:
            name = submission.display(path)
            lines = check_output_file(path, utt, n, name, inside=submission.enhanced_dir)
            if any(line.startswith(f"{name}: lossy ") for line in lines):
                submission.lossy_files.append(str(path))
            out.extend(lines)
        return out

    if jobs > 1 and len(expected) > 1:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            per_utt = list(pool.map(check, expected))
    else:
        per_utt = [check(u) for u in expected]
    for lines in per_utt:
        problems.extend(lines)
    for utt_id in sorted(set(by_id) - known):
        for path in by_id[utt_id]:
            name = submission.display(path)
            problems.append(f"{name}: {utt_id!r} is not an utterance of suite {suite.name!r} (extra file)")
    return problems


# --------------------------------------------------------------------------- scoring


@dataclass
class SubmissionRun:
    """What :func:`score_submission` did."""

    producer: ProducerSpec
    report: RunReport
    problems: list[str]
    warnings: list[str]
    metadata: dict[str, str]


def _problem_message(source: Path, problems: list[str]) -> str:
    lines = [f"{source}: {len(problems)} problem(s), nothing was scored (use --no-strict to score anyway):"]
    lines.extend(f"  {p}" for p in problems)
    return "\n".join(lines)


def score_submission(
    path: str | os.PathLike,
    suite: Suite,
    name: str | None,
    metrics: list[MetricSpec],
    results_dir: str | os.PathLike,
    *,
    jobs: int = 1,
    strict: bool = True,
    limit: int | None = None,
    retry_errors: bool = False,
    command: str = "",
    progress: bool = True,
    workdir: str | os.PathLike | None = None,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    scheduler: str | None = None,
    metric_at_a_time: bool = False,
    reference_cache: bool = True,
) -> SubmissionRun:
    """Open, validate and score a submission (zip archive or folder).

    Args:
        path: The zip archive or folder.
        suite: The suite (verified here).
        name: Name shown on the leaderboard; None uses README.yaml's team name.
        metrics: Metrics to compute (:func:`urgentbench.runner.resolve_metrics`).
        results_dir: Results folder of the runner.
        jobs: Worker processes (and threads for validation).
        strict: Abort before scoring when any problem is found; otherwise score anyway,
            per-utterance problems becoming missing values with their reason.
        limit: Only the first ``limit`` utterances.
        retry_errors: Recompute rows stored as errors.
        command: The command line, for provenance.
        progress: Show a progress bar.
        workdir: Parent of the archive's extraction folder (default
            ``<results_dir>/submissions``); the folder is removed afterwards (results
            are keyed by the files' content hash, so re-scoring recomputes nothing).
        max_total_bytes: Cap on the archive's total uncompressed size.
        max_files: Cap on the archive's number of files.
        max_ratio: Cap on one archive entry's compression ratio.
        scheduler: Score on Dask (``local:N`` or a scheduler address); see :func:`urgentbench.runner.run`.
        metric_at_a_time: Load one heavy model at a time (see :func:`urgentbench.runner.run`).
        reference_cache: Reuse reference-only metric state (see :func:`urgentbench.runner.run`).

    Returns:
        A :class:`SubmissionRun` (producer, runner report, problems, warnings, metadata).

    Raises:
        SubmissionError: With every problem, one per line (strict), or when no name is known.
        UnsafeArchiveError: When the archive is refused (always, strict or not).
    """
    from urgentbench import runner

    suite.verify()
    suite.check_corpora()
    results_dir = Path(results_dir).resolve()
    workdir = Path(workdir) if workdir is not None else results_dir / "submissions"
    submission = open_submission(
        path,
        suite,
        workdir=workdir,
        max_total_bytes=max_total_bytes,
        max_files=max_files,
        max_ratio=max_ratio,
    )
    with submission:
        display = name or submission.team
        if not display:
            if submission.readme_problem:  # say what is wrong with README.yaml, not just that no name came of it
                raise SubmissionError(
                    f"{submission.readme_problem} (so no team name could be read from it; pass --name)"
                )
            raise SubmissionError(f"{submission.source}: no name given and README.yaml has no team name")
        problems = validate_submission(submission, suite, limit=limit, results_dir=results_dir, jobs=jobs)
        for line in submission.warnings:
            logger.warning(line)
        if problems and strict:
            raise SubmissionError(_problem_message(submission.source, problems), problems)
        for line in problems:
            logger.warning(line)
        ids = [u.id for u in suite.utterances(limit)]
        producer = runner.directory_producer(
            submission.enhanced_dir, display, ids, metadata=submission.leaderboard_metadata()
        )
        report = runner.run(
            suite,
            [producer],
            metrics,
            results_dir,
            jobs=jobs,
            limit=limit,
            retry_errors=retry_errors,
            command=command,
            progress=progress,
            scheduler=scheduler,
            metric_at_a_time=metric_at_a_time,
            reference_cache=reference_cache,
        )
    metadata = submission.leaderboard_metadata()
    return SubmissionRun(producer, report, problems, list(submission.warnings), metadata)

