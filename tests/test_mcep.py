"""MCD's kernels against their references: pysptk, fastdtw and the official URGENT MCD.

The vectorised SPTK mel-cepstral analysis against ``pysptk.mcep`` (coefficient by
coefficient), the FastDTW path against ``fastdtw``, and the MCD metric against the official
URGENT ``mcd_utils`` (called from ../shared/reference).

Real speech is the demo suite's clean references, rendered (as the runner does), at their
native 44.1 kHz and resampled to 16 kHz. Tolerance of the coefficients: 1e-6 absolute
(they are O(0.01..10); the agreement found is about 1e-14).
"""

from __future__ import annotations

import sys
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from conftest import demo_pair

from urgentbench.audio import resample
from urgentbench.metrics import functional
from urgentbench.metrics.intrusive import MCD
from urgentbench.metrics.mcep import MelCepstrumError, mcep, warp_matrix

#: The official URGENT 2025 evaluation scripts (unmodified copies; imported, never copied).
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
OFFICIAL = REFERENCE / "urgent2025_evaluation_metrics" / "evaluation_metrics"
COEF_TOL = 1e-6
RATES = (16000, 44100)


@cache
def pysptk():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pysptk 1.0 imports pkg_resources
        import pysptk as module
    return module


def frames_of(x: np.ndarray) -> np.ndarray:
    """URGENT's MCD frames (1024/256, SPTK Hamming window), float64."""
    n = (len(x) - 1024) // 256 + 1
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(x, np.float64), 1024)[::256][:n]
    return frames * pysptk().sptk.hamming(1024)


def sptk_reference(frames: np.ndarray, fs: int, **kwargs) -> np.ndarray:
    order, alpha = functional.mcep_params(fs)
    return np.stack([pysptk().mcep(f, order, alpha, eps=1e-6, etype=1, **kwargs) for f in frames])


def assert_close_to_sptk(frames: np.ndarray, fs: int, **kwargs) -> None:
    order, alpha = functional.mcep_params(fs)
    names = {"miniter": "min_iter", "maxiter": "max_iter"}
    ours = mcep(frames, order, alpha, **{names.get(k, k): v for k, v in kwargs.items()})
    theirs = sptk_reference(frames, fs, **kwargs)
    assert ours.shape == theirs.shape == (len(frames), order + 1)
    err = np.abs(ours - theirs)
    worst = np.unravel_index(np.argmax(err), err.shape)
    where = f"frame {worst[0]} coefficient {worst[1]}"
    assert err.max() <= COEF_TOL, f"{where}: {ours[worst]} vs pysptk {theirs[worst]}"


# --------------------------------------------------------------------------- window, warping


def test_window_is_sptks_value_for_value():
    for n in (1024, 512, 400):
        np.testing.assert_array_equal(functional.sptk_hamming(n), pysptk().sptk.hamming(n))


def test_warp_matrices_are_sptks_freqt():
    rng = np.random.default_rng(0)
    c = rng.standard_normal(513)
    for order, alpha in ((39, 0.53), (23, 0.42)):
        warped = warp_matrix("freqt", 512, order, alpha) @ c
        np.testing.assert_allclose(warped, pysptk().freqt(c, order, alpha), rtol=0, atol=1e-12)
        mc = rng.standard_normal(order + 1)
        unwarped = warp_matrix("freqt", order, 512, -alpha) @ mc
        np.testing.assert_allclose(unwarped, pysptk().freqt(mc, 512, -alpha), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- mcep vs pysptk


@pytest.mark.parametrize("fs", RATES)
def test_mcep_equals_pysptk_on_real_speech(fs):
    frames = frames_of(demo_pair(1, fs)[0])
    assert len(frames) > 150
    assert_close_to_sptk(frames, fs)


def special_frames(fs: int) -> dict[str, np.ndarray]:
    """Noise, near-silence (periodogram just above eps) and clipped frames, windowed."""
    rng = np.random.default_rng(7)
    speech = demo_pair(2, fs)[0].astype(np.float64)
    seg = speech[np.argmax(np.abs(speech)) - 2048 :][:4096]  # the loudest part
    win = pysptk().sptk.hamming(1024)

    def cut(x: np.ndarray) -> np.ndarray:
        return frames_of(x)[:4] if len(x) >= 1024 else (x[:1024] * win)[None]

    n = 4096
    t = np.arange(n) / fs
    return {
        "white noise": cut(rng.standard_normal(n)),
        "quiet noise": cut(0.01 * rng.standard_normal(n)),
        # unit-power window: the periodogram of noise of std s is about s^2, so these sit
        # 1 to 10 times above eps = 1e-6
        "silence-adjacent noise": cut(1.5e-3 * rng.standard_normal(n)),
        "silence-adjacent speech": cut(seg / np.max(np.abs(seg)) * 4e-3),
        "one sample in silence": (np.eye(1024)[300] * 1e-4)[None],
        "digital silence": np.zeros((1, 1024)),
        "clipped speech": cut(np.clip(seg / np.max(np.abs(seg)) * 8.0, -1.0, 1.0)),
        "clipped noise": cut(np.clip(rng.standard_normal(n), -0.3, 0.3)),
        "pure tone": cut(0.5 * np.sin(2 * np.pi * 1000.0 * t)),
    }


@pytest.mark.parametrize("fs", RATES)
def test_mcep_equals_pysptk_on_noise_near_silence_and_clipping(fs):
    cases = special_frames(fs)
    for name, frames in cases.items():
        try:
            assert_close_to_sptk(frames, fs)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    # all at once: each frame's iterations stop on their own, as if analysed alone
    assert_close_to_sptk(np.concatenate(list(cases.values())), fs)


@pytest.mark.parametrize(
    "rule",
    [
        {"miniter": 2, "maxiter": 3},  # most frames cut off by the iteration limit
        {"miniter": 5, "maxiter": 30},
        {"threshold": 0.0},  # never converges: all 30 iterations
        {"threshold": 1e-6},
        {"threshold": 0.9},  # stops at the first check (min_iter)
    ],
)
def test_stopping_rule_is_sptks_frame_by_frame(rule):
    fs = 16000
    frames = np.concatenate([frames_of(demo_pair(0, fs)[1])[::3], *special_frames(fs).values()])
    assert_close_to_sptk(frames, fs, **rule)


def test_zero_periodogram_fails_as_sptk_does():
    noise = np.random.default_rng(0).standard_normal(1024)
    frames = np.stack([noise, np.zeros(1024), np.zeros(1024)]) * pysptk().sptk.hamming(1024)
    pysptk().mcep(frames[0], 23, 0.42, etype=1, eps=0.0)  # noise has no zero bin
    with pytest.raises(RuntimeError):
        pysptk().mcep(frames[1], 23, 0.42, etype=1, eps=0.0)
    with pytest.raises(MelCepstrumError, match="periodogram has zeros") as info:
        mcep(frames, 23, 0.42, eps=0.0)
    assert info.value.frame == 1
    # with URGENT's eps the silent frame has the flat-spectrum cepstrum
    out = mcep(frames, 23, 0.42)
    assert out[1, 0] == pytest.approx(np.log(1e-6) / 2, abs=1e-12) and np.all(np.abs(out[1, 1:]) < 1e-12)


def test_bad_input_is_a_clear_error():
    good = np.zeros((2, 1024))
    with pytest.raises(ValueError, match="power of two"):
        mcep(np.zeros((2, 1000)), 23, 0.42)
    with pytest.raises(ValueError, match="NaN"):
        mcep(np.full((2, 1024), np.nan), 23, 0.42)
    with pytest.raises(ValueError, match="order"):
        mcep(good, 512, 0.42)
    with pytest.raises(ValueError, match="alpha"):
        mcep(good, 23, 1.0)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        mcep(np.zeros((1, 2, 1024)), 23, 0.42)
    assert mcep(good[0], 23, 0.42).shape == (24,)
    assert mcep(np.zeros((0, 1024)), 23, 0.42).shape == (0, 24)


# --------------------------------------------------------------------------- FastDTW path


def fastdtw_reference(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from fastdtw import fastdtw
    from scipy.spatial.distance import euclidean

    return np.asarray(fastdtw(x, y, dist=euclidean)[1], dtype=np.intp)


@pytest.mark.parametrize("fs", RATES)
def test_fastdtw_path_is_fastdtws_on_real_cepstra(fs):
    ref, noisy = demo_pair(0, fs)
    mc_ref = functional.mel_cepstra(ref, fs)
    cases = {
        "noisy": functional.mel_cepstra(noisy, fs),
        "delayed": functional.mel_cepstra(np.r_[np.zeros(700, np.float32), noisy[:-700]], fs),
        "shorter, time-stretched": functional.mel_cepstra(resample(noisy, fs, int(fs * 0.9)), fs),
    }
    for name, mc_est in cases.items():
        ours = functional.fastdtw_path(mc_est, mc_ref)
        theirs = fastdtw_reference(mc_est, mc_ref)
        assert np.array_equal(ours, theirs), name
    # the time-stretched case really leaves the diagonal
    assert len(set(ours[:, 0] - ours[:, 1])) > 10


def test_fastdtw_path_is_fastdtws_with_ties_and_tiny_inputs():
    rng = np.random.default_rng(3)
    for trial in range(120):
        nx, ny = rng.integers(1, 70, size=2)
        x = rng.standard_normal((nx, 3))
        y = rng.standard_normal((ny, 3))
        if trial % 2:  # coarse values: many equal distances and equal path costs
            x, y = np.round(x), np.round(y)
        assert np.array_equal(functional.fastdtw_path(x, y), fastdtw_reference(x, y)), (nx, ny, trial)


def test_fastdtw_path_rejects_bad_sequences():
    with pytest.raises(ValueError):
        functional.fastdtw_path(np.zeros((0, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError):
        functional.fastdtw_path(np.zeros((4, 3)), np.zeros((4, 2)))


# --------------------------------------------------------------------------- MCD vs URGENT


@cache
def official_mcd_utils():
    if not (OFFICIAL / "mcd_utils.py").is_file():
        pytest.skip(f"official URGENT scripts not found at {OFFICIAL}")
    sys.path.insert(0, str(OFFICIAL))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mcd_utils
    finally:
        sys.path.remove(str(OFFICIAL))
    return mcd_utils


def official_mcd(ref: np.ndarray, inf: np.ndarray, fs: int) -> float:
    """calculate_intrusive_se_metrics.py's mcd_metric on float32 audio (its scaling line, then mcd_utils)."""
    ref, inf = ref.astype(np.float32), inf.astype(np.float32)
    scaling_factor = np.sum(ref * inf) / (np.sum(inf**2) + 1.0e-08)
    return float(official_mcd_utils().calculate(ref, inf * scaling_factor, fs))


def assert_mcd_is_official(index: int, fs: int) -> None:
    ref, noisy = demo_pair(index, fs)
    ours = MCD().compute(noisy, ref, fs)["mcd"]
    assert ours == pytest.approx(official_mcd(ref, noisy, fs), abs=1e-4)
    assert ours > 1.0  # a real distortion, not a degenerate zero


@pytest.mark.parametrize("fs", RATES)
def test_mcd_equals_official_mcd_utils_on_real_pairs(fs):
    assert_mcd_is_official(0, fs)


@pytest.mark.slow
@pytest.mark.parametrize("index", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("fs", RATES)
def test_mcd_equals_official_mcd_utils_on_more_real_pairs(fs, index):
    assert_mcd_is_official(index, fs)


def test_mcd_equals_pysptk_and_fastdtw_in_float64():
    """Same arithmetic as the pre-vectorisation code path (pysptk per frame + fastdtw): 1e-9 dB."""
    fs = 16000
    ref, noisy = (x.astype(np.float64) for x in demo_pair(1, fs))
    est = functional.least_squares_scale(ref, noisy)
    c_ref, c_est = sptk_reference(frames_of(ref), fs), sptk_reference(frames_of(est), fs)
    path = fastdtw_reference(c_est, c_ref)
    diff = c_est[path[:, 0]] - c_ref[path[:, 1]]
    expected = float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * np.sum(diff**2, axis=1))))
    assert functional.mcd(ref, noisy, fs) == pytest.approx(expected, abs=1e-9)


def test_mcd_aligns_reference_first_as_the_official_script():
    """URGENT's mcd_metric calls mcd_utils.calculate(ref, scaled_est): fastdtw(mcep(ref), mcep(est)).

    FastDTW breaks ties by argument order, so the order changes the distance on some
    sequences; coarse random cepstra make ties common. The distance must be the one of
    the reference-first path on every trial, and the trials must include some where the
    estimate-first path gives another value (else this test could not fail).
    """
    from fastdtw import fastdtw
    from scipy.spatial.distance import euclidean

    def official_distance(mc_ref: np.ndarray, mc_est: np.ndarray) -> float:
        path = np.asarray(fastdtw(mc_ref, mc_est, dist=euclidean)[1]).T
        diff2 = np.sum((mc_ref[path[0]] - mc_est[path[1]]) ** 2, 1)
        return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2 * diff2)))

    def estimate_first_distance(mc_ref: np.ndarray, mc_est: np.ndarray) -> float:
        path = np.asarray(fastdtw(mc_est, mc_ref, dist=euclidean)[1]).T
        diff2 = np.sum((mc_est[path[0]] - mc_ref[path[1]]) ** 2, 1)
        return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2 * diff2)))

    rng = np.random.default_rng(11)
    order_mattered = 0
    for _ in range(60):
        mc_ref = np.round(rng.standard_normal((int(rng.integers(20, 60)), 4)))
        mc_est = np.round(rng.standard_normal((int(rng.integers(20, 60)), 4)))
        expected = official_distance(mc_ref, mc_est)
        assert functional.aligned_cepstral_distance(mc_ref, mc_est) == pytest.approx(expected, abs=1e-12)
        order_mattered += abs(estimate_first_distance(mc_ref, mc_est) - expected) > 1e-9
    assert order_mattered > 0
