"""Signal-level pieces of the simulation: active-speech power, generated noise, band limitation.

Plain functions on float64 arrays, deterministic (every random draw from a given seed),
used by the degradations of :mod:`urgentbench.simulation.degradations` and
:mod:`urgentbench.simulation.corpus_degradations` and by MaskSR's training data.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

#: Frame length (s) and threshold (dB below the loudest frame) of the active-speech measure.
ACTIVE_FRAME_S = 0.02
ACTIVE_THRESHOLD_DB = 40.0

#: Generated noise types (see :func:`generate_noise`).
NOISE_TYPES = ("white", "pink", "brown", "hum", "modulated")

#: Below this frequency the pink/brown spectral tilt stops growing (the spectrum stays flat).
NOISE_TILT_CORNER_HZ = 40.0




def active_speech_power(
    x: np.ndarray,
    sample_rate: int,
    frame_s: float = ACTIVE_FRAME_S,
    threshold_db: float = ACTIVE_THRESHOLD_DB,
) -> float:
    """Mean power of the active (non-silent) part of a signal.

    The signal is cut into non-overlapping frames of ``frame_s`` seconds (the last,
    shorter frame included). A frame is active when its mean power is within
    ``threshold_db`` of the loudest frame's; the result is the mean of ``x**2`` over
    all samples of active frames. This follows URGENT, which measures speech power on
    non-silent parts only, so leading and trailing silence do not change the SNR.

    Args:
        x: Mono signal.
        sample_rate: Its rate in Hz.
        frame_s: Frame length in seconds.
        threshold_db: Frames more than this many dB below the loudest one are silent.

    Returns:
        The active-speech power (0.0 for an all-zero signal).
    """
    x = np.asarray(x, dtype=np.float64)
    frame = max(1, int(round(frame_s * sample_rate)))
    sq = x * x
    starts = np.arange(0, len(sq), frame)
    sums = np.add.reduceat(sq, starts) if len(sq) else np.zeros(0)
    lengths = np.diff(np.append(starts, len(sq)))
    powers = sums / lengths
    if not len(powers) or powers.max() <= 0.0:
        return 0.0
    active = powers >= powers.max() * 10.0 ** (-threshold_db / 10.0)
    return float(sums[active].sum() / lengths[active].sum())


def _tilted(white: np.ndarray, sample_rate: int, exponent: float) -> np.ndarray:
    """Shape white noise to a power spectrum ~ f**(-exponent) (flat below the corner, no DC)."""
    n = len(white)
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n, d=1.0 / sample_rate)
    gain = np.maximum(freqs, NOISE_TILT_CORNER_HZ) ** (-exponent / 2.0)
    gain[0] = 0.0
    return np.fft.irfft(spectrum * gain, n=n)


def _unit_power(x: np.ndarray) -> np.ndarray:
    p = float(np.mean(x * x))
    return x / math.sqrt(p) if p > 0 else x


def generate_noise(kind: str, n: int, sample_rate: int, seed: int) -> np.ndarray:
    """Generate ``n`` samples of noise with unit mean power, fully determined by ``seed``.

    Types:
        * ``white``: Gaussian, flat spectrum.
        * ``pink``: power spectrum ~ 1/f (-3 dB per octave) above 40 Hz.
        * ``brown``: power spectrum ~ 1/f**2 (-6 dB per octave) above 40 Hz.
        * ``hum``: mains hum, 50 or 60 Hz (a coin flip decided by the seed) with harmonics up to 3 kHz
          (random gains and phases, odd harmonics stronger), plus pink noise 25 dB below.
        * ``modulated``: pink noise under a slow amplitude envelope (three sinusoids of
          0.2-3 Hz, modulation depth 0.8), like a fan or passing traffic.

    Args:
        kind: One of :data:`NOISE_TYPES`.
        n: Number of samples.
        sample_rate: Rate in Hz.
        seed: Seed of ``numpy.random.default_rng``.

    Returns:
        float64 noise, mean power 1.

    Raises:
        ValueError: For an unknown type.
    """
    if kind not in NOISE_TYPES:
        raise ValueError(f"unknown noise type {kind!r}; known: {', '.join(NOISE_TYPES)}")
    white = np.random.default_rng(seed).standard_normal(n)
    # A second stream for the hum/modulation parameters, so they depend on the seed only
    # (not on how many noise samples were drawn before them).
    rng = np.random.default_rng([seed, 1])
    if kind == "white":
        return _unit_power(white)
    if kind == "pink":
        return _unit_power(_tilted(white, sample_rate, 1.0))
    if kind == "brown":
        return _unit_power(_tilted(white, sample_rate, 2.0))
    t = np.arange(n, dtype=np.float64) / sample_rate
    if kind == "hum":
        f0 = 50.0 if rng.random() < 0.5 else 60.0
        top = min(3000.0, 0.45 * sample_rate)
        n_harm = int(top // f0)
        gains = rng.uniform(0.5, 1.5, n_harm)
        phases = rng.uniform(0.0, 2.0 * np.pi, n_harm)
        hum = np.zeros(n)
        for k in range(1, n_harm + 1):
            weight = (1.0 if k % 2 else 0.5) / k
            hum += weight * gains[k - 1] * np.sin(2.0 * np.pi * k * f0 * t + phases[k - 1])
        floor = _unit_power(_tilted(white, sample_rate, 1.0)) * 10.0 ** (-25.0 / 20.0)
        return _unit_power(_unit_power(hum) + floor)
    # modulated
    rates = rng.uniform(0.2, 3.0, 3)
    phases = rng.uniform(0.0, 2.0 * np.pi, 3)
    envelope = 1.0 + 0.8 * np.mean(
        [np.sin(2.0 * np.pi * r * t + p) for r, p in zip(rates, phases)], axis=0
    )
    return _unit_power(_unit_power(_tilted(white, sample_rate, 1.0)) * envelope)


#: How :func:`band_limit` takes a signal through the lower rate ``2 * cutoff_hz`` and back.
BAND_LIMIT_RESAMPLERS = ("soxr", "poly")


def band_limit(x: np.ndarray, sample_rate: int, cutoff_hz: float, resampler: str) -> np.ndarray:
    """Remove everything above ``cutoff_hz``, as a capture at the rate ``2 * cutoff_hz`` would.

    A Chebyshev type I low-pass (order 8, 0.1 dB pass-band ripple) is run forwards and
    backwards (zero phase); then the signal goes down to ``2 * cutoff_hz`` and back up with
    ``resampler``:

    - ``"soxr"``: soxr HQ at the exact rate (the ``bandwidth_limit`` degradation of the
      URGENT-style simulation);
    - ``"poly"``: ``scipy.signal.resample_poly`` at the rational ratio ``2 * cutoff_hz / rate``
      (denominators up to 1000), the MaskSR / NVSR / VoiceFixer recipe that reproduces the
      MaskSR2 demo page's BWE inputs (``bandwidth_limit_poly``, the VCTK suites).

    The two resamplers give different samples (their anti-aliasing filters differ), and
    committed manifests were rendered with each, so both stay, chosen by name.

    Args:
        x: The signal (float64, mono).
        sample_rate: Its rate in Hz.
        cutoff_hz: Cut-off in Hz; must be below the Nyquist frequency.
        resampler: One of :data:`BAND_LIMIT_RESAMPLERS`.

    Returns:
        The band-limited signal, as long as ``x``.

    Raises:
        ValueError: For an unknown resampler, or a cut-off not below the Nyquist frequency.
    """
    from scipy.signal import cheby1, resample_poly, sosfiltfilt

    from urgentbench.audio import fit_length, resample

    if resampler not in BAND_LIMIT_RESAMPLERS:
        raise ValueError(f"resampler must be one of {', '.join(BAND_LIMIT_RESAMPLERS)}, got {resampler!r}")
    if cutoff_hz >= sample_rate / 2:
        raise ValueError(f"cutoff {cutoff_hz:g} Hz is not below the Nyquist frequency ({sample_rate / 2:g} Hz)")
    sos = cheby1(8, 0.1, cutoff_hz, btype="lowpass", output="sos", fs=sample_rate)
    y = sosfiltfilt(sos, x)
    if resampler == "poly":
        ratio = Fraction(2 * cutoff_hz).limit_denominator(1000) / sample_rate  # low rate / rate, reduced
        back = resample_poly(resample_poly(y, ratio.numerator, ratio.denominator), ratio.denominator, ratio.numerator)
    else:
        low_rate = 2.0 * cutoff_hz
        low_rate_arg: float | int = int(low_rate) if low_rate.is_integer() else low_rate
        down = resample(np.ascontiguousarray(y), sample_rate, low_rate_arg)  # type: ignore[arg-type]
        back = resample(down, low_rate_arg, sample_rate)  # type: ignore[arg-type]
    return fit_length(np.asarray(back, dtype=np.float64), len(x))
