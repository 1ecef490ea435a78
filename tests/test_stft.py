"""The numpy STFT behind LSD equals ``librosa.stft`` (Hann, centred, zero padding) bit for bit."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
from conftest import demo_pair

from urgentbench.metrics import functional
from urgentbench.metrics.stft import hann_periodic, stft

librosa = pytest.importorskip("librosa")


@pytest.mark.parametrize("n", [1, 2, 3, 320, 705, 1411, 1536])
def test_hann_window_equals_scipy_get_window(n):
    assert np.array_equal(hann_periodic(n), librosa.filters.get_window("hann", n, fftbins=True))


@pytest.mark.parametrize("fs", [8000, 16000, 22050, 44100, 48000])
def test_stft_equals_librosa_for_odd_and_even_windows_and_edge_lengths(fs):
    n_fft, hop = int(0.032 * fs), int(0.016 * fs)
    rng = np.random.default_rng(fs)
    for length in (1, n_fft // 2, n_fft, n_fft + 1, 3 * fs + 17, 21 * fs + 5):  # 21 s: several blocks
        for dtype in (np.float32, np.float64):
            y = rng.standard_normal(length).astype(dtype)
            with np.testing.suppress_warnings() as sup:
                sup.filter(UserWarning)  # librosa: n_fft too large for a very short input
                theirs = librosa.stft(y, n_fft=n_fft, hop_length=hop, window="hann", center=True, pad_mode="constant")
            ours = stft(y, n_fft, hop)
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, (fs, length, dtype)
            # the same memory order too: a reduction over frequency then sums in the same order
            assert ours.flags["F_CONTIGUOUS"] == theirs.flags["F_CONTIGUOUS"], (fs, length, dtype)
            assert np.array_equal(ours, theirs), (fs, length, dtype)


def test_lsd_on_real_speech_equals_the_librosa_computation(monkeypatch):
    import urgentbench.metrics.stft as stft_module

    for fs, index in itertools.product((16000, 44100), range(6)):
        ref, est = demo_pair(index, fs)
        ours = functional.lsd(ref, est, fs)
        monkeypatch.setattr(
            stft_module,
            "stft",
            lambda y, n_fft, hop: librosa.stft(y, n_fft=n_fft, hop_length=hop, window="hann", center=True, pad_mode="constant"),
        )
        assert functional.lsd(ref, est, fs) == ours, (fs, index)  # bit for bit
        monkeypatch.undo()


def test_lsd_does_not_load_librosa():
    code = (
        "import sys, numpy as np\n"
        "from urgentbench.metrics.intrusive import LSD\n"
        "x = np.random.default_rng(0).standard_normal(16000)\n"
        "print(LSD().compute(x * 0.9, x, 16000)['lsd'] >= 0, 'librosa' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False"]
