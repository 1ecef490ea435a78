"""Intrusive metrics on real speech: agreement with reference implementations, golden values, errors.

Reference implementations: pesq.pesq, pystoi.stoi (seeded), mir_eval's BSS Eval,
fast_bss_eval.si_sdr, and independent loop-based re-implementations of URGENT's LSD and
MCD written here without librosa and without DTW.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from functools import cache

import numpy as np
import pytest
from conftest import load_speech, white_noise_mix

from urgentbench.audio import resample
from urgentbench.metrics import MetricError, functional, get_metric_class
from urgentbench.metrics.intrusive import ESTOI, LSD, MCD, PESQ, SDR, SISDR

NAMES = ("pesq", "estoi", "sdr", "si_sdr", "lsd", "mcd")
HIGHER_IS_BETTER = {"pesq": True, "estoi": True, "sdr": True, "si_sdr": True, "lsd": False, "mcd": False}

#: Golden values on the 5 dB white-noise mix of speech "a" (runner path: working rate
#: by ``working_rate``, soxr HQ resampling). Computed once with pesq 0.0.4, pystoi 0.4.1,
#: fast_bss_eval 0.1.4, librosa 0.11, pysptk 1.0.1, fastdtw 0.3.4, numpy 2.4.
GOLDEN = {
    44100: {"pesq": 1.0522, "estoi": 0.8485, "sdr": 5.0088, "si_sdr": 4.9957, "lsd": 14.5654, "mcd": 15.8137},
    16000: {"pesq": 1.0256, "estoi": 0.7251, "sdr": 5.0436, "si_sdr": 5.0055, "lsd": 8.0866, "mcd": 12.9930},
}
GOLDEN_TOL = 1e-3

# URGENT's table, copied from the protocol notes (not from functional.py).
URGENT_MCEP = {
    8000: (13, 0.31),
    16000: (23, 0.42),
    22050: (34, 0.45),
    24000: (34, 0.46),
    32000: (36, 0.50),
    44100: (39, 0.53),
    48000: (39, 0.55),
}


# --------------------------------------------------------------------------- signals


@cache
def clean(fs: int) -> np.ndarray:
    """Speech "a" at ``fs`` (soxr from the 22.05 kHz fixture)."""
    return load_speech("a", fs)


@cache
def noisy(fs: int, snr_db: float) -> np.ndarray:
    """Speech "a" plus white noise at ``snr_db`` (seed 0)."""
    return white_noise_mix(clean(fs), snr_db)


@cache
def lowpassed(fs: int, cutoff_hz: float = 3000.0) -> np.ndarray:
    """Clean speech through a causal 6th-order Butterworth low-pass (phase-shifted, band-limited)."""
    from scipy.signal import butter, sosfilt

    sos = butter(6, cutoff_hz, fs=fs, output="sos")
    return sosfilt(sos, clean(fs)).astype(np.float32)


@cache
def score(name: str, fs: int, snr_db: float) -> float:
    """Runner path: resample the noisy/clean pair to the metric's working rate, then compute."""
    metric = get_metric_class(name)()
    rate = metric.working_rate(fs)
    est = resample(noisy(fs, snr_db), fs, rate)
    ref = resample(clean(fs), fs, rate)
    return metric.compute(est, ref, rate)[name]


# --------------------------------------------------------------------------- independent references


def lsd_by_loops(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """URGENT's LSD, frame by frame with numpy's FFT and an explicit periodic Hann window."""
    ref = np.asarray(ref, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    alpha = float(np.sum(ref * est) / (np.sum(est * est) + 1e-8))
    est = est * alpha
    n_fft, hop = int(0.032 * fs), int(0.016 * fs)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    pad = np.zeros(n_fft // 2)
    ref_p, est_p = np.concatenate([pad, ref, pad]), np.concatenate([pad, est, pad])
    distances = []
    start = 0
    while start + n_fft <= len(ref_p):
        r = np.abs(np.fft.rfft(ref_p[start : start + n_fft] * window))
        i = np.abs(np.fft.rfft(est_p[start : start + n_fft] * window))
        terms = [math.log(rk * rk / ((ik + 1e-8) ** 2) + 1e-8) ** 2 for rk, ik in zip(r, i, strict=True)]
        distances.append(math.sqrt(sum(terms) / len(terms)))
        start += hop
    return sum(distances) / len(distances)


def mcd_without_dtw(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """URGENT's MCD on the diagonal path (frame t against frame t), frames cut in a loop."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pysptk
    order, alpha = URGENT_MCEP[fs]
    ref = np.asarray(ref, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    est = est * (np.sum(ref * est) / (np.sum(est * est) + 1e-8))
    window = np.hamming(1024)
    window /= np.sqrt(np.sum(window**2))  # SPTK's default power normalisation
    total, count, start = 0.0, 0, 0
    while start + 1024 <= len(ref):
        c_ref = pysptk.mcep(ref[start : start + 1024] * window, order, alpha, eps=1e-6, etype=1)
        c_est = pysptk.mcep(est[start : start + 1024] * window, order, alpha, eps=1e-6, etype=1)
        total += 10.0 / math.log(10.0) * math.sqrt(2.0 * float(np.sum((c_est - c_ref) ** 2)))
        count += 1
        start += 256
    return total / count


def mir_eval_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """BSS Eval v3 SDR by mir_eval (512-tap filter, no clamp), float64."""
    import mir_eval

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notice of mir_eval 0.8
        sdr, _, _, _ = mir_eval.separation.bss_eval_sources(
            ref[None].astype(np.float64), est[None].astype(np.float64), compute_permutation=False
        )
    return float(sdr[0])


# --------------------------------------------------------------------------- metadata


def test_registry_and_metadata():
    classes = {"pesq": PESQ, "estoi": ESTOI, "sdr": SDR, "si_sdr": SISDR, "lsd": LSD, "mcd": MCD}
    for name, cls in classes.items():
        assert get_metric_class(name) is cls
        assert cls.category == "intrusive" and cls.needs_reference
        assert [o.name for o in cls.outputs] == [name]
        assert cls.output(name).higher_is_better is HIGHER_IS_BETTER[name]
        assert cls.description and cls.reference_implementation and cls.version
        assert all(p.install.startswith("pip install ") for p in cls.packages)
        assert cls.availability().ok, cls.availability().summary()
        prov = cls().provenance()
        assert prov["version"] == cls.version and None not in prov["packages"].values()
    assert get_metric_class("si-sdr") is SISDR and get_metric_class("sisdr") is SISDR


def test_module_import_is_light():
    code = (
        "import sys, urgentbench.metrics.intrusive, urgentbench.metrics.functional;"
        "print(sorted(m for m in ('pesq','pystoi','fast_bss_eval','librosa','pysptk','fastdtw','soxr')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_mcep_table_matches_urgent():
    assert functional.MCEP_PARAMS == URGENT_MCEP
    with pytest.raises(ValueError, match="11025 Hz"):
        functional.mcep_params(11025)


# --------------------------------------------------------------------------- golden values


@pytest.mark.parametrize("fs", [44100, 16000])
@pytest.mark.parametrize("name", NAMES)
def test_golden_values(name, fs):
    assert score(name, fs, 5.0) == pytest.approx(GOLDEN[fs][name], abs=GOLDEN_TOL)


@pytest.mark.parametrize("name", NAMES)
def test_ordered_by_noise_level(name):
    values = [score(name, 16000, snr) for snr in (0.0, 5.0, 10.0)]
    if HIGHER_IS_BETTER[name]:
        assert values[0] < values[1] < values[2], values
    else:
        assert values[0] > values[1] > values[2], values


# --------------------------------------------------------------------------- PESQ


def test_pesq_working_rates():
    metric = PESQ()
    assert metric.working_rate(8000) == 8000
    for fs in (16000, 22050, 24000, 32000, 44100, 48000):
        assert metric.working_rate(fs) == 16000
    assert metric.working_rate(11025) == 11025  # passed through, rejected by compute


def test_pesq_equals_pesq_package_wb_after_soxr():
    import pesq

    ref16 = resample(clean(44100), 44100, 16000)
    est16 = resample(noisy(44100, 5.0), 44100, 16000)
    expected = pesq.pesq(16000, ref16, est16, "wb")
    assert score("pesq", 44100, 5.0) == expected
    # called directly at the native rate it resamples the same way
    assert PESQ().compute(noisy(44100, 5.0), clean(44100), 44100)["pesq"] == expected


def test_pesq_equals_pesq_package_nb_at_8k():
    import pesq

    ref, est = clean(8000), noisy(8000, 10.0)
    assert PESQ().compute(est, ref, 8000)["pesq"] == pesq.pesq(8000, ref, est, "nb")


def test_pesq_errors_are_metric_errors():
    metric = PESQ()
    x = clean(16000)
    with pytest.raises(MetricError, match="PESQ failed: estimate is silent"):
        metric.compute(np.zeros_like(x), x, 16000)
    with pytest.raises(MetricError, match="reference is silent"):
        metric.compute(x, np.zeros_like(x), 16000)
    with pytest.raises(MetricError, match="PESQ failed: BufferTooShortError"):
        metric.compute(x[16000:19200], x[16000:19200], 16000)  # 0.2 s
    x11 = load_speech("a", 11025)
    with pytest.raises(MetricError, match="11025 Hz"):
        metric.compute(x11, x11, metric.working_rate(11025))
    with pytest.raises(MetricError, match="11025 Hz"):
        metric.compute(x11, x11, 11025)


# --------------------------------------------------------------------------- ESTOI


def test_estoi_equals_seeded_pystoi_and_is_deterministic():
    from pystoi import stoi

    ref, est = clean(16000), noisy(16000, 5.0)
    np.random.seed(0)
    expected = stoi(ref, est, 16000, extended=True)
    metric = ESTOI()
    np.random.seed(123)
    before = np.random.get_state()
    first = metric.compute(est, ref, 16000)["estoi"]
    after = np.random.get_state()
    assert first == expected
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2] == after[2]
    np.random.seed(7)
    assert metric.compute(est, ref, 16000)["estoi"] == first


def test_estoi_native_rate_and_too_short():
    from pystoi import stoi

    metric = ESTOI()
    assert metric.working_rate(44100) == 44100
    np.random.seed(0)
    assert score("estoi", 44100, 5.0) == stoi(clean(44100), noisy(44100, 5.0), 44100, extended=True)
    x = clean(16000)[16000:20000]  # 0.25 s of speech: fewer than 30 frames
    with pytest.raises(MetricError, match="fewer than 30"):
        metric.compute(x, x, 16000)


# --------------------------------------------------------------------------- SDR / SI-SDR


def degraded(fs: int, kind: str) -> np.ndarray:
    """``"<snr>dB"``: white noise; ``"lowpass"``: low-passed; ``"lowpass+10dB"``: both."""
    if kind == "lowpass":
        return lowpassed(fs)
    if kind == "lowpass+10dB":
        return white_noise_mix(lowpassed(fs), 10.0)
    return noisy(fs, float(kind[:-2]))


@pytest.mark.parametrize("kind", ["0dB", "5dB", "10dB", "lowpass+10dB"])
def test_sdr_agrees_with_mir_eval(kind):
    fs = 16000
    ref, est = clean(fs), degraded(fs, kind)
    ours = SDR().compute(est, ref, fs)["sdr"]
    assert ours == pytest.approx(mir_eval_sdr(ref, est), abs=0.05)


def test_sdr_ignores_short_linear_filtering():
    # A causal low-pass is (almost) within BSS Eval's 512-tap distortion filter: mir_eval
    # reports > 100 dB, fast_bss_eval the 50 dB clamp. SI-SDR does penalise it.
    ref, est = clean(16000), lowpassed(16000)
    assert mir_eval_sdr(ref, est) > 100.0
    assert SDR().compute(est, ref, 16000)["sdr"] == 50.0
    assert SISDR().compute(est, ref, 16000)["si_sdr"] < 0.0


def test_sdr_agrees_with_mir_eval_at_44k():
    assert score("sdr", 44100, 5.0) == pytest.approx(mir_eval_sdr(clean(44100), noisy(44100, 5.0)), abs=0.05)


def test_sdr_clamp_and_silence():
    x = clean(16000)[:32000]
    metric = SDR()
    assert metric.compute(x, x, 16000)["sdr"] == 50.0
    assert metric.compute(0.5 * x, x, 16000)["sdr"] == 50.0
    assert metric.compute(np.zeros_like(x), x, 16000)["sdr"] == -50.0


@pytest.mark.parametrize("kind", ["0dB", "5dB", "10dB", "lowpass", "lowpass+10dB"])
def test_si_sdr_agrees_with_fast_bss_eval(kind):
    import fast_bss_eval

    fs = 16000
    ref, est = clean(fs), degraded(fs, kind).astype(np.float64)
    expected = float(fast_bss_eval.si_sdr(ref[None].astype(np.float64), est[None])[0])
    assert SISDR().compute(est, ref, fs)["si_sdr"] == pytest.approx(expected, abs=1e-3)
    assert functional.si_sdr(ref, 3.0 * est) == pytest.approx(functional.si_sdr(ref, est), abs=1e-9)


def test_si_sdr_degenerate_cases():
    x = clean(16000)[:16000]
    metric = SISDR()
    assert metric.compute(x, x, 16000)["si_sdr"] == 50.0
    assert metric.compute(-0.25 * x, x, 16000)["si_sdr"] == 50.0
    assert metric.compute(np.zeros_like(x), x, 16000)["si_sdr"] == -50.0
    assert functional.si_sdr(x, x) == 50.0  # the metric function: what a run stores
    assert functional.si_sdr(x, x, clamp_db=None) == math.inf
    with pytest.raises(ValueError, match="silent"):
        functional.si_sdr(np.zeros_like(x), x)


# --------------------------------------------------------------------------- LSD


@pytest.mark.parametrize(
    "fs,kind", [(16000, "5dB"), (16000, "lowpass"), (44100, "10dB"), (8000, "0dB"), (22050, "5dB")]
)
def test_lsd_agrees_with_loop_implementation(fs, kind):
    ref, est = clean(fs), degraded(fs, kind)
    assert LSD().compute(est, ref, fs)["lsd"] == pytest.approx(lsd_by_loops(ref, est, fs), abs=1e-6)


def test_lsd_gain_invariance_and_silence_quirk():
    x, y = clean(16000), noisy(16000, 5.0).astype(np.float64)
    assert functional.lsd(x, 4.0 * y, 16000) == pytest.approx(functional.lsd(x, y, 16000), abs=1e-9)
    # a signal without digital silence (no exactly-zero STFT bins): a perfect estimate scores ~0
    assert functional.lsd(y, y, 16000) < 1e-6
    # each all-zero frame of the reference adds |ln 1e-8| = 18.42, even for a perfect estimate
    padded = np.concatenate([y[:16000], np.zeros(16000)])
    assert functional.lsd(padded, padded, 16000) > 5.0
    assert functional.lsd(x, x, 16000) > 1.0  # the fixture has digitally silent pauses


# --------------------------------------------------------------------------- MCD


@pytest.mark.parametrize("snr", [5.0, 10.0])
def test_mcd_equals_diagonal_mcd_on_aligned_input(snr):
    fs = 16000
    ref, est = clean(fs), noisy(fs, snr)
    assert score("mcd", fs, snr) == pytest.approx(mcd_without_dtw(ref, est, fs), abs=1e-4)


def test_mcd_alignment_compensates_a_delay():
    fs = 8000
    x = clean(fs)
    delayed = np.concatenate([np.zeros(768, dtype=np.float32), x[:-768]])  # 3 hops late
    mc_x, mc_d = functional.mel_cepstra(x, fs), functional.mel_cepstra(delayed, fs)
    assert functional.aligned_cepstral_distance(mc_x, mc_d) < 0.5  # only the edge frames differ
    n = len(mc_x)
    diagonal = functional.aligned_cepstral_distance(mc_x[: n - 3], mc_d[3:])  # sanity of the shift
    assert diagonal < 0.1
    assert mcd_without_dtw(x, delayed, fs) > 5.0
    # the least-squares gain is computed before alignment, so the full MCD still penalises delay
    assert functional.mcd(x, delayed, fs) > 5.0


def test_mcd_identity_gain_and_silence():
    fs = 8000
    x, y = clean(fs), noisy(fs, 5.0)
    assert functional.mcd(x, x, fs) < 1e-6
    assert functional.mcd(x, 3.0 * y, fs) == pytest.approx(functional.mcd(x, y, fs), abs=1e-6)
    silent = MCD().compute(np.zeros_like(x), x, fs)["mcd"]  # all-zero frames are analysed, not NaN
    assert math.isfinite(silent) and silent > functional.mcd(x, y, fs)


def test_mcd_errors():
    x = load_speech("a", 11025)[:11025]
    with pytest.raises(MetricError, match="11025 Hz"):
        MCD().compute(x, x, 11025)
    with pytest.raises(ValueError, match="11025 Hz"):
        functional.mcd(x, x, 11025)
    short = clean(16000)[16000:17000]
    with pytest.raises(MetricError, match="fewer than one 1024-sample"):
        MCD().compute(short, short, 16000)


# --------------------------------------------------------------------------- shared input rules


@pytest.mark.parametrize("name", NAMES)
def test_invalid_pairs_raise_metric_error(name):
    metric = get_metric_class(name)()
    x = clean(16000)[:24000]
    with pytest.raises(MetricError, match="differ in length"):
        metric.compute(x[:-1], x, 16000)
    with pytest.raises(MetricError, match="needs a reference"):
        metric.compute(x, None, 16000)
    with pytest.raises(MetricError, match="reference is silent"):
        metric.compute(x, np.zeros_like(x), 16000)
    with pytest.raises(MetricError, match="NaN or Inf"):
        metric.compute(np.full_like(x, np.nan), x, 16000)


@pytest.mark.parametrize("name", ["estoi", "lsd", "mcd"])
def test_silent_estimate_gives_a_poor_finite_score(name):
    x = clean(16000)[:32000]
    metric = get_metric_class(name)()
    silent = metric.compute(np.zeros_like(x), x, 16000)[name]
    noisy_value = metric.compute(white_noise_mix(x, 5.0), x, 16000)[name]
    assert math.isfinite(silent)
    assert (silent < noisy_value) if HIGHER_IS_BETTER[name] else (silent > noisy_value)
