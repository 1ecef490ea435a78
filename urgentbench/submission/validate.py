"""Output validation: every problem of a submission at once, one line per problem naming the file."""

from __future__ import annotations

import io
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from urgentbench.audio import (
    AudioError,
    libsndfile_reason,
    lossy_problem,
    probe_audio,
    read_checked_bytes,
    read_file_bytes,
    resample,
)
from urgentbench.errors import squash
from urgentbench.layout import AUDIO_EXTENSIONS, input_paths
from urgentbench.manifest import Utterance
from urgentbench.pipeline.prepare import max_output_bytes
from urgentbench.submission.archive import DEFAULT_MAX_TOTAL_BYTES, ignored
from urgentbench.submission.opening import Submission
from urgentbench.submission.readme import README_NAMES
from urgentbench.suites import Suite

#: One logger for the package: users see "urgentbench.submission" whichever module speaks.
logger = logging.getLogger(__package__)

_BLOCK_FRAMES = 1 << 20


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
        raise AudioError(source, f"not a readable audio file ({squash(str(exc))[:200]})") from exc
    frames = int(info.frames)
    if info.samplerate == utt.sample_rate:
        return frames
    return len(resample(np.zeros(frames, dtype=np.float32), int(info.samplerate), utt.sample_rate))


def _decoded_frames(data: bytes) -> tuple[int, int]:
    """``(frames decoded, NaN/Inf samples)`` of in-memory audio, block by block.

    Reading stops at the first short block, so a header declaring more samples than the
    data holds costs nothing (soundfile's ``blocks()`` would go on for every declared block).
    """
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
    decided before anything is opened; its size (:func:`urgentbench.pipeline.prepare.max_output_bytes`);
    that it is audio, and lossless (MP3 or Ogg content under a ``.flac`` name is a
    problem); rate, channels and exact length; that every declared sample decodes; NaN/Inf.
    The file is read once.
    """
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
        outputs = [d for d in dirs if Path(d).suffix.lower() in AUDIO_EXTENSIONS and not ignored(d)]
        dirs[:] = sorted(d for d in dirs if not ignored(d) and d not in outputs)
        for name in sorted(names + outputs):
            if ignored(name):
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
            out.append(f"{utt.id}: cannot determine the input length ({squash(str(exc))[:200]})")
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

