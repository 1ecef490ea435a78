"""Mel-cepstral analysis of many frames at once: SPTK's ``mcep`` algorithm, vectorised.

SPTK's ``mcep`` (the routine behind ``pysptk.mcep``, which URGENT's MCD calls once per
frame) fits a mel-cepstrum to each frame's periodogram by Newton-Raphson. This module
runs the same algorithm on a whole ``(frames, frame_length)`` array in float64:

1. Periodogram ``|FFT(frame)|^2 + eps`` (``etype=1``: ``eps`` is added to every bin, so a
   silent frame is analysed as a flat ``eps`` spectrum, not rejected), its log, and the
   real cepstrum of that log (inverse FFT); c[0] and c[N/2] halved.
2. Initial mel-cepstrum: that cepstrum frequency-warped (SPTK ``freqt``) to ``order``.
3. Newton-Raphson, at most ``max_iter`` iterations: unwarp the current mel-cepstrum
   (``freqt`` with ``-alpha``) to ``N/2 + 1`` linear coefficients, take the real part of
   their FFT (the log magnitude of the model), form ``periodogram / exp(2 log magnitude)``,
   its inverse FFT, and warp that (SPTK ``frqtr``) to ``2 * order + 1`` coefficients r(k).
   From ``min_iter`` on, a frame stops as soon as ``|(r0 - r0_previous) / r0| < threshold``
   (the comparison at ``min_iter`` is against the initial cepstrum's c[0], as in SPTK),
   before that iteration's update. Otherwise the Newton step, the solution of SPTK's
   Toeplitz-plus-Hankel system built from r(k), is added to the mel-cepstrum.

Each frame stops on its own (a per-frame mask); frames that have stopped are no longer
updated, exactly as if each had been analysed alone. The frequency warps are linear maps
with constant coefficients, so each is applied as a matrix product (composed with the
cosine transforms of the FFT steps, the spectra being even); the matrices are built once
per ``(frame_length, order, alpha)`` by running SPTK's one-step warping recursion. The
arithmetic therefore differs from SPTK's only in rounding: on 32,700 speech frames of the
demo suite (16 and 44.1 kHz) the coefficients agree with ``pysptk.mcep`` within 1.1e-14
(absolute), and ``tests/test_mcep.py`` checks 1e-6 on speech, noise, near-silence and
clipped frames.

One deliberate difference: the Newton system is solved by LAPACK (``numpy.linalg.solve``,
one call for all frames) instead of SPTK's block-Levinson ``theq``. The solution is the
same up to rounding; ``theq`` also gives up when one of its 2x2 pivots has a determinant
below 1e-6, which no frame tried did (speech, noise, pure tones of 1e-4 to 1e4, impulses,
DC, clipped and silent frames); here only an exactly singular or non-finite system fails.
A vectorised ``theq``, tried first, was several times slower than LAPACK on 40x40 systems.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: SPTK's defaults for ``mcep`` (and pysptk's): minimum and maximum Newton iterations and
#: the stopping threshold on the relative change of r(0).
MIN_ITER = 2
MAX_ITER = 30
THRESHOLD = 1e-3


class MelCepstrumError(ValueError):
    """The analysis of one frame failed as SPTK's would (zero periodogram, singular system).

    Attributes:
        frame: Index of the first failing frame in the input.
    """

    def __init__(self, frame: int, message: str):
        super().__init__(f"frame {frame}: {message}")
        self.frame = frame


# ----------------------------------------------------------------------------- warping


def _freqt_step(g: np.ndarray, c_in: np.ndarray, alpha: float) -> np.ndarray:
    """One input step of SPTK's ``freqt`` recursion on the columns of ``g`` (in place)."""
    beta = 1.0 - alpha * alpha
    d = g.copy()
    g[0] = c_in + alpha * d[0]
    if len(g) > 1:
        g[1] = beta * d[0] + alpha * d[1]
    for j in range(2, len(g)):
        g[j] = d[j - 1] + alpha * (d[j] - g[j - 1])
    return g


def _frqtr_step(g: np.ndarray, c_in: np.ndarray, alpha: float) -> np.ndarray:
    """One input step of SPTK's ``frqtr`` recursion on the columns of ``g`` (in place)."""
    d = g.copy()
    g[0] = c_in
    for j in range(1, len(g)):
        g[j] = d[j - 1] + alpha * (d[j] - g[j - 1])
    return g


@lru_cache(maxsize=32)
def warp_matrix(kind: str, in_order: int, out_order: int, alpha: float) -> np.ndarray:
    """The linear map of SPTK's ``freqt``/``frqtr`` from ``in_order + 1`` to ``out_order + 1`` coefficients.

    Both routines feed the input coefficients, highest first, through a one-step
    recursion on an ``out_order + 1`` state; the state after the last input is the output.
    With ``S`` the step's action on the state and ``u`` its response to a unit input, the
    output is ``sum_k S^k u * c[k]``, so column ``k`` of the matrix is ``S^k u``.

    Args:
        kind: ``"freqt"`` (cepstrum warping) or ``"frqtr"`` (the correlation warping of
            the Newton step).
        in_order: Order of the input sequence.
        out_order: Order of the output sequence.
        alpha: All-pass constant (negative to unwarp).

    Returns:
        Read-only array of shape ``(out_order + 1, in_order + 1)``.
    """
    step = {"freqt": _freqt_step, "frqtr": _frqtr_step}[kind]
    size = out_order + 1
    s = step(np.eye(size), np.zeros(size), alpha)  # columns: response to each unit state
    u = step(np.zeros(size), np.ones(()), alpha)  # response to a unit input from zero state
    w = np.empty((size, in_order + 1))
    w[:, 0] = u
    for k in range(1, in_order + 1):
        w[:, k] = s @ w[:, k - 1]
    w.setflags(write=False)
    return w


# ----------------------------------------------------------------------------- analysis


@lru_cache(maxsize=16)
def _operators(n: int, order: int, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The linear maps of one analysis, composed once per ``(frame length, order, alpha)``.

    With ``half = n // 2`` and the log-periodogram, ratio and model spectra held as their
    ``half + 1`` unique bins (all three are even sequences):

    - ``c0``: ``(half + 1,)``, log-periodogram -> SPTK's initial ``s`` (c[0] of the real
      cepstrum, halved);
    - ``init``: ``(half + 1, order + 1)``, log-periodogram -> initial mel-cepstrum (inverse
      FFT, c[0] and c[half] halved, ``freqt`` to ``order``);
    - ``logmag``: ``(order + 1, half + 1)``, mel-cepstrum -> real part of the FFT of its
      unwarped ``half + 1`` coefficients (``freqt`` with ``-alpha``, zero-padded FFT);
    - ``corr``: ``(half + 1, 2 * order + 1)``, ratio spectrum -> r(k) (inverse FFT, then
      ``frqtr`` to ``2 * order``).
    """
    half = n // 2
    k = np.arange(half + 1)
    table = np.cos(2.0 * np.pi * np.arange(n) / n)
    cos = table[np.outer(k, k) % n]  # cos(2 pi j k / n), exact argument reduction
    weights = np.full(half + 1, 2.0)
    weights[0] = weights[half] = 1.0
    icos = cos * (weights / n)[:, None]  # even spectrum (unique bins) -> its inverse FFT
    halve = np.ones(half + 1)
    halve[0] = halve[half] = 0.5
    c0 = icos[:, 0] * 0.5
    init = (icos * halve) @ warp_matrix("freqt", half, order, alpha).T
    logmag = warp_matrix("freqt", order, half, -alpha).T @ cos
    corr = icos @ warp_matrix("frqtr", half, 2 * order, alpha).T
    ops = (c0, np.ascontiguousarray(init), np.ascontiguousarray(logmag), np.ascontiguousarray(corr))
    for op in ops:
        op.setflags(write=False)
    return ops


def mcep(
    frames: np.ndarray,
    order: int,
    alpha: float,
    *,
    eps: float = 1e-6,
    min_iter: int = MIN_ITER,
    max_iter: int = MAX_ITER,
    threshold: float = THRESHOLD,
) -> np.ndarray:
    """Mel-cepstra of windowed frames, as ``pysptk.mcep(frame, order, alpha, eps=eps, etype=1)`` per frame.

    Args:
        frames: Windowed frames, ``(frames, frame_length)`` (or one frame, 1-D);
            ``frame_length`` a power of two, at least 8.
        order: Mel-cepstral order (``order + 1`` coefficients, c0 included), below
            ``frame_length // 2``.
        alpha: All-pass constant, ``|alpha| < 1``.
        eps: Added to every periodogram bin (SPTK's ``etype=1``); ``>= 0``.
        min_iter: Iteration from which the stopping rule is checked (SPTK ``itr1``).
        max_iter: Most Newton iterations (SPTK ``itr2``).
        threshold: Stop when the relative change of r(0) is below this (SPTK ``dd``).

    Returns:
        ``(frames, order + 1)`` float64 (``(order + 1,)`` for a 1-D input).

    Raises:
        ValueError: For a bad shape, order, alpha, frame length, ``eps`` or non-finite samples.
        MelCepstrumError: Where SPTK fails on a frame: a zero periodogram bin (possible
            only with ``eps == 0``) or a singular or non-finite Newton step; names the
            first such frame.
    """
    x = np.asarray(frames, dtype=np.float64)
    single = x.ndim == 1
    if single:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"frames must be 1-D or 2-D, got shape {x.shape}")
    n_frames, n = x.shape
    if n < 8 or n & (n - 1):
        raise ValueError(f"frame length must be a power of two >= 8, got {n}")
    if not 1 <= order < n // 2:
        raise ValueError(f"order must be in 1..{n // 2 - 1} for frames of {n} samples, got {order}")
    if not abs(alpha) < 1.0:
        raise ValueError(f"alpha must be in (-1, 1), got {alpha}")
    if not eps >= 0.0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if min_iter < 1 or max_iter < 1:
        raise ValueError(f"min_iter and max_iter must be >= 1, got {min_iter} and {max_iter}")
    if not np.all(np.isfinite(x)):
        raise ValueError("frames contain NaN or Inf")
    m = order
    if n_frames == 0:
        return np.empty((0, m + 1))
    c0_op, init_op, logmag_op, corr_op = _operators(n, m, float(alpha))

    spec = np.fft.rfft(x, axis=-1)
    power = spec.real * spec.real + spec.imag * spec.imag + eps  # (frames, n // 2 + 1)
    zero = ~(power > 0.0)
    if zero.any():
        first = int(np.argmax(zero.any(axis=1)))
        raise MelCepstrumError(first, "periodogram has zeros; use eps > 0 to floor it")
    log_power = np.log(power)
    s = log_power @ c0_op
    mc = log_power @ init_op

    al = (-alpha) ** np.arange(m + 1)
    windows = np.lib.stride_tricks.sliding_window_view
    # the frames still iterating, compacted (rows of mc, power and s) when some stop
    active = np.arange(n_frames)
    mc_a, power_a, s_a = mc, power, s
    for it in range(1, max_iter + 1):
        logmag = mc_a @ logmag_op
        r = (power_a / np.exp(logmag + logmag)) @ corr_op  # r(0) .. r(2m)
        r0 = r[:, 0]
        if it >= min_iter:
            with np.errstate(divide="ignore", invalid="ignore"):
                done = np.abs((r0 - s_a) / r0) < threshold
            s_a = r0
            if done.any():
                mc[active[done]] = mc_a[done]  # stopped before this iteration's update
                keep = ~done
                active, mc_a, power_a, s_a, r, r0 = (a[keep] for a in (active, mc_a, power_a, s_a, r, r0))
                if active.size == 0:
                    break
        # SPTK's Newton system (T + H) d = b with b = r(0..m) - (-alpha)^k: T[i, j] = t[|i - j|]
        # from r(0..m) with r(0) added to the even lags (twice to lag 0), H[i, j] = h[i + j]
        # from r(0..2m) with r(0) subtracted from the even lags (so h[0] = 0).
        sym = np.empty((len(r), 2 * m + 1))  # t[m], .., t[1], t[0], t[1], .., t[m]
        sym[:, m:] = r[:, : m + 1]
        sym[:, m + 2 :: 2] += r0[:, None]
        sym[:, m] += r0
        sym[:, :m] = sym[:, : m : -1]
        hank = r.copy()
        hank[:, ::2] -= r0[:, None]
        system = windows(sym, m + 1, axis=1)[:, ::-1] + windows(hank, m + 1, axis=1)
        mc_a = mc_a + _solve(system, r[:, : m + 1] - al, active, it)
    mc[active] = mc_a  # frames that ran all max_iter iterations
    return mc[0] if single else mc


def _solve(system: np.ndarray, rhs: np.ndarray, frames: np.ndarray, iteration: int) -> np.ndarray:
    """Newton steps of all active frames; MelCepstrumError naming the first frame whose system fails."""
    try:
        step = np.linalg.solve(system, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        step = np.full_like(rhs, np.nan)
        for i in range(len(system)):
            try:
                step[i] = np.linalg.solve(system[i], rhs[i])
            except np.linalg.LinAlgError:
                break
    bad = ~np.all(np.isfinite(step), axis=1)
    if bad.any():
        first = int(frames[np.argmax(bad)])
        raise MelCepstrumError(first, f"the Newton system at iteration {iteration} is singular or not finite")
    return step
