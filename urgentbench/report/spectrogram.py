"""Log-power spectrogram images (PNG) of the clips on the HTML leaderboard."""

from __future__ import annotations

import math

import numpy as np

from urgentbench.report.png import png_bytes


def _stft_db(wave: np.ndarray, rate: int) -> np.ndarray:
    n_fft = 1 << max(8, int(round(math.log2(0.032 * rate))))
    hop = n_fft // 4
    x = np.asarray(wave, dtype=np.float64)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return 10.0 * np.log10(power + 1e-12)


def peak_db(wave: np.ndarray, rate: int) -> float:
    """The highest level of the signal's spectrogram (dB), to share one scale between clips."""
    return float(_stft_db(wave, rate).max())


#: Anchors of a dark-to-bright colour map (black, indigo, crimson, orange, pale yellow).
_ANCHORS = np.array(
    [[0, 0, 4], [60, 15, 110], [180, 55, 80], [250, 150, 40], [252, 253, 191]], dtype=np.float64
)


def _colour(level: np.ndarray) -> np.ndarray:
    """Map levels in [0, 1] to RGB through :data:`_ANCHORS`."""
    pos = np.clip(level, 0.0, 1.0) * (len(_ANCHORS) - 1)
    low = np.minimum(pos.astype(int), len(_ANCHORS) - 2)
    frac = (pos - low)[..., None]
    return (_ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac).round().astype(np.uint8)


def spectrogram_png(
    wave: np.ndarray, rate: int, width: int = 360, height: int = 140, top_db: float | None = None, range_db: float = 80.0
) -> bytes:
    """A log-power spectrogram (0 Hz at the bottom) as PNG bytes.

    Args:
        wave: Mono waveform.
        rate: Its sample rate.
        width: Image width (frames are max-pooled or repeated to fit).
        height: Image height (frequency bins likewise).
        top_db: The level shown brightest (share it between clips to compare them);
            default: this signal's maximum.
        range_db: Levels more than this below ``top_db`` are black.
    """
    spec = _stft_db(wave, rate).T  # (freq, time)
    top = spec.max() if top_db is None else top_db
    level = (spec - (top - range_db)) / range_db
    # max-pool (or repeat) bins into pixels: reduceat over non-decreasing start indices
    cols = np.minimum(np.linspace(0, spec.shape[1], width, endpoint=False).astype(int), spec.shape[1] - 1)
    rows = np.minimum(np.linspace(0, spec.shape[0], height, endpoint=False).astype(int), spec.shape[0] - 1)
    image = np.maximum.reduceat(np.maximum.reduceat(level, cols, axis=1), rows, axis=0)[::-1]
    # 64 colour levels in a palette image: a fraction of the size of true colour
    index = np.clip(np.round(image * 63), 0, 63).astype(np.uint8)
    return png_bytes(index, palette=_colour(np.linspace(0.0, 1.0, 64)))
