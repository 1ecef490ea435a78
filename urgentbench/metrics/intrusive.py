"""Intrusive speech-enhancement metrics (need the clean reference): PESQ, ESTOI, SDR, SI-SDR, LSD, MCD.

Each metric reproduces URGENT's 2024/2025 evaluation scripts from their definitions
(``evaluation_metrics/calculate_intrusive_se_metrics.py``); SI-SDR is an extra that
URGENT does not rank. Heavy packages are imported inside :meth:`compute`, so
importing this module is cheap.

Shared input rules (all metrics):

- ``estimate`` and ``reference`` must be 1-D, equally long, non-empty and finite;
  otherwise :class:`~urgentbench.metrics.base.MetricError` (the runner already enforces
  this; the check is a safety net, never a silent trim or pad).
- A silent (all-zero) reference raises ``MetricError``: an intrusive score against
  silence is meaningless, and several of the underlying packages divide by its energy.
- A silent estimate is left to the metric: PESQ raises ``MetricError``; SDR and SI-SDR
  give the -50 dB clamp; ESTOI, LSD and MCD return their (poor) finite values.
"""

from __future__ import annotations

import importlib
import logging
import math
import sys
import warnings
from typing import Any, ClassVar

import numpy as np

from urgentbench.errors import one_line
from urgentbench.metrics.base import Metric, MetricError, Output
from urgentbench.metrics.functional import (
    SDR_CLAMP_DB,  # ±50 dB clip of SDR and SI-SDR, one constant for both
    single_threaded_blas,
)
from urgentbench.requirements import PackageRequirement, pip

logger = logging.getLogger(__name__)

_URGENT_SCRIPT = "URGENT 2024/2025 evaluation_metrics/calculate_intrusive_se_metrics.py"


class IntrusiveMetric(Metric):
    """Common validation and provenance of the intrusive metrics."""

    category: ClassVar[str] = "intrusive"
    needs_reference: ClassVar[bool] = True

    def _pair(
        self, estimate: np.ndarray, reference: np.ndarray | None, dtype: type = np.float64
    ) -> tuple[np.ndarray, np.ndarray]:
        """Validate the pair and return ``(estimate, reference)`` as contiguous ``dtype`` arrays.

        Raises:
            MetricError: Missing reference, not 1-D, unequal lengths, empty, non-finite,
                or a silent reference.
        """
        if reference is None:
            raise MetricError(f"{self.name} needs a reference signal, got none")
        est = np.ascontiguousarray(estimate, dtype=dtype)
        ref = np.ascontiguousarray(reference, dtype=dtype)
        if est.ndim != 1 or ref.ndim != 1:
            raise MetricError(f"{self.name} expects mono 1-D signals, got shapes {est.shape} and {ref.shape}")
        if est.shape != ref.shape:
            raise MetricError(
                f"{self.name}: estimate and reference differ in length ({est.size} vs {ref.size} samples)"
            )
        if est.size == 0:
            raise MetricError(f"{self.name}: signals are empty")
        if not (np.all(np.isfinite(est)) and np.all(np.isfinite(ref))):
            raise MetricError(f"{self.name}: signals contain NaN or Inf")
        if not np.any(ref):
            raise MetricError(
                f"{self.name}: reference is silent (all zeros); an intrusive score is undefined"
            )
        return est, ref


class PESQ(IntrusiveMetric):
    """PESQ (ITU-T P.862 narrow-band at 8 kHz, P.862.2 wide-band at 16 kHz), URGENT's way.

    Working rate: 8 kHz audio is scored narrow-band at 8 kHz; 16 kHz audio wide-band;
    audio above 16 kHz is resampled to 16 kHz (soxr HQ, by the runner or, when called
    directly, here) and scored wide-band. Rates below 16 kHz other than 8 kHz raise
    ``MetricError``, as URGENT's script does.

    Any failure of the ``pesq`` package (``NoUtterancesError``, ``BufferTooShortError``
    for less than 0.25 s, ...) raises ``MetricError`` and the utterance is recorded as
    missing with the reason. URGENT instead uses ``on_error=RETURN_VALUES`` and turns only
    "no utterances" into NaN, so other error codes (e.g. -1) would be averaged as scores;
    here no error code is ever reported as a score.
    """

    name = "pesq"
    description = "Perceptual Evaluation of Speech Quality (P.862 nb at 8 kHz, P.862.2 wb at 16 kHz)"
    version = "1"
    outputs = (Output("pesq", True, "PESQ MOS-LQO, -0.5..4.5 (wide-band at 16 kHz, narrow-band at 8 kHz)"),)
    packages = (PackageRequirement("pesq", pip("pesq==0.0.4")),)
    distributions = ("pesq", "soxr")
    reference_implementation = (
        f"{_URGENT_SCRIPT} (pesq_metric): pesq.pesq(fs, ref, inf, 'nb' if fs == 8000 else 'wb') after "
        "soxr.resample(x, fs, 16000) for fs > 16 kHz; ludlows/python-pesq 0.0.4"
    )

    def working_rate(self, native_rate: int) -> int:
        """8000 for 8 kHz audio, 16000 for 16 kHz and above; other rates are passed through and rejected."""
        if native_rate >= 16000:
            return 16000
        return native_rate

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Score one utterance; see the class docstring for rates and errors."""
        est, ref = self._pair(estimate, reference, dtype=np.float32)
        if sample_rate == 8000:
            mode = "nb"
        elif sample_rate >= 16000:
            mode = "wb"
            if sample_rate > 16000:
                from urgentbench.audio import resample

                est = resample(est, sample_rate, 16000)
                ref = resample(ref, sample_rate, 16000)
                sample_rate = 16000
        else:
            raise MetricError(
                f"PESQ needs 8 kHz (narrow-band) or >= 16 kHz (wide-band) audio, got {sample_rate} Hz"
            )
        if not np.any(est):
            raise MetricError("PESQ failed: estimate is silent (all zeros)")
        import pesq

        try:
            value = pesq.pesq(sample_rate, ref, est, mode)
        except Exception as exc:  # the C extension raises PesqError subclasses, ValueError, ...
            raise MetricError(f"PESQ failed: {one_line(exc)}") from exc
        value = float(value)
        if not math.isfinite(value):
            raise MetricError(f"PESQ failed: non-finite score {value}")
        return {"pesq": value}


class ESTOI(IntrusiveMetric):
    """Extended STOI (Jensen and Taal, 2016) with pystoi, seeded as URGENT 2025 does.

    ``pystoi.stoi(ref, est, fs_sig=fs, extended=True)`` at the native rate (pystoi resamples
    to 10 kHz internally). pystoi adds tiny random noise while normalising, so the global
    numpy RNG is seeded with 0 immediately before the call (URGENT's 2024-11 fix); the
    caller's RNG state is restored afterwards.

    When fewer than 30 frames (about 0.4 s of speech) remain after pystoi's silent-frame
    removal, pystoi warns and returns 1e-5; this raises ``MetricError`` instead.
    """

    name = "estoi"
    description = "Extended Short-Time Objective Intelligibility (pystoi, extended=True, seeded)"
    version = "1"
    outputs = (Output("estoi", True, "ESTOI, nominally 0..1"),)
    packages = (PackageRequirement("pystoi", pip("pystoi==0.4.1")),)
    distributions = ("pystoi",)
    reference_implementation = (
        f"{_URGENT_SCRIPT} (estoi_metric): np.random.seed(0); pystoi.stoi(ref, inf, fs_sig=fs, "
        "extended=True); mpariente/pystoi 0.4.1"
    )

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Score one utterance at its native rate."""
        est, ref = self._pair(estimate, reference, dtype=np.float32)
        from pystoi import stoi

        state = np.random.get_state()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                np.random.seed(0)
                value = float(stoi(ref, est, sample_rate, extended=True))
        except Exception as exc:
            raise MetricError(f"ESTOI failed: {one_line(exc)}") from exc
        finally:
            np.random.set_state(state)
        for w in caught:
            if "Not enough STFT frames" in str(w.message):
                raise MetricError(
                    "ESTOI failed: fewer than 30 non-silent frames (about 0.4 s of speech) in the reference"
                )
            logger.debug("pystoi warning: %s", w.message)
        if not math.isfinite(value):
            raise MetricError(f"ESTOI failed: non-finite score {value}")
        return {"estoi": value}


class SDR(IntrusiveMetric):
    """Signal-to-distortion ratio of BSS Eval v3 (512-tap distortion filter) via fast_bss_eval.

    As URGENT: ``fast_bss_eval.bss_eval_sources(ref[None], est[None], clamp_db=50)``,
    plain SDR (not SI-SDR), native rate, clipped to ±50 dB. Option ``precision``:

    - ``"float64"`` (default, outside protocols): the samples and the whole computation in
      float64. Preferred for comparisons between systems: float32 rounding in the 512x512
      solve moves SDRs by up to about a dB on band-limited material, and by different
      amounts on different numpy/OpenBLAS builds (figures below). fast_bss_eval 0.1.4's
      ``compute_permutation=False`` path (URGENT's call) fails under numpy >= 2
      (``np.linalg.solve`` no longer broadcasts a stack of vectors), so the pairwise path
      (``compute_permutation=True``) is used; with a single source the permutation is
      trivial and the SDR is bit-identical (checked by emulating numpy 1's ``solve`` on the
      URGENT path).
    - ``"float32"`` (pinned by the ``urgent2024``/``urgent2025`` protocols): as the official
      ``calculate_intrusive_se_metrics.py`` computes it, which reads audio with
      ``sf.read(..., dtype="float32")``: the samples rounded to float32 (exact for 16- and
      24-bit files) and fast_bss_eval's ``compute_permutation=False`` computation in
      float32, step for step (its own normalisation, correlation and Toeplitz helpers,
      then the float32 solve with the right-hand side as one column, which is what
      numpy 1's ``solve`` did with URGENT's call; only the SDR, not the SIR/SAR the
      official call also computes). Under numpy 1.26 it is bit-identical to the official
      call on the 48 demo pairs described below; under numpy 2 it equals that call (run with numpy
      1's ``solve``) to 1e-4 dB (``tests/test_sdr_precision.py``).

    The official float32 value is itself only as stable as the float32 solve of a
    512x512 Toeplitz system, which is ill-conditioned for band-limited material. The same
    float32 computation under numpy 1.26 (URGENT's pin; the official call runs on nothing
    newer) and numpy 2.4 (their OpenBLAS builds differ) differed on the demo suite's noisy
    inputs (24 pairs at 44.1 kHz, the same resampled to 16 kHz) by up to 0.48 dB, mean
    0.011 dB, 17 of 48 pairs beyond 1e-4 dB; on the MaskSR2 demo pairs the issue measured
    up to 0.04 dB. float32 and float64 differ by up to 1.12 dB there (both extremes on
    ``demo_0016``, 8 kHz band limit, about 32 dB). So under a protocol this metric matches
    the official computation on the numpy installed, not every number of a numpy-1.26 run.

    The option is part of the results key, so float32 and float64 scores are stored
    apart and never ranked together. The result is clipped to exactly ±50 (fast_bss_eval's
    coherence clamp can give 50 + 2e-11). An all-zero estimate, for which the pairwise path
    fails on an undefined SIR, gets -50 dB directly: the value URGENT's call yields (zero
    coherence, clamped).
    """

    name = "sdr"
    description = (
        "Signal-to-distortion ratio, BSS Eval v3 with a 512-tap filter (fast_bss_eval), ±50 dB; "
        "float64 by default, float32 as the official script under the URGENT protocols"
    )
    version = "1"
    outputs = (Output("sdr", True, "SDR in dB, clipped to [-50, 50]"),)
    packages = (PackageRequirement("fast_bss_eval", pip("fast_bss_eval==0.1.4")),)
    distributions = ("fast_bss_eval", "numpy")
    reference_implementation = (
        f"{_URGENT_SCRIPT} (sdr_metric): fast_bss_eval.bss_eval_sources(ref[None], inf[None], "
        "compute_permutation=False, clamp_db=50) on float32 audio; fakufaku/fast_bss_eval 0.1.4"
    )

    #: Accepted values of the ``precision`` option.
    PRECISIONS: ClassVar[tuple[str, ...]] = ("float64", "float32")

    def __init__(self, **options: Any):
        super().__init__(**options)
        if self.options["precision"] not in self.PRECISIONS:
            precision = self.options["precision"]
            raise ValueError(f"sdr: precision must be one of {', '.join(self.PRECISIONS)}, got {precision!r}")

    def import_packages(self) -> None:
        """Load fast_bss_eval as :meth:`compute` uses it (without torch when torch is not loaded)."""
        import_fast_bss_eval()

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``precision``: ``"float64"`` (default) or ``"float32"`` (the official script's arithmetic)."""
        return {"precision": "float64"}

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Score one utterance at its native rate."""
        float32 = self.options["precision"] == "float32"
        est, ref = self._pair(estimate, reference, dtype=np.float32 if float32 else np.float64)
        if not np.any(est):
            return {"sdr": -SDR_CLAMP_DB}
        try:
            with single_threaded_blas():  # the solve's sums as in a worker, wherever it is called
                if float32:
                    value = _official_float32_sdr(ref, est)
                else:
                    result = import_fast_bss_eval().bss_eval_sources(
                        ref[None], est[None], compute_permutation=True, clamp_db=SDR_CLAMP_DB
                    )
                    value = float(np.asarray(result[0]).reshape(-1)[0])
        except Exception as exc:  # LinAlgError for a singular system, ValueError, ...
            raise MetricError(f"SDR failed: {one_line(exc)}") from exc
        if not math.isfinite(value):
            raise MetricError(f"SDR failed: non-finite value {value}")
        # fast_bss_eval clamps the coherence, which can land a hair outside ±50 dB (50 + 2e-11)
        return {"sdr": min(max(value, -SDR_CLAMP_DB), SDR_CLAMP_DB)}


_FAST_BSS_EVAL: Any = None


def import_fast_bss_eval() -> Any:
    """A private copy of the ``fast_bss_eval`` package, loaded without torch when torch is not loaded.

    Its ``__init__`` imports torch only to accept torch tensors besides numpy arrays; SDR
    passes numpy arrays, whose code path does not change. Loading torch there cost each
    scoring worker about 1.2 s of CPU (1.5 s wall) before its first SDR. The torch-less
    package has incomplete stand-ins for its torch functions, so this copy is kept out of
    ``sys.modules``: anyone else importing ``fast_bss_eval`` gets the ordinary package.
    When torch is already loaded, the ordinary package is used.
    """
    global _FAST_BSS_EVAL
    if _FAST_BSS_EVAL is not None:
        return _FAST_BSS_EVAL
    if "torch" in sys.modules:
        return importlib.import_module("fast_bss_eval")
    ours = lambda name: name == "fast_bss_eval" or name.startswith("fast_bss_eval.")  # noqa: E731
    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError
    try:
        _FAST_BSS_EVAL = importlib.import_module("fast_bss_eval")
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
        for name in [name for name in sys.modules if ours(name)]:
            del sys.modules[name]
        sys.modules.update(saved)
    return _FAST_BSS_EVAL


def _official_float32_sdr(ref: np.ndarray, est: np.ndarray, filter_length: int = 512) -> float:
    """The SDR of fast_bss_eval's ``bss_eval_sources(ref[None], est[None], compute_permutation=False)``.

    The steps of fast_bss_eval 0.1.4's non-pairwise ``square_cosine_metrics`` that give the
    SDR, with its own helpers and in the inputs' dtype (float32 here), the solve taking the
    right-hand side as one column (numpy 1's reading of that call; numpy 2 refuses it).
    """
    backend = import_fast_bss_eval().numpy
    _coherence_to_neg_sdr, _normalize = backend.helpers._coherence_to_neg_sdr, backend.helpers._normalize
    toeplitz, compute_stats_2 = backend.linalg.toeplitz, backend.metrics.compute_stats_2

    est_n = _normalize(est[None], axis=-1)
    ref_n = _normalize(ref[None], axis=-1)
    acf, xcorr = compute_stats_2(ref_n, est_n, length=filter_length)
    acf_sdr = acf[..., [0], [0]].swapaxes(-2, -1)[..., :filter_length]
    xcorr_sdr = xcorr[..., :, [0], [0]].swapaxes(-2, -1)
    sol = np.linalg.solve(toeplitz(acf_sdr), xcorr_sdr[..., None])[..., 0]
    coh = np.einsum("...l,...l->...", xcorr_sdr, sol)
    return float(-_coherence_to_neg_sdr(coh, clamp_db=SDR_CLAMP_DB).reshape(-1)[0])


class SISDR(IntrusiveMetric):
    """Scale-invariant SDR (Le Roux et al., 2019); not ranked by URGENT.

    :func:`urgentbench.metrics.functional.si_sdr` without mean removal, clipped to ±50 dB
    like SDR so that identical signals give 50 rather than infinity. Native rate.
    """

    name = "si_sdr"
    aliases = ("si-sdr", "sisdr")
    description = "Scale-invariant signal-to-distortion ratio (no mean removal), ±50 dB"
    version = "1"
    outputs = (Output("si_sdr", True, "SI-SDR in dB, clipped to [-50, 50]"),)
    packages = ()
    reference_implementation = (
        "Le Roux, Wisdom, Erdogan, Hershey, 'SDR - half-baked or well done?', ICASSP 2019; agrees with "
        "fast_bss_eval.si_sdr (zero_mean=False)"
    )

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Score one utterance at its native rate."""
        from urgentbench.metrics import functional

        est, ref = self._pair(estimate, reference)
        try:
            value = functional.si_sdr(ref, est, clamp_db=SDR_CLAMP_DB)
        except ValueError as exc:
            raise MetricError(f"SI-SDR failed: {exc}") from exc
        return {"si_sdr": value}


class LSD(IntrusiveMetric):
    """Log-spectral distance as URGENT 2024/2025 (natural log of power ratios, not dB).

    See :func:`urgentbench.metrics.functional.lsd`: least-squares rescaling of the
    estimate, 32 ms Hann STFT with 16 ms hop at the native rate. Lower is better.
    Digitally silent stretches of the reference add to LSD even for a perfect estimate
    (an all-zero frame counts ``ln(1e8) = 18.42``), exactly as in URGENT.
    """

    name = "lsd"
    description = "Log-spectral distance (URGENT definition, natural log), lower is better"
    version = "1"
    outputs = (Output("lsd", False, "LSD, natural-log domain (URGENT definition)"),)
    # librosa's STFT reproduced in numpy, bit-identical (urgentbench.metrics.stft)
    distributions = ("numpy",)
    reference_implementation = (
        f"{_URGENT_SCRIPT} (lsd_metric): least-squares scaling, librosa.stft(n_fft=int(0.032 fs), "
        "hop=int(0.016 fs)), per-frame sqrt(mean_f ln(R^2/(I+1e-8)^2+1e-8)^2), mean over frames"
    )

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Score one utterance at its native rate."""
        from urgentbench.metrics import functional

        est, ref = self._pair(estimate, reference)
        try:
            value = functional.lsd(ref, est, sample_rate)
        except ValueError as exc:
            raise MetricError(f"LSD failed: {exc}") from exc
        if not math.isfinite(value):
            raise MetricError(f"LSD failed: non-finite value {value}")
        return {"lsd": value}


class MCD(IntrusiveMetric):
    """Mel-cepstral distortion as URGENT 2024/2025 (SPTK mel-cepstra + FastDTW, c0 included).

    See :func:`urgentbench.metrics.functional.mcd`. Native rate only, with the cepstral
    order and warping constant looked up by rate (8, 16, 22.05, 24, 32, 44.1, 48 kHz);
    any other rate raises ``MetricError``. Needs at least 1024 samples. Lower is better.

    The official script calls ``pysptk.mcep`` once per frame and aligns with the
    pure-Python ``fastdtw``. Here the same SPTK algorithm runs on all frames at once
    (:mod:`urgentbench.metrics.mcep`; coefficients within about 1e-14 of pysptk's) and the
    alignment is fastdtw's algorithm with the same path (:func:`functional.fastdtw_path`);
    12 to 15 times faster in all (``benchmarks/mcd_kernels.py``). The values differ from the
    earlier pysptk + fastdtw computation by about 1e-14 dB; from the official
    ``mcd_utils``, which gets a float32-scaled estimate, by about 3e-7 dB
    (``tests/test_mcep.py`` checks 1e-4).

    Version ``"2"``: the alignment takes the reference first, as the official script does
    (``fastdtw(mcep(ref), mcep(est))``). Version 1 aligned the estimate first; FastDTW
    breaks ties by argument order, so on some pairs the path, and MCD, differed (0.032 dB
    on one of 12 pairs measured by ``benchmarks/vs_official.py``). Scores stored with
    version 1 are not mixed with version 2 scores.
    """

    name = "mcd"
    description = "Mel-cepstral distortion in dB (URGENT: SPTK mcep + fastdtw, incl. c0), lower is better"
    version = "2"
    outputs = (Output("mcd", False, "MCD in dB, 0 for identical signals"),)
    distributions = ("numpy", "scipy")
    reference_implementation = (
        f"{_URGENT_SCRIPT} (mcd_metric) and mcd_utils.py (from ESPnet utils/mcd_calculate.py): "
        "least-squares scaling, 1024/256-sample Hamming frames, pysptk.mcep(eps=1e-6, etype=1), "
        "fastdtw(euclidean), mean (10/ln10) sqrt(2 sum dc^2)"
    )

    reference_state_cacheable = True

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Score one utterance at its native rate."""
        est, ref = self._pair(estimate, reference)
        return self.compute_with_state(est, ref, self.reference_state(ref, sample_rate), sample_rate)

    def reference_state(self, reference: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """The reference's mel-cepstra (the reference is never rescaled, so they depend on it alone)."""
        from urgentbench.metrics import functional

        self._check_rate(sample_rate)
        ref = np.ascontiguousarray(reference, dtype=np.float64)
        try:
            with functional.single_threaded_blas():  # as in a worker, wherever it is called
                return {"mcep": functional.mel_cepstra(ref, sample_rate)}
        except ValueError as exc:
            raise MetricError(f"MCD failed: {exc}") from exc

    def compute_with_state(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        state: dict[str, np.ndarray],
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """MCD from the reference's cached mel-cepstra: :func:`functional.mcd`, step for step."""
        from urgentbench.metrics import functional

        self._check_rate(sample_rate)
        est, ref = self._pair(estimate, reference)
        try:
            with functional.single_threaded_blas():  # as in a worker, wherever it is called
                scaled = functional.least_squares_scale(ref, est)
                value = functional.aligned_cepstral_distance(state["mcep"], functional.mel_cepstra(scaled, sample_rate))
        except ValueError as exc:
            raise MetricError(f"MCD failed: {exc}") from exc
        if not math.isfinite(value):
            raise MetricError(f"MCD failed: non-finite value {value}")
        return {"mcd": value}

    @staticmethod
    def _check_rate(sample_rate: int) -> None:
        from urgentbench.metrics import functional

        if sample_rate not in functional.MCEP_PARAMS:
            supported = ", ".join(str(r) for r in functional.MCEP_PARAMS)
            raise MetricError(f"MCD is not defined at {sample_rate} Hz (supported: {supported} Hz)")
