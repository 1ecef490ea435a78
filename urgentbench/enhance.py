"""Enhance the user's own audio files with any system, outside any suite."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from urgentbench.audio import AudioError, read_audio, write_flac
from urgentbench.layout import AUDIO_EXTENSIONS
from urgentbench.pipeline.prepare import run_system
from urgentbench.systems import build_system

logger = logging.getLogger(__name__)


@dataclass
class EnhanceReport:
    """What :func:`enhance_files` did."""

    written: int = 0
    failed: list[str] = field(default_factory=list)


def list_audio(source: Path) -> list[tuple[Path, Path]]:
    """``(file, path relative to the input)`` for a file or every .wav/.flac under a folder.

    Raises:
        FileNotFoundError: When ``source`` does not exist.
    """
    if source.is_file():
        return [(source, Path(source.name))]
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: input not found")
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    return [(p, p.relative_to(source)) for p in files]


def enhance_files(
    system_name: str,
    source: str | Path,
    output: str | Path,
    options: dict[str, Any] | None = None,
    progress: bool = True,
) -> EnhanceReport:
    """Enhance every audio file of ``source`` into ``output`` (same relative names, ``.flac``).

    The system is loaded once; each file is resampled to the system's rate and back, and
    written as 16-bit FLAC at its own rate and length. A bad file is reported (one line
    naming it and the problem) and skipped.

    Raises:
        UnknownNameError: For an unknown system.
        MissingRequirementError: When the system's packages or assets are missing.
        FileNotFoundError: When ``source`` does not exist.
    """
    from tqdm import tqdm

    system = build_system(system_name, **(options or {}))
    files = list_audio(Path(source))
    system.setup()
    report = EnhanceReport()
    for path, relative in tqdm(files, disable=not progress, unit="file", desc=system.card.name):
        target = Path(output) / relative.with_suffix(".flac")
        try:
            noisy, rate = read_audio(path)
            enhanced, clipped = run_system(system, noisy, rate, str(path))
            if clipped:
                logger.warning("%s: %d samples clipped to 16 bit", path, clipped)
            write_flac(target, enhanced, rate)
            report.written += 1
        except (AudioError, ValueError, RuntimeError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            logger.warning("%s", message)
            report.failed.append(message if str(path) in message else f"{path}: {message}")
    return report
