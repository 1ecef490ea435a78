"""DNSMOS P.835 (SIG, BAK, OVRL) and P.808: Microsoft's non-intrusive MOS predictors.

URGENT ranks only OVRL. The models are the official ONNX files of microsoft/DNS-Challenge
(``DNSMOS/sig_bak_ovr.onnx`` and ``DNSMOS/model_v8.onnx``), taken from the ``speechmos``
package, which ships byte-identical copies. Their sha256 is checked in :meth:`DNSMOS.setup`
because Microsoft replaced the P.835 model once and scores changed markedly.

The scoring follows the official ``dnsmos_local.py`` (as used by URGENT through ESPnet's
``DNSMOS_local``): the 16 kHz signal is repeated until it lasts at least 9.01 s, cut into
9.01 s windows with a 1 s hop, each window is scored, the raw P.835 scores go through the
non-personalised calibration polynomials, and the window scores are averaged.

Samples outside [-1, 1]: ``speechmos.dnsmos.run`` rejects them, but that check is the only
difference from the official code, which scores such audio as it is. To reproduce the
official values this module runs the same computation itself (ONNX sessions + mel
spectrogram), without the range check and without rescaling; the tests check that it
equals ``speechmos.dnsmos.run`` wherever the latter accepts the input.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from urgentbench.metrics._threads import resolve_threads
from urgentbench.metrics.base import BatchItem, Metric, MetricError, Output
from urgentbench.requirements import PackageRequirement, pip

logger = logging.getLogger(__name__)

_SR = 16000
#: Window length of the official scorer, in seconds.
_WINDOW_S = 9.01
#: The P.808 model sees the window without its last 10 ms.
_P808_TRIM = 160
#: Most 9.01 s windows run through the ONNX models in one call.
_WINDOW_BATCH = 16

#: Official model files (paths inside the speechmos package) and their sha256.
_MODELS = {
    "p835": (
        "dnsmos_models/sig_bak_ovr.onnx",
        "269fbebdb513aa23cddfbb593542ecc540284a91849ac50516870e1ac78f6edd",
    ),
    "p808": (
        "dnsmos_models/model_v8.onnx",
        "9246480c58567bc6affd4200938e77eef49468c8bc7ed3776d109c07456f6e91",
    ),
}

#: Non-personalised calibration polynomials of dnsmos_local.py (highest power first).
_POLY_SIG = (-0.08397278, 1.22083953, 0.0052439)
_POLY_BAK = (-0.13166888, 1.60915514, -0.39604546)
_POLY_OVRL = (-0.06766283, 1.11546468, 0.04602535)


class DNSMOS(Metric):
    """DNSMOS P.835 SIG/BAK/OVRL and P.808 MOS of the enhanced speech (no reference needed).

    Options:
        threads: onnxruntime intra-op threads; None uses ``$URGENTBENCH_THREADS`` (set by
            the runner to cores // jobs) or onnxruntime's default.
    """

    name: ClassVar[str] = "dnsmos"
    aliases: ClassVar[tuple[str, ...]] = ("dnsmos_ovrl",)
    description: ClassVar[str] = (
        "DNSMOS P.835 (SIG, BAK, OVRL) and P.808 non-intrusive MOS, official ONNX models"
    )
    category: ClassVar[str] = "non-intrusive"
    needs_reference: ClassVar[bool] = False
    sample_rate: ClassVar[int | None] = _SR
    version: ClassVar[str] = "1"
    batch_size: ClassVar[int] = 16
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("dnsmos_ovrl", True, "DNSMOS P.835 overall quality (ranked by URGENT)"),
        Output("dnsmos_sig", True, "DNSMOS P.835 speech signal quality"),
        Output("dnsmos_bak", True, "DNSMOS P.835 background-noise quality"),
        Output("dnsmos_p808", True, "DNSMOS P.808 overall MOS"),
    )
    distributions: ClassVar[tuple[str, ...]] = ("speechmos", "onnxruntime", "librosa")
    packages: ClassVar[tuple[PackageRequirement, ...]] = (
        PackageRequirement("speechmos", pip("speechmos==0.0.1.1")),
        PackageRequirement("onnxruntime", pip("onnxruntime")),
        PackageRequirement("librosa", pip("librosa")),
    )
    reference_implementation: ClassVar[str] = (
        "microsoft/DNS-Challenge DNSMOS/dnsmos_local.py, as run by URGENT's "
        "calculate_nonintrusive_dnsmos.py (espnet2.enh.layers.dnsmos.DNSMOS_local)"
    )

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._p835: Any = None
        self._p808: Any = None
        self._hashes: dict[str, str] = {}
        self._threads = 0

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``threads``: onnxruntime intra-op threads (None: ``$URGENTBENCH_THREADS`` or default)."""
        return {"threads": None}

    def setup(self) -> None:
        """Check the model hashes and open both ONNX sessions once.

        Raises:
            RuntimeError: When the installed model files are not the pinned official ones.
        """
        import onnxruntime as ort

        from urgentbench.assets import PackagePart, sha256_file

        self._threads = resolve_threads(self.options["threads"])
        sess_options = ort.SessionOptions()
        sess_options.intra_op_num_threads = self._threads
        sess_options.inter_op_num_threads = 1
        sess_options.log_severity_level = 3
        sessions = {}
        for key, (rel, expected) in _MODELS.items():
            path = PackagePart("speechmos", rel).locate()
            if path is None:
                raise RuntimeError(
                    f"DNSMOS model {rel} not found in the speechmos package; fix: {pip('speechmos==0.0.1.1')}"
                )
            digest = sha256_file(path)
            if digest != expected:
                raise RuntimeError(
                    f"DNSMOS model {path} has sha256 {digest[:12]}…, expected the official "
                    f"{expected[:12]}…; fix: pip install --force-reinstall speechmos==0.0.1.1"
                )
            self._hashes[rel.rsplit("/", 1)[-1]] = digest
            sessions[key] = ort.InferenceSession(str(path), sess_options, providers=["CPUExecutionProvider"])
        self._p835, self._p808 = sessions["p835"], sessions["p808"]
        # Warm up (librosa's first mel spectrogram and onnxruntime's first run are slow),
        # so that per-utterance timings are steady.
        self._score(np.zeros(int(_WINDOW_S * _SR), dtype=np.float32))
        logger.debug("DNSMOS sessions ready (%s intra-op threads)", self._threads or "default")

    @classmethod
    def model_files(cls, options: dict[str, Any]) -> dict[str, str]:
        """The two official ONNX files and their sha256 (setup refuses any other file)."""
        return {rel.rsplit("/", 1)[-1]: sha for rel, sha in _MODELS.values()}

    def provenance(self) -> dict[str, Any]:
        """Version, options, model sha256s and library versions."""
        prov = super().provenance()
        # setup() refuses any file but the pinned ones, so before setup the pins are what will run
        prov["models"] = dict(self._hashes) or {rel.rsplit("/", 1)[-1]: sha for rel, sha in _MODELS.values()}
        prov["threads"] = self._threads or "default"
        return prov

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Score one 16 kHz waveform.

        Returns:
            ``dnsmos_ovrl``, ``dnsmos_sig``, ``dnsmos_bak`` and ``dnsmos_p808``.

        Raises:
            MetricError: For a wrong rate, an empty or non-finite waveform.
        """
        if self._p835 is None:
            self.setup()
        return _as_outputs(self._score(self._check(estimate, sample_rate)))

    def compute_batch(self, items: Sequence[BatchItem]) -> list[dict[str, Any] | Exception]:
        """Score several waveforms, running the 9.01 s windows of all of them through the models in batches.

        Every window has the same length, so windows of different utterances stack without
        padding; each window's scores equal its one-at-a-time scores to float rounding
        (within 1e-6 after averaging).

        Returns:
            One entry per item: the outputs of :meth:`compute`, or the :class:`MetricError`
            it raises for that item.
        """
        if self._p835 is None:
            self.setup()
        out: list[dict[str, Any] | Exception | None] = [None] * len(items)
        windows: list[tuple[int, np.ndarray]] = []
        for i, item in enumerate(items):
            try:
                audio = self._check(item.estimate, item.sample_rate)
            except MetricError as exc:
                out[i] = exc
                continue
            windows.extend((i, segment) for segment in _windows(audio))
        per_item: dict[int, list[tuple[float, float, float, float]]] = {}
        for start in range(0, len(windows), _WINDOW_BATCH):
            chunk = windows[start : start + _WINDOW_BATCH]
            for (i, _), scores in zip(chunk, self._score_windows([segment for _, segment in chunk])):
                per_item.setdefault(i, []).append(scores)
        for i, scores in per_item.items():
            out[i] = _as_outputs(_mean_scores(scores))
        return out  # type: ignore[return-value]

    def _check(self, estimate: np.ndarray, sample_rate: int) -> np.ndarray:
        """The waveform as float32, or MetricError for a wrong rate, an empty or non-finite waveform."""
        if sample_rate != _SR:
            raise MetricError(f"DNSMOS needs {_SR} Hz audio, got {sample_rate} Hz")
        x = np.asarray(estimate, dtype=np.float32)
        if x.ndim != 1 or x.size == 0:
            raise MetricError(f"DNSMOS needs a non-empty mono waveform, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise MetricError("DNSMOS input contains NaN or Inf samples")
        return x

    def _score(self, audio: np.ndarray) -> tuple[float, float, float, float]:
        """Mean calibrated (SIG, BAK, OVRL) and P.808 over the official 9.01 s windows, one window per call."""
        return _mean_scores([self._score_windows([segment])[0] for segment in _windows(audio)])

    def _score_windows(self, segments: list[np.ndarray]) -> list[tuple[float, float, float, float]]:
        """Calibrated (SIG, BAK, OVRL) and P.808 of each 9.01 s window, the windows run as one batch."""
        batch = np.stack([segment.astype(np.float32) for segment in segments])
        raw = self._p835.run(None, {"input_1": batch})[0]
        mels = np.stack([_p808_features(segment[:-_P808_TRIM]) for segment in segments])
        p808 = self._p808.run(None, {"input_1": mels})[0][:, 0]
        return [
            (
                np.polyval(_POLY_SIG, raw_sig),
                np.polyval(_POLY_BAK, raw_bak),
                np.polyval(_POLY_OVRL, raw_ovrl),
                mos,
            )
            for (raw_sig, raw_bak, raw_ovrl), mos in zip(raw, p808)
        ]


def _windows(audio: np.ndarray) -> list[np.ndarray]:
    """The official 9.01 s windows (1 s hop) of a 16 kHz waveform, short clips repeated first."""
    window = int(_WINDOW_S * _SR)
    while len(audio) < window:  # repeat (doubling) short clips, as the official code does
        audio = np.append(audio, audio)
    n_windows = int(np.floor(len(audio) / _SR) - _WINDOW_S) + 1
    segments = [audio[int(idx * _SR) : int((idx + _WINDOW_S) * _SR)] for idx in range(n_windows)]
    return [segment for segment in segments if len(segment) == window]


def _mean_scores(per_window: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    """Average the window scores: (SIG, BAK, OVRL, P.808)."""
    sig, bak, ovrl, p808 = (float(np.mean(column)) for column in zip(*per_window))
    return sig, bak, ovrl, p808


def _as_outputs(scores: tuple[float, float, float, float]) -> dict[str, float]:
    """Output dict of (SIG, BAK, OVRL, P.808) scores."""
    sig, bak, ovrl, p808 = scores
    return {"dnsmos_ovrl": ovrl, "dnsmos_sig": sig, "dnsmos_bak": bak, "dnsmos_p808": p808}


def _p808_features(segment: np.ndarray) -> np.ndarray:
    """Log-mel input of the P.808 model: 120 bands, 321-point FFT, 10 ms hop, (dB + 40) / 40."""
    import librosa

    mel = librosa.feature.melspectrogram(y=segment, sr=_SR, n_fft=321, hop_length=160, n_mels=120)
    mel_db = (librosa.power_to_db(mel, ref=np.max) + 40) / 40
    return np.ascontiguousarray(mel_db.T, dtype=np.float32)

