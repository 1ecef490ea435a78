"""The official DNSMOS windows and what each model sees of them.

``dnsmos_local.py`` repeats a clip shorter than 9.01 s, cuts the 16 kHz signal into 9.01 s
windows with a 1 s hop (:func:`window_starts`, its float slicing included), and scores each.
Overlapping windows share frames, so :class:`Plan` groups an utterance's windows into
:class:`Stretch` es analysed together: the P.835 analysis frames (:meth:`Stretch.frames`)
and the P.808 log-mel input (:func:`p808_features`) are computed once per frame, with the
arithmetic of the official per-window run. The models themselves are run by
:class:`urgentbench.metrics.dnsmos.DNSMOS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "AMIN", "FRAMES", "HALO", "HOP", "P808_MELS", "P808_NFFT", "P808_TRIM", "P835_FRAME", "SR", "TOP_DB", "WINDOW",
    "WINDOW_S", "Plan", "Stretch", "mel_power", "p808_features", "repeat", "window_starts", "windows",
]

SR = 16000
#: Window length of the official scorer, in seconds.
WINDOW_S = 9.01
#: Window length in samples.
WINDOW = int(WINDOW_S * SR)
#: Frame hop of both models' analysis (10 ms).
HOP = 160
#: Frames of one window seen by either model.
FRAMES = 900
#: P.835 analysis frame (two hops).
P835_FRAME = 2 * HOP
#: Frames on each side that the four full-resolution 3x3 convolutions of P.835 look at.
HALO = 4
#: P.808 input: 321-point STFT (centred, zero padded), 120 mel bands, 10 ms hop.
P808_NFFT = 321
P808_MELS = 120
#: The P.808 model sees the window without its last 10 ms.
P808_TRIM = 160
#: ``librosa.power_to_db`` defaults used by the official code.
AMIN = 1e-10
TOP_DB = 80.0


def repeat(audio: np.ndarray) -> np.ndarray:
    """Repeat (doubling) a clip shorter than one window, as the official code does."""
    while len(audio) < WINDOW:
        audio = np.append(audio, audio)
    return audio


def window_starts(length: int) -> list[int]:
    """Start samples of the official windows of a (repeated) waveform of ``length`` samples.

    As ``dnsmos_local.py``: ``num_hops = int(floor(len / 16000) - 9.01) + 1`` windows
    ``audio[int(idx * 16000) : int((idx + 9.01) * 16000)]``, keeping only full-length ones
    (the float product makes some slices one sample short: idx 7 to 23, 119 to 122, ...).
    """
    n_windows = int(np.floor(length / SR) - WINDOW_S) + 1
    starts = []
    for idx in range(n_windows):
        start, stop = int(idx * SR), int((idx + WINDOW_S) * SR)
        if min(stop, length) - start == WINDOW:
            starts.append(start)
    return starts


def windows(audio: np.ndarray) -> list[np.ndarray]:
    """The official 9.01 s windows (1 s hop) of a 16 kHz waveform, short clips repeated first."""
    audio = repeat(audio)
    return [audio[start : start + WINDOW] for start in window_starts(len(audio))]


@dataclass
class Stretch:
    """Consecutive overlapping windows of one utterance, analysed together.

    ``offsets``: window starts in frames from the stretch start; ``window_index``: each
    window's row in the batch's output.
    """

    audio: np.ndarray
    start: int  # first frame (utterance frame index)
    n_frames: int
    offsets: list[int]
    window_index: list[int]
    logspec: Any = None
    conv: Any = None
    edges: dict[int, np.ndarray] = field(default_factory=dict)

    def frames(self) -> np.ndarray:
        """The P.835 analysis frames (n_frames, 320): frame f is samples 160 f .. 160 f + 319."""
        view = np.lib.stride_tricks.sliding_window_view(self.audio, P835_FRAME)[::HOP]
        return view[self.start : self.start + self.n_frames]


@dataclass
class Plan:
    """One utterance: its repeated audio, its official window starts (samples) and their rows."""

    audio: np.ndarray
    starts: list[int] = field(init=False)
    first: int = 0

    def __post_init__(self) -> None:
        self.starts = window_starts(len(self.audio))

    @property
    def n(self) -> int:
        """Number of windows."""
        return len(self.starts)

    @property
    def rows(self) -> slice:
        """The rows of this utterance's windows in the batch's outputs (needs ``first`` set)."""
        return slice(self.first, self.first + self.n)

    def stretches(self) -> list[Stretch]:
        """Maximal runs of overlapping windows (needs ``first`` set)."""
        out: list[Stretch] = []
        frames = [s // HOP for s in self.starts]
        for k, f in enumerate(frames):
            if out and f < out[-1].start + out[-1].n_frames:
                s = out[-1]
                s.offsets.append(f - s.start)
                s.window_index.append(self.first + k)
                s.n_frames = f - s.start + FRAMES
            else:
                out.append(Stretch(self.audio, f, FRAMES, [0], [self.first + k]))
        return out


def p808_features(plan: Plan, mel_basis: np.ndarray, fft_window: np.ndarray) -> np.ndarray:
    """P.808 input of each window of ``plan``: (windows, 900, 120) float32.

    Equal to ``(librosa.power_to_db(librosa.feature.melspectrogram(y=window[:-160], sr=16000,
    n_fft=321, hop_length=160, n_mels=120), ref=np.max) + 40) / 40``, transposed, per window:
    the spectra of frames shared by overlapping windows are computed once.
    """
    half = P808_NFFT // 2
    length = WINDOW - P808_TRIM
    audio = plan.audio
    starts = [s // HOP for s in plan.starts]  # window starts, in frames
    # Interior frames (1 .. 898) of a window lie inside it: frame f of the utterance is
    # centred on sample 160 f. Frames 0 and 899 reach into the window's zero padding.
    inner = np.unique(np.concatenate([np.arange(f + 1, f + FRAMES - 1) for f in starts]))
    frames = np.lib.stride_tricks.sliding_window_view(audio, P808_NFFT)[inner * HOP - half]
    edges = np.zeros((2 * len(starts), P808_NFFT), dtype=np.float32)
    for k, sample in enumerate(plan.starts):
        edges[2 * k, half:] = audio[sample : sample + half + 1]
        edges[2 * k + 1, : 2 * half] = audio[sample + length - 2 * half : sample + length]
    mel = mel_power(np.concatenate([frames, edges]), mel_basis, fft_window)
    # Rows of each window: its first edge, its interior frames, its last edge.
    position = np.full(inner[-1] + 1, -1, dtype=np.int64)
    position[inner] = np.arange(len(inner))
    rows = np.empty((len(starts), FRAMES), dtype=np.int64)
    for k, f in enumerate(starts):
        rows[k, 0] = len(inner) + 2 * k
        rows[k, 1:-1] = position[f + 1 : f + FRAMES - 1]
        rows[k, -1] = len(inner) + 2 * k + 1
    mel_windows = mel[rows]  # (windows, 900, 120)
    # librosa.power_to_db(S, ref=np.max, amin=1e-10, top_db=80), one window at a time
    ref = mel_windows.max(axis=(1, 2), keepdims=True)
    log_spec = 10.0 * np.log10(np.maximum(AMIN, mel_windows))
    log_spec -= 10.0 * np.log10(np.maximum(AMIN, ref))
    log_spec = np.maximum(log_spec, log_spec.max(axis=(1, 2), keepdims=True) - TOP_DB)
    return np.ascontiguousarray((log_spec + 40) / 40, dtype=np.float32)

def mel_power(frames: np.ndarray, mel_basis: np.ndarray, fft_window: np.ndarray) -> np.ndarray:
    """Mel power spectrum (rows, 120) of zero-padded 321-sample frames, as librosa computes it.

    librosa windows in float64, stores the STFT as complex64, squares its magnitude in
    float32 and applies the float32 filterbank with a matrix product; so does this.
    """
    out = np.empty((len(frames), P808_MELS), dtype=np.float32)
    step = 4096
    for start in range(0, len(frames), step):
        windowed = fft_window * frames[start : start + step]  # float64, as librosa
        spectrum = np.fft.rfft(windowed, axis=-1).astype(np.complex64)
        power = np.abs(spectrum) ** 2.0
        out[start : start + step] = (mel_basis @ power.T).T
    return out
