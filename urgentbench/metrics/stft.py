"""``librosa.stft`` with its defaults (Hann, centred, zero padding) in plain numpy, value for value.

URGENT's LSD calls ``librosa.stft(x, n_fft=..., hop_length=..., window="hann", center=True,
pad_mode="constant")``. The same numbers come from: the periodic Hann window as SciPy's
``get_window("hann", n_fft, fftbins=True)`` computes it, the signal padded with
``n_fft // 2`` zeros on each side, frames every ``hop_length`` samples, and numpy's real FFT
of each windowed frame (librosa's default FFT library), cast to the complex type of the
input. librosa pads and frames the signal's head, middle and tail separately to save a copy
and transforms in blocks; each frame's FFT is computed on its own either way, so the
spectrogram is bit-identical (``tests/test_stft.py``). Loading librosa's STFT costs a scoring
worker about 0.9 s of CPU (numba, ``librosa.core.audio``) before its first LSD; this module
imports only numpy.
"""

from __future__ import annotations

import numpy as np

#: Frames transformed at once (bounds the memory of the windowed frames, float64).
_BLOCK_FRAMES = 512


def hann_periodic(n: int) -> np.ndarray:
    """The periodic ("DFT-even") Hann window of ``n`` samples, as SciPy computes it.

    SciPy's ``general_cosine`` on ``n + 1`` points of ``linspace(-pi, pi)``, the last point
    dropped: ``0.5 * cos(0 * fac) + 0.5 * cos(fac)``, accumulated in that order.

    Raises:
        ValueError: For ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"window length must be >= 1, got {n}")
    if n == 1:
        return np.ones(1)
    fac = np.linspace(-np.pi, np.pi, n + 1)
    w = np.zeros(n + 1)
    for k, a in enumerate((0.5, 0.5)):
        w += a * np.cos(k * fac)
    return w[:-1]


def stft(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """``librosa.stft(y, n_fft=n_fft, hop_length=hop_length)`` (Hann, centred, zero-padded).

    Args:
        y: 1-D float waveform (float32 gives complex64, float64 complex128, as librosa).
        n_fft: FFT and window length.
        hop_length: Samples between frames, >= 1.

    Returns:
        ``(1 + n_fft // 2, frames)`` complex spectrogram in Fortran order (as librosa's),
        ``frames = 1 + len(y) // hop_length`` for a signal of at least ``n_fft // 2``
        samples (librosa's count).

    Raises:
        ValueError: For a non-1-D input, ``n_fft < 2`` or ``hop_length < 1``.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"stft expects a 1-D waveform, got shape {y.shape}")
    if n_fft < 2 or hop_length < 1:
        raise ValueError(f"need n_fft >= 2 and hop_length >= 1, got {n_fft} and {hop_length}")
    out_dtype = np.complex64 if y.dtype == np.float32 else np.complex128
    window = hann_periodic(n_fft)
    padded = np.pad(y, (n_fft // 2, n_fft // 2), mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    # Fortran order, as librosa allocates it: reductions over frequency (LSD's mean) then add
    # in the same order, so downstream sums are bit-identical too
    out = np.empty((n_fft // 2 + 1, len(frames)), dtype=out_dtype, order="F")
    for start in range(0, len(frames), _BLOCK_FRAMES):
        block = frames[start : start + _BLOCK_FRAMES]
        out[:, start : start + len(block)] = np.fft.rfft(window * block, axis=-1).T
    return out
