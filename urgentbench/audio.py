"""Audio I/O with validation, soxr resampling and the 16-bit grid used for stored audio.

All audio inside urgentbench is mono float32 in [-1, 1]. Files are checked when read:
an unreadable, empty, non-mono or non-finite file raises :class:`AudioError` with a
one-line message naming the file and the problem.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

PCM16_SCALE = 32768.0


class AudioError(ValueError):
    """A file or waveform that cannot be used, with a one-line reason naming it."""

    def __init__(self, source: str | os.PathLike, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


def check_waveform(x: np.ndarray, source: str | os.PathLike, *, allow_silence: bool = True) -> np.ndarray:
    """Validate a waveform and return it as contiguous mono float32.

    Raises:
        AudioError: When it is not 1-D, empty, contains NaN/Inf, or (unless allowed) is silent.
    """
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        channels = x.shape[1] if x.ndim == 2 else "?"
        raise AudioError(source, f"expected mono audio, got {channels} channels (shape {x.shape})")
    if x.size == 0:
        raise AudioError(source, "audio is empty (0 samples)")
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioError(source, f"expected floating-point samples, got {x.dtype}")
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise AudioError(source, f"{bad} NaN or Inf samples")
    if not allow_silence and not np.any(x):
        raise AudioError(source, "audio is pure silence (all samples are zero)")
    return np.ascontiguousarray(x, dtype=np.float32)


def read_audio(path: str | os.PathLike, *, allow_silence: bool = True) -> tuple[np.ndarray, int]:
    """Read a mono audio file as float32.

    Returns:
        ``(waveform, sample_rate)``.

    Raises:
        AudioError: For a missing, unreadable, empty, multichannel or non-finite file.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioError(path, f"not a readable audio file ({reason})") from exc
    if x.shape[1] != 1:
        raise AudioError(path, f"expected mono audio, got {x.shape[1]} channels")
    return check_waveform(x[:, 0], path, allow_silence=allow_silence), int(sr)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample with soxr at high quality ("HQ", URGENT's choice); identity when rates match."""
    if sr_in == sr_out:
        return x
    import soxr

    return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad or trim ``x`` to exactly ``n`` samples."""
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros(n - len(x), dtype=x.dtype)])


def to_pcm16_grid(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Round a waveform to the 16-bit PCM grid, so writing it to 16-bit FLAC is lossless.

    Returns:
        ``(rounded waveform, number of samples that had to be clipped)``.
    """
    scaled = np.round(np.asarray(x, dtype=np.float64) * PCM16_SCALE)
    clipped = int(np.count_nonzero((scaled > 32767) | (scaled < -32768)))
    scaled = np.clip(scaled, -32768, 32767)
    return (scaled / PCM16_SCALE).astype(np.float32), clipped


def write_flac(path: str | os.PathLike, x: np.ndarray, sample_rate: int) -> None:
    """Write a waveform already on the 16-bit grid as 16-bit FLAC, atomically.

    The file is written to a temporary name in the same folder and renamed, so a
    crash never leaves a half-written file under the final name.
    """
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".flac.tmp", dir=path.parent)
    os.close(fd)
    try:
        sf.write(tmp, x, sample_rate, subtype="PCM_16", format="FLAC")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
