"""Metric functions for one pair of signals, and the pure math of SI-SDR, LSD and MCD.

Every registered metric has a function ``name(ref, est, sr, **options)`` (``pesq``,
``estoi``, ``sdr``, ``si_sdr``, ``lsd``, ``mcd``, ``dnsmos``, ``nisqa``, ``plcmos``,
``utmos``, ``spk_sim``, ``wer`` with ``transcript=``, ``speechbertscore``, ``lps``; a
plug-in's metric by its name too) that gives the value a run stores for that pair: a
float for a metric with one output, the result dict for one with several (DNSMOS, NISQA,
WER). :func:`compute` gives any metric's whole result dict. Model metrics are set up once
per process and options (:func:`setup_metric`, :func:`clear_cache`). A pair for which a
run stores a failure raises (``MetricError`` with the run's reason; ``ValueError`` from
the three kernels below).

The kernels of SI-SDR, LSD and MCD are the functions of those names: each takes two mono
waveforms of equal length (reference first, as in bss_eval) and returns a float (SI-SDR
clipped to ±50 dB unless ``clamp_db=None``). They read no files and load no models;
librosa and scipy are imported only by the function that needs them. MCD's mel-cepstral analysis
is :mod:`urgentbench.metrics.mcep` (SPTK's algorithm on all frames at once) and its
alignment :func:`fastdtw_path` (fastdtw's algorithm, same path); pysptk and fastdtw
themselves serve only as references in the tests.

Computation is in float64 whatever the input dtype. URGENT reads audio as float32
and computes partly in float32; on real speech the difference is far below the
printed precision of the official results (measured on the test fixtures at 16 and
44.1 kHz: about 1e-6 for LSD, 1e-9 for MCD).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from urgentbench.metrics.dtw import fastdtw_path

#: URGENT's mel-cepstrum settings by sample rate: ``{fs: (mcep_dim, alpha)}``.
#: ``mcep_dim`` is the cepstral order, so each frame has ``mcep_dim + 1`` coefficients
#: (c0 included); ``alpha`` is the all-pass (frequency-warping) constant.
MCEP_PARAMS: dict[int, tuple[int, float]] = {
    8000: (13, 0.31),
    16000: (23, 0.42),
    22050: (34, 0.45),
    24000: (34, 0.46),
    32000: (36, 0.50),
    44100: (39, 0.53),
    48000: (39, 0.55),
}

#: MCD analysis frame and shift, in samples at the native rate (not in seconds).
MCD_FRAME_LENGTH = 1024
MCD_FRAME_SHIFT = 256
#: Floor added to the periodogram inside SPTK's mel-cepstral analysis (``etype=1``).
MCD_MCEP_EPS = 1e-6

#: LSD analysis window and hop, in seconds (converted with ``int(seconds * fs)``).
LSD_WINDOW_S = 0.032
LSD_HOP_S = 0.016
#: The epsilon inside the LSD log ratio and the least-squares scaling.
EPS = 1e-8
#: SDR and SI-SDR are clipped to [-SDR_CLAMP_DB, SDR_CLAMP_DB] (URGENT's fix for ±inf).
SDR_CLAMP_DB = 50.0

_DB_PER_NEPER = 10.0 / math.log(10.0)


def _blas_single_threaded(function: Callable[..., float]) -> Callable[..., float]:
    """Run ``function`` with BLAS on one thread, as a run's workers do.

    Its sums (dot products) are then bit-identical to the stored values wherever it is called.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> float:
        with single_threaded_blas():
            return function(*args, **kwargs)

    return wrapper


def _pair(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a reference/estimate pair and return both as 1-D float64 arrays."""
    ref = np.asarray(ref, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    if ref.ndim != 1 or est.ndim != 1:
        raise ValueError(f"expected 1-D waveforms, got shapes {ref.shape} and {est.shape}")
    if ref.shape != est.shape:
        raise ValueError(f"reference and estimate differ in length ({ref.size} vs {est.size} samples)")
    if ref.size == 0:
        raise ValueError("waveforms are empty")
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(est))):
        raise ValueError("waveforms contain NaN or Inf")
    if not np.any(ref):
        raise ValueError("reference is silent (all zeros); an intrusive score is undefined")
    return ref, est


def least_squares_scale(ref: np.ndarray, est: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Rescale ``est`` by the factor that best fits ``ref`` in the least-squares sense.

    ``alpha = <ref, est> / (||est||^2 + eps)`` and the result is ``alpha * est``; a silent
    estimate stays silent (alpha = 0). URGENT applies this before LSD and MCD so that
    both ignore the overall gain of the estimate.

    Args:
        ref: Reference waveform, 1-D.
        est: Estimated waveform, same length.
        eps: Regulariser of the denominator.

    Returns:
        The rescaled estimate as float64.
    """
    ref, est = _pair(ref, est)
    alpha = np.dot(ref, est) / (np.dot(est, est) + eps)
    return alpha * est


@_blas_single_threaded
def si_sdr(ref: np.ndarray, est: np.ndarray, sr: int | None = None, *, clamp_db: float | None = SDR_CLAMP_DB) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., ICASSP 2019).

    The reference is scaled to best match the estimate, ``alpha = <est, ref> / ||ref||^2``,
    and ``SI-SDR = 10 log10(||alpha ref||^2 / ||est - alpha ref||^2)``. No mean is removed
    (the default of fast_bss_eval and torchmetrics); speech has a negligible DC offset.
    With the default ``clamp_db`` this is the value a run stores for the ``si_sdr`` metric.

    Args:
        ref: Reference waveform, 1-D.
        est: Estimated waveform, same length.
        sr: The sample rate (accepted for the signature every metric function shares;
            SI-SDR does not depend on it).
        clamp_db: The result is clipped to ``[-clamp_db, clamp_db]`` (default ±50 dB, as the
            metric stores it); an estimate equal to (a multiple of) the reference then gives
            ``+clamp_db`` and an estimate that is silent or orthogonal to it ``-clamp_db``.
            None: no clipping (``±inf`` for those two cases).

    Returns:
        SI-SDR in dB (``±inf`` for the two degenerate cases when ``clamp_db`` is None).

    Raises:
        ValueError: For a silent reference (undefined), unequal lengths, or non-finite input.
    """
    ref, est = _pair(ref, est)
    ref_energy = np.dot(ref, ref)
    if ref_energy == 0.0:
        raise ValueError("reference is silent (all zeros); SI-SDR is undefined")
    target = (np.dot(est, ref) / ref_energy) * ref
    residual = est - target
    target_energy = np.dot(target, target)
    residual_energy = np.dot(residual, residual)
    if residual_energy == 0.0 and target_energy == 0.0:  # silent estimate
        value = -math.inf
    elif residual_energy == 0.0:
        value = math.inf
    elif target_energy == 0.0:
        value = -math.inf
    else:
        value = 10.0 * math.log10(target_energy / residual_energy)
    if clamp_db is not None:
        value = min(max(value, -clamp_db), clamp_db)
    return float(value)


@_blas_single_threaded
def lsd(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """Log-spectral distance as URGENT 2024/2025 defines it (natural log, not dB).

    1. ``est`` is rescaled by the least-squares factor (:func:`least_squares_scale`).
    2. Magnitude spectrograms ``R`` (reference) and ``I`` (estimate) by ``librosa.stft``:
       Hann window, ``n_fft = int(0.032 fs)``, ``hop = int(0.016 fs)``, ``center=True``
       with zero padding (librosa >= 0.10 default, pinned here); computed by
       :func:`urgentbench.metrics.stft.stft`, bit-identical to it without loading librosa.
    3. Per frame ``t``: ``d_t = sqrt(mean_f [ln(R^2 / (I + eps)^2 + eps)]^2)`` with
       ``eps = 1e-8``; note ``eps`` is added to ``I`` before squaring and again to the ratio.
    4. LSD is the mean of ``d_t`` over frames. Lower is better.

    Because of where ``eps`` sits, a bin that is exactly zero in the reference contributes
    ``|ln(R^2 / (I + eps)^2 + eps)| >= |ln(eps)| = 18.42`` even when the estimate is also
    zero there. Digital silence (zero padding, muted segments) therefore raises LSD even
    for a perfect estimate: identical signals score 0 only if the reference has no zero
    bins. This is URGENT's definition and is kept for comparability.

    Args:
        ref: Reference waveform, 1-D.
        est: Estimated waveform, same length.
        fs: Sample rate in Hz (sets the window and hop).

    Returns:
        LSD (unitless, natural-log domain).

    Raises:
        ValueError: For unequal lengths, non-finite input, or a rate too low for the window.
    """
    from urgentbench.metrics.stft import stft

    ref, est = _pair(ref, est)
    est = least_squares_scale(ref, est)
    n_fft = int(LSD_WINDOW_S * fs)
    hop = int(LSD_HOP_S * fs)
    if hop < 1:
        raise ValueError(f"sample rate {fs} Hz is too low for LSD's 16 ms hop")
    mag_ref = np.abs(stft(ref, n_fft, hop))  # (freq, frames)
    mag_est = np.abs(stft(est, n_fft, hop))
    log_ratio = np.log(mag_ref**2 / (mag_est + EPS) ** 2 + EPS)
    per_frame = np.sqrt(np.mean(log_ratio**2, axis=0))
    return float(np.mean(per_frame))


def sptk_hamming(n: int) -> np.ndarray:
    """SPTK's power-normalised Hamming window (``pysptk.sptk.hamming(n)``), value for value.

    ``w[i] = 0.54 - 0.46 cos(2 pi i / (n - 1))``, divided by ``sqrt(sum w^2)``; computed
    with the C library's ``cos`` and a sequential sum, as SPTK does, so the values are
    identical to pysptk's, not merely close.

    Raises:
        ValueError: For ``n < 2``.
    """
    if n < 2:
        raise ValueError(f"window length must be >= 2, got {n}")
    arg = 2.0 * math.pi / (n - 1)
    w = [0.54 - 0.46 * math.cos(i * arg) for i in range(n)]
    g = 0.0
    for v in w:
        g += v * v
    return np.asarray(w) / math.sqrt(g)


def mcep_params(fs: int) -> tuple[int, float]:
    """Return URGENT's ``(mcep_dim, alpha)`` for sample rate ``fs``.

    Raises:
        ValueError: For a rate not in :data:`MCEP_PARAMS`.
    """
    try:
        return MCEP_PARAMS[int(fs)]
    except KeyError:
        known = ", ".join(str(r) for r in MCEP_PARAMS)
        raise ValueError(f"MCD has no mel-cepstrum settings for {fs} Hz (supported: {known} Hz)") from None


def mel_cepstra(x: np.ndarray, fs: int) -> np.ndarray:
    """Frame-wise SPTK mel-cepstra of ``x`` as used by URGENT's MCD.

    Frames of 1024 samples with a shift of 256 samples at the native rate, no padding
    (``(len(x) - 1024) // 256 + 1`` frames, a trailing partial frame is dropped), each
    multiplied by SPTK's Hamming window (:func:`sptk_hamming`, power-normalised) and
    analysed as ``pysptk.mcep(frame, order=mcep_dim, alpha=alpha, eps=1e-6, etype=1)``
    does (2 to 30 Newton iterations, stopping threshold 1e-3), all frames at once by
    :func:`urgentbench.metrics.mcep.mcep`; the coefficients agree with pysptk's to about
    1e-14 (``tests/test_mcep.py`` checks 1e-6).

    Silence needs no special case: with ``etype=1`` SPTK adds ``eps`` to the periodogram,
    so an all-zero frame has the finite cepstrum ``c0 = ln(1e-6) / 2``, ``c1.. = 0``.

    Args:
        x: Waveform, 1-D.
        fs: Sample rate in Hz; selects ``(mcep_dim, alpha)`` from :data:`MCEP_PARAMS`.

    Returns:
        Array of shape ``(frames, mcep_dim + 1)``.

    Raises:
        ValueError: For an unsupported rate, a signal shorter than one frame, non-finite
            samples, or a frame whose analysis fails (as SPTK's would) or is not finite.
    """
    from urgentbench.metrics.mcep import mcep

    order, alpha = mcep_params(fs)
    x = np.asarray(x, dtype=np.float64)
    n_frames = (x.size - MCD_FRAME_LENGTH) // MCD_FRAME_SHIFT + 1
    if n_frames < 1:
        raise ValueError(f"signal has {x.size} samples, fewer than one {MCD_FRAME_LENGTH}-sample MCD frame")
    frames = np.lib.stride_tricks.sliding_window_view(x, MCD_FRAME_LENGTH)[::MCD_FRAME_SHIFT][:n_frames]
    try:
        out = mcep(frames * _hamming_1024(), order, alpha, eps=MCD_MCEP_EPS)
    except ValueError as exc:
        raise ValueError(f"mel-cepstral analysis failed: {exc}") from exc
    if not np.all(np.isfinite(out)):
        raise ValueError("mel-cepstral analysis gave non-finite coefficients")
    return out


@lru_cache(maxsize=1)
def _hamming_1024() -> np.ndarray:
    w = sptk_hamming(MCD_FRAME_LENGTH)
    w.setflags(write=False)
    return w


@_blas_single_threaded
def mcd(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """Mel-cepstral distortion in dB as URGENT 2024/2025 defines it.

    1. ``est`` is rescaled by the least-squares factor (:func:`least_squares_scale`).
    2. Mel-cepstra of both signals by :func:`mel_cepstra` (order and alpha by rate).
    3. The two sequences are aligned by FastDTW (Euclidean distance, radius 1, reference
       first, as the official script): :func:`fastdtw_path`, the path ``fastdtw`` gives.
    4. ``MCD = mean over the path of (10 / ln 10) * sqrt(2 * sum_d (c_ref,d - c_est,d)^2)``,
       summing over all coefficients **including c0** (so it is gain-sensitive, which the
       least-squares scaling partly compensates); see :func:`aligned_cepstral_distance`.

    Lower is better; about 0 (not exactly: the scaling factor is not exactly 1) for
    identical signals. FastDTW is an approximation of DTW, so the value can depend
    slightly on the order of the arguments. The scaling factor is computed on the
    unaligned waveforms: a delayed estimate correlates poorly with the reference, is
    scaled down, and its c0 is then off by more than the alignment can repair.

    Args:
        ref: Reference waveform, 1-D.
        est: Estimated waveform, same length.
        fs: Sample rate in Hz; must be a key of :data:`MCEP_PARAMS`.

    Returns:
        MCD in dB.

    Raises:
        ValueError: For an unsupported rate, unequal lengths, non-finite input, or input
            shorter than one 1024-sample frame.
    """
    mcep_params(fs)  # fail fast on an unsupported rate
    ref, est = _pair(ref, est)
    est = least_squares_scale(ref, est)
    return aligned_cepstral_distance(mel_cepstra(ref, fs), mel_cepstra(est, fs))


def aligned_cepstral_distance(mc_ref: np.ndarray, mc_est: np.ndarray) -> float:
    """Mean mel-cepstral distance in dB along the FastDTW alignment of two cepstrum sequences.

    The path is :func:`fastdtw_path` ``(mc_ref, mc_est)``, the path of
    ``fastdtw(mc_ref, mc_est, dist=scipy.spatial.distance.euclidean)`` (radius 1), reference
    first as URGENT's ``mcd_metric`` calls ``mcd_utils.calculate(ref, scaled_estimate)``
    (FastDTW breaks ties by argument order, so the order changes the path on some pairs);
    the result is the mean over the path of
    ``(10 / ln 10) * sqrt(2 * sum_d (c_ref,d - c_est,d)^2)`` over all coefficients.

    Args:
        mc_ref: Reference cepstra, shape ``(frames_ref, dims)``.
        mc_est: Estimated cepstra, shape ``(frames_est, dims)``.

    Returns:
        The distance in dB.

    Raises:
        ValueError: When the sequences are empty, differ in dimension or are not finite.
    """
    mc_ref = np.asarray(mc_ref, dtype=np.float64)
    mc_est = np.asarray(mc_est, dtype=np.float64)
    if mc_ref.ndim != 2 or mc_est.ndim != 2 or mc_ref.shape[1] != mc_est.shape[1]:
        raise ValueError(
            f"cepstrum sequences must be (frames, dims) alike, got {mc_ref.shape} and {mc_est.shape}"
        )
    if len(mc_ref) == 0 or len(mc_est) == 0:
        raise ValueError("cepstrum sequences are empty")
    pairs = fastdtw_path(mc_ref, mc_est)
    diff = mc_ref[pairs[:, 0]] - mc_est[pairs[:, 1]]
    per_frame = _DB_PER_NEPER * np.sqrt(2.0 * np.sum(diff**2, axis=1))
    return float(np.mean(per_frame))


# ---------------------------------------------------------------------------- metric functions
# One function per registered metric, ``name(ref, est, sr, **options)``: the value a run
# stores for that pair (same resampling to the metric's working rate, same code path). Model
# metrics keep one set-up instance per (metric, options) in a module-level cache.

#: (metric name, options) -> a set-up metric instance (:func:`setup_metric`).
_INSTANCES: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def setup_metric(name: str, **options: Any) -> Any:
    """The set-up instance of metric ``name`` with ``options`` (made once, then cached).

    Raises:
        UnknownNameError: For an unknown metric.
        MissingRequirementError: When its packages or model files are missing (with the fix).
        ValueError: For an unknown option.
    """
    import json

    from urgentbench.metrics import METRICS
    from urgentbench.requirements import MissingRequirementError

    cls = METRICS.get(name)
    key = (cls.name, json.dumps(options, sort_keys=True, default=str))
    with _LOCK:
        if key not in _INSTANCES:
            avail = cls.availability(options)
            if not avail.ok:
                raise MissingRequirementError("metric", cls.name, avail)
            instance = cls(**options)
            instance.setup()
            _INSTANCES[key] = instance
        return _INSTANCES[key]


def clear_cache() -> None:
    """Forget every cached metric instance (releases their models)."""
    with _LOCK:
        _INSTANCES.clear()


def compute(
    name: str, ref: np.ndarray | None, est: np.ndarray, sr: int, *, transcript: str | None = None, **options: Any
) -> dict[str, Any]:
    """The result dict a run stores for metric ``name`` on one pair (every output, and any details).

    The pair is resampled (soxr HQ, each signal once) to the metric's working rate, as the
    runner does, and handed to the metric's ``compute``. A run additionally refuses a
    silent, NaN or wrong-length output before any metric sees it (the participant's
    failure); here the metric scores whatever it is given.

    Args:
        name: A registered metric (``urgentbench ls metrics``).
        ref: The reference waveform (None for a metric that needs none).
        est: The enhanced waveform, as long as ``ref``.
        sr: The rate of both, in Hz.
        transcript: The reference transcript (``wer``).
        **options: The metric's options (as a protocol pins them; default its defaults).

    Raises:
        MetricError: Where a run stores a failure for this pair, with the same reason.
    """
    from urgentbench.audio import resample
    from urgentbench.metrics.base import MetricError

    metric = setup_metric(name, **options)
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr < 1:
        raise MetricError(f"{metric.name}: sample rate must be a positive integer in Hz, got {sr!r}")
    sr = int(sr)
    if metric.needs_reference and ref is None:
        raise MetricError(f"{metric.name} needs a reference signal, got none")
    if metric.needs_transcript and not transcript:
        raise MetricError(f"{metric.name} needs the reference transcript (transcript=...)")
    rate = metric.working_rate(sr)
    est = resample(np.asarray(est), sr, rate)
    ref = None if ref is None else resample(np.asarray(ref), sr, rate)
    with single_threaded_blas():  # as in a run's workers: bit-identical sums (SDR's solve, ...)
        return metric.compute(est, ref, rate, transcript=transcript)


def single_threaded_blas() -> Any:
    """BLAS limited to one thread while it is active, as :func:`urgentbench.pipeline.worker.configure_threads` does."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a core dependency; without it values may differ in the last digits
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _value(name: str, ref: Any, est: Any, sr: int, transcript: str | None = None, **options: Any) -> Any:
    """The single output of a one-output metric as a float, the whole result dict otherwise."""
    from urgentbench.metrics import METRICS

    result = compute(name, ref, est, sr, transcript=transcript, **options)
    outputs = METRICS.get(name).outputs
    if len(outputs) == 1:
        value = result.get(outputs[0].name)
        return None if value is None else float(value)
    return result


def pesq(ref: np.ndarray, est: np.ndarray, sr: int, **options: Any) -> float:
    """PESQ as a run stores it (wide-band at 16 kHz and above, narrow-band at 8 kHz); see :func:`compute`."""
    return _value("pesq", ref, est, sr, **options)


def estoi(ref: np.ndarray, est: np.ndarray, sr: int, **options: Any) -> float:
    """Extended STOI (pystoi, seeded) as a run stores it; see :func:`compute`."""
    return _value("estoi", ref, est, sr, **options)


def sdr(ref: np.ndarray, est: np.ndarray, sr: int, **options: Any) -> float:
    """SDR (BSS Eval v3, ±50 dB; ``precision="float32"`` as the URGENT protocols pin it) as a run stores it."""
    return _value("sdr", ref, est, sr, **options)


def dnsmos(ref: np.ndarray | None, est: np.ndarray, sr: int, **options: Any) -> dict[str, Any]:
    """DNSMOS P.835 and P.808 of ``est`` (``ref`` is not used; may be None): ``dnsmos_ovrl``, ``_sig``, ``_bak``, ``_p808``."""
    return _value("dnsmos", ref, est, sr, **options)


def nisqa(ref: np.ndarray | None, est: np.ndarray, sr: int, **options: Any) -> dict[str, Any]:
    """NISQA v2.0 of ``est`` (``ref`` is not used; may be None): MOS and its four dimensions."""
    return _value("nisqa", ref, est, sr, **options)


def plcmos(ref: np.ndarray | None, est: np.ndarray, sr: int, **options: Any) -> float:
    """PLCMOS v2 of ``est`` (``ref`` is not used; may be None)."""
    return _value("plcmos", ref, est, sr, **options)


def utmos(ref: np.ndarray | None, est: np.ndarray, sr: int, **options: Any) -> float:
    """UTMOS22 strong of ``est`` (``ref`` is not used; may be None)."""
    return _value("utmos", ref, est, sr, **options)


def spk_sim(ref: np.ndarray, est: np.ndarray, sr: int, **options: Any) -> float:
    """Speaker similarity (cosine of speaker embeddings of ``ref`` and ``est``) as a run stores it."""
    return _value("spk_sim", ref, est, sr, **options)


def wer(ref: np.ndarray | None, est: np.ndarray, sr: int, *, transcript: str, **options: Any) -> dict[str, Any]:
    """WER and CER of ``est``'s transcript against ``transcript`` (``ref`` is not used), with the edit counts and hypothesis."""
    return _value("wer", ref, est, sr, transcript=transcript, **options)


def speechbertscore(ref: np.ndarray, est: np.ndarray, sr: int, **options: Any) -> float:
    """SpeechBERTScore precision of ``est`` against ``ref`` as a run stores it."""
    return _value("speechbertscore", ref, est, sr, **options)


def lps(ref: np.ndarray, est: np.ndarray, sr: int, **options: Any) -> float:
    """Levenshtein phoneme similarity of ``est`` against ``ref`` as a run stores it."""
    return _value("lps", ref, est, sr, **options)


def __getattr__(name: str) -> Any:
    """``functional.<metric>`` for a metric registered by a plug-in: ``f(ref, est, sr, *, transcript=None, **options)``."""
    from urgentbench.metrics import METRICS

    if name.startswith("_") or name not in METRICS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def function(ref: Any, est: Any, sr: int, *, transcript: str | None = None, **options: Any) -> Any:
        return _value(name, ref, est, sr, transcript=transcript, **options)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Metric {name!r} as a run stores it; see :func:`compute`."
    return function
