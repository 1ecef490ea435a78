"""Pure math of the intrusive metrics: SI-SDR, LSD and MCD as URGENT defines them.

Every function takes two mono waveforms of equal length (reference first, as in
bss_eval) and returns a float. Nothing here reads files or loads models; librosa,
pysptk and fastdtw are imported only by the function that needs them.

Computation is in float64 whatever the input dtype. URGENT reads audio as float32
and computes partly in float32; on real speech the difference is far below the
printed precision of the official results (measured on the test fixtures at 16 and
44.1 kHz: about 1e-6 for LSD, 1e-9 for MCD).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

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

_DB_PER_NEPER = 10.0 / math.log(10.0)


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


def si_sdr(ref: np.ndarray, est: np.ndarray, clamp_db: float | None = None) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., ICASSP 2019).

    The reference is scaled to best match the estimate, ``alpha = <est, ref> / ||ref||^2``,
    and ``SI-SDR = 10 log10(||alpha ref||^2 / ||est - alpha ref||^2)``. No mean is removed
    (the default of fast_bss_eval and torchmetrics); speech has a negligible DC offset.

    Args:
        ref: Reference waveform, 1-D.
        est: Estimated waveform, same length.
        clamp_db: If given, the result is clipped to ``[-clamp_db, clamp_db]``; an estimate
            equal to (a multiple of) the reference then gives ``+clamp_db`` and an estimate
            that is silent or orthogonal to it ``-clamp_db`` instead of ``±inf``.

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


def lsd(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """Log-spectral distance as URGENT 2024/2025 defines it (natural log, not dB).

    1. ``est`` is rescaled by the least-squares factor (:func:`least_squares_scale`).
    2. Magnitude spectrograms ``R`` (reference) and ``I`` (estimate) by ``librosa.stft``:
       Hann window, ``n_fft = int(0.032 fs)``, ``hop = int(0.016 fs)``, ``center=True``
       with zero padding (librosa >= 0.10 default, pinned here).
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
    import librosa

    ref, est = _pair(ref, est)
    est = least_squares_scale(ref, est)
    n_fft = int(LSD_WINDOW_S * fs)
    hop = int(LSD_HOP_S * fs)
    if hop < 1:
        raise ValueError(f"sample rate {fs} Hz is too low for LSD's 16 ms hop")
    stft: dict[str, Any] = dict(n_fft=n_fft, hop_length=hop, window="hann", center=True, pad_mode="constant")
    mag_ref = np.abs(librosa.stft(ref, **stft))  # (freq, frames)
    mag_est = np.abs(librosa.stft(est, **stft))
    log_ratio = np.log(mag_ref**2 / (mag_est + EPS) ** 2 + EPS)
    per_frame = np.sqrt(np.mean(log_ratio**2, axis=0))
    return float(np.mean(per_frame))


def _import_pysptk() -> Any:
    # pysptk 1.0 imports pkg_resources, which warns on recent setuptools; the warning is
    # about pysptk's packaging, not about anything the caller can fix.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import pysptk
    return pysptk


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
    multiplied by SPTK's Hamming window (``pysptk.sptk.hamming``, power-normalised) and
    analysed with ``pysptk.mcep(frame, order=mcep_dim, alpha=alpha, eps=1e-6, etype=1)``.

    Silence needs no special case: with ``etype=1`` SPTK adds ``eps`` to the periodogram,
    so an all-zero frame has the finite cepstrum ``c0 = ln(1e-6) / 2``, ``c1.. = 0``.

    Args:
        x: Waveform, 1-D.
        fs: Sample rate in Hz; selects ``(mcep_dim, alpha)`` from :data:`MCEP_PARAMS`.

    Returns:
        Array of shape ``(frames, mcep_dim + 1)``.

    Raises:
        ValueError: For an unsupported rate, a signal shorter than one frame, or a frame
            whose analysis fails or is not finite.
    """
    order, alpha = mcep_params(fs)
    x = np.asarray(x, dtype=np.float64)
    n_frames = (x.size - MCD_FRAME_LENGTH) // MCD_FRAME_SHIFT + 1
    if n_frames < 1:
        raise ValueError(f"signal has {x.size} samples, fewer than one {MCD_FRAME_LENGTH}-sample MCD frame")
    pysptk = _import_pysptk()
    window = pysptk.sptk.hamming(MCD_FRAME_LENGTH)
    frames = np.lib.stride_tricks.sliding_window_view(x, MCD_FRAME_LENGTH)[::MCD_FRAME_SHIFT][:n_frames]
    out = np.empty((n_frames, order + 1))
    for i, frame in enumerate(frames):
        try:
            out[i] = pysptk.mcep(frame * window, order=order, alpha=alpha, eps=MCD_MCEP_EPS, etype=1)
        except Exception as exc:  # SPTK reports numerical failures as RuntimeError
            raise ValueError(f"mel-cepstral analysis failed at frame {i}: {exc}") from exc
    if not np.all(np.isfinite(out)):
        raise ValueError("mel-cepstral analysis gave non-finite coefficients")
    return out


def mcd(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """Mel-cepstral distortion in dB as URGENT 2024/2025 defines it.

    1. ``est`` is rescaled by the least-squares factor (:func:`least_squares_scale`).
    2. Mel-cepstra of both signals by :func:`mel_cepstra` (order and alpha by rate).
    3. The two sequences are aligned with ``fastdtw`` (Euclidean distance, default
       radius 1), estimate first.
    4. ``MCD = mean over the path of (10 / ln 10) * sqrt(2 * sum_d (c_est,d - c_ref,d)^2)``,
       summing over all coefficients **including c0** (so it is gain-sensitive, which the
       least-squares scaling partly compensates); see :func:`aligned_cepstral_distance`.

    Lower is better; about 0 (not exactly: the scaling factor is not exactly 1) for
    identical signals. ``fastdtw`` is an approximation of DTW, so the value can depend
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
    """Mean mel-cepstral distance in dB along the fastdtw alignment of two cepstrum sequences.

    ``fastdtw(mc_est, mc_ref, dist=scipy.spatial.distance.euclidean)`` (default radius 1)
    gives the path; the result is the mean over the path of
    ``(10 / ln 10) * sqrt(2 * sum_d (c_est,d - c_ref,d)^2)`` over all coefficients.

    Args:
        mc_ref: Reference cepstra, shape ``(frames_ref, dims)``.
        mc_est: Estimated cepstra, shape ``(frames_est, dims)``.

    Returns:
        The distance in dB.

    Raises:
        ValueError: When the sequences are empty or differ in dimension.
    """
    from fastdtw import fastdtw
    from scipy.spatial.distance import euclidean

    mc_ref = np.asarray(mc_ref, dtype=np.float64)
    mc_est = np.asarray(mc_est, dtype=np.float64)
    if mc_ref.ndim != 2 or mc_est.ndim != 2 or mc_ref.shape[1] != mc_est.shape[1]:
        raise ValueError(
            f"cepstrum sequences must be (frames, dims) alike, got {mc_ref.shape} and {mc_est.shape}"
        )
    if len(mc_ref) == 0 or len(mc_est) == 0:
        raise ValueError("cepstrum sequences are empty")
    _, path = fastdtw(mc_est, mc_ref, dist=euclidean)
    pairs = np.asarray(path, dtype=np.intp)
    diff = mc_est[pairs[:, 0]] - mc_ref[pairs[:, 1]]
    per_frame = _DB_PER_NEPER * np.sqrt(2.0 * np.sum(diff**2, axis=1))
    return float(np.mean(per_frame))
