"""Degradations, rendering and the committed demo suite: each claim is measured.

No espeak-ng is needed: the demo's clean audio is committed and the other tests use the
speech fixtures.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import load_speech

from urgentbench.audio import AudioError, read_audio, write_flac
from urgentbench.manifest import DegradationSpec, Utterance, file_sha256, read_manifest, write_manifest
from urgentbench.registry import UnknownNameError
from urgentbench.simulation.degradations import (
    DEGRADATIONS,
    NOISE_TYPES,
    SPEED_OF_SOUND,
    BandwidthLimit,
    Clipping,
    DegradationParamError,
    Noise,
    RenderState,
    Reverb,
    build_degradation,
    generate_noise,
)
from urgentbench.simulation.render import (
    PEAK_LEVEL,
    apply_chain,
    finalise,
    render_utterance,
    rendered_sha256,
)

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data_manifests" / "demo"
FIXTURE_A = ROOT / "tests" / "fixtures" / "speech_a_22k.flac"
FIXTURE_B = ROOT / "tests" / "fixtures" / "speech_b_22k.flac"

ROOM = {"room_dims": [5.0, 4.0, 3.0], "source": [1.2, 1.5, 1.6], "mic": [3.4, 2.6, 1.4]}


def _active_power(x: np.ndarray, sr: int) -> float:
    """Independent re-implementation of the documented active-speech power (20 ms, 40 dB)."""
    frame = round(0.02 * sr)
    frames = [x[i : i + frame] for i in range(0, len(x), frame)]
    powers = np.array([np.mean(f**2) for f in frames])
    active = powers >= powers.max() * 1e-4
    return float(np.mean(np.concatenate([f for f, a in zip(frames, active) if a]) ** 2))


def _state(x: np.ndarray, sr: int) -> RenderState:
    return RenderState.from_clean(x, sr)


@pytest.fixture(scope="module")
def speech16k() -> np.ndarray:
    return load_speech("a", 16000).astype(np.float64)


# ---------------------------------------------------------------------------------------
# registry, specs, parameters
# ---------------------------------------------------------------------------------------


def test_registry_holds_the_four_degradations():
    assert DEGRADATIONS.names() == [
        "bandwidth_limit", "bandwidth_limit_poly", "clipping", "noise", "noise_file", "reverb", "reverb_pra",
    ]  # the last three (VCTK-suite degradations) are registered lazily
    with pytest.raises(UnknownNameError, match="Did you mean 'noise'"):
        build_degradation(DegradationSpec("noize", {}))


EXAMPLES = [
    Noise(snr_db=3.5, type="pink", seed=7),
    Clipping(threshold=0.3),
    BandwidthLimit(cutoff_hz=4000),
    Reverb(room_dims=(5, 4, 3), rt60=0.4, source=(1, 1, 1.5), mic=(2.5, 3, 1.2)),
]


@pytest.mark.parametrize("degradation", EXAMPLES, ids=lambda d: d.name)
def test_spec_round_trip(degradation):
    spec = degradation.to_spec()
    again = DegradationSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert build_degradation(again) == degradation
    utt = Utterance(id="x", sample_rate=16000, clean="c.flac", degradations=[spec])
    assert Utterance.from_dict(json.loads(json.dumps(utt.to_dict()))).degradations == [spec]


@pytest.mark.parametrize(
    ("name", "params", "problem"),
    [
        ("noise", {"snr_db": 5, "type": "pink"}, "missing parameter(s) 'seed'"),
        ("noise", {"snr_db": 5, "type": "pink", "seed": 1, "colour": "red"}, "unknown parameter(s) 'colour'"),
        ("noise", {"snr_db": 5, "type": "violet", "seed": 1}, "'type' must be one of"),
        ("noise", {"snr_db": "5", "type": "pink", "seed": 1}, "'snr_db' must be a number"),
        ("noise", {"snr_db": 5, "type": "pink", "seed": -1}, "'seed' must be an integer"),
        ("clipping", {"threshold": 0}, "'threshold' must be >"),
        ("clipping", {"threshold": 1.5}, "'threshold' must be <="),
        ("clipping", {"threshold": True}, "must be a number"),
        ("bandwidth_limit", {}, "missing parameter(s) 'cutoff_hz'"),
        ("reverb", {**ROOM, "rt60": 0.4, "source": [6, 1, 1]}, "not strictly inside the room"),
        ("reverb", {**ROOM, "rt60": 0.4, "mic": [1, 2]}, "list of 3 numbers"),
        ("reverb", {**ROOM, "rt60": float("nan")}, "must be finite"),
    ],
)
def test_bad_params_raise_clear_errors(name, params, problem):
    with pytest.raises(DegradationParamError) as info:
        build_degradation(DegradationSpec(name, params))
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"{name}: ")
    assert problem in str(info.value)


def test_errors_found_at_apply_time(speech16k):
    with pytest.raises(DegradationParamError, match="below the Nyquist"):
        BandwidthLimit(cutoff_hz=8000).apply(_state(speech16k, 16000))
    too_dry = Reverb(room_dims=(9, 8, 4), rt60=0.06, source=(1, 1, 1), mic=(2, 2, 1))
    with pytest.raises(DegradationParamError, match="not reachable"):
        too_dry.apply(_state(speech16k, 16000))
    with pytest.raises(ValueError, match="silent"):
        Noise(snr_db=0, type="white", seed=0).apply(_state(np.zeros(1600), 16000))


# ---------------------------------------------------------------------------------------
# noise
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", NOISE_TYPES)
@pytest.mark.parametrize("snr", [-5.0, 7.5, 20.0])
def test_noise_gives_requested_snr_on_active_speech(speech16k, kind, snr):
    state = _state(speech16k, 16000)
    out = Noise(snr_db=snr, type=kind, seed=11).apply(state)
    noise = out.noisy - state.noisy
    measured = 10 * math.log10(_active_power(state.noisy, 16000) / np.mean(noise**2))
    assert abs(measured - snr) < 0.1
    np.testing.assert_array_equal(out.target, state.target)  # only noisy changes
    assert out.noisy.dtype == np.float64 and len(out.noisy) == len(state.noisy)


def test_noise_snr_ignores_silence(speech16k):
    """Padding the speech with silence changes its mean power but not the noise level."""
    padded = np.concatenate([np.zeros(16000), speech16k, np.zeros(16000)])
    deg = Noise(snr_db=5.0, type="white", seed=3)
    level = np.sqrt(np.mean((deg.apply(_state(speech16k, 16000)).noisy - speech16k) ** 2))
    level_padded = np.sqrt(np.mean((deg.apply(_state(padded, 16000)).noisy - padded) ** 2))
    assert level_padded == pytest.approx(level, rel=1e-3)
    whole_file_ratio = np.mean(speech16k**2) / np.mean(padded**2)
    assert whole_file_ratio > 1.3  # a whole-file SNR would have moved the noise level by > 1.1 dB


def _slope_db_per_octave(x: np.ndarray, sr: int, lo: float = 100.0, hi: float = 8000.0) -> float:
    from scipy.signal import welch

    f, p = welch(x, sr, nperseg=8192)
    band = (f >= lo) & (f <= hi)
    return float(np.polyfit(np.log2(f[band]), 10 * np.log10(p[band]), 1)[0])


@pytest.mark.parametrize(("kind", "slope"), [("white", 0.0), ("pink", -3.0), ("brown", -6.0)])
def test_noise_spectral_slopes(kind, slope):
    x = generate_noise(kind, 10 * 44100, 44100, seed=5)
    assert np.mean(x**2) == pytest.approx(1.0)
    assert _slope_db_per_octave(x, 44100) == pytest.approx(slope, abs=0.3)


def _hum_f0(seed: int, sr: int = 8000, seconds: int = 2) -> float:
    x = generate_noise("hum", seconds * sr, sr, seed=seed)
    spectrum = np.abs(np.fft.rfft(x))
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return 50.0 if spectrum[f == 50].item() > spectrum[f == 60].item() else 60.0


def test_hum_is_mains_harmonics():
    sr = 16000
    x = generate_noise("hum", 4 * sr, sr, seed=2)
    f0 = _hum_f0(2)
    assert _hum_f0(2, sr=16000, seconds=4) == f0  # the mains frequency depends on the seed only
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    near_harmonic = (np.abs(f / f0 - np.round(f / f0)) * f0 <= 1.0) & (f > 0)
    assert spectrum[near_harmonic].sum() / spectrum.sum() > 0.95  # the rest: a weak broadband floor
    assert {_hum_f0(s) for s in range(8)} == {50.0, 60.0}  # both mains frequencies occur


def test_modulated_noise_is_amplitude_modulated():
    sr = 16000

    def envelope_spread(x: np.ndarray) -> float:
        rms = np.sqrt(np.mean(x[: len(x) // 1600 * 1600].reshape(-1, 1600) ** 2, axis=1))
        return float(np.std(rms) / np.mean(rms))

    modulated = generate_noise("modulated", 8 * sr, sr, seed=4)
    pink = generate_noise("pink", 8 * sr, sr, seed=4)
    assert envelope_spread(modulated) > 0.25 > 3 * envelope_spread(pink)
    assert _slope_db_per_octave(modulated, sr, hi=6000) == pytest.approx(-3.0, abs=0.5)


def test_noise_depends_only_on_its_seed():
    a = generate_noise("pink", 5000, 16000, seed=1)
    np.random.seed(123)  # the global RNG must not matter
    _ = np.random.standard_normal(10)
    np.testing.assert_array_equal(a, generate_noise("pink", 5000, 16000, seed=1))
    assert not np.array_equal(a, generate_noise("pink", 5000, 16000, seed=2))


# ---------------------------------------------------------------------------------------
# clipping and bandwidth limitation
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [0.1, 0.37, 1.0])
def test_clipping_bounds_exactly(speech16k, t):
    state = _state(speech16k, 16000)
    out = Clipping(threshold=t).apply(state)
    lo, hi = t * speech16k.min(), t * speech16k.max()
    assert out.noisy.max() == hi and out.noisy.min() == lo
    inside = (speech16k > lo) & (speech16k < hi)
    np.testing.assert_array_equal(out.noisy[inside], speech16k[inside])  # no renormalisation
    np.testing.assert_array_equal(out.target, state.target)


@pytest.mark.parametrize("cutoff", [4000, 8000])
def test_bandwidth_limit_removes_the_band_above_cutoff(cutoff):
    sr = 44100
    x = load_speech("a", sr).astype(np.float64)
    x = x + 0.05 * np.random.default_rng(0).standard_normal(len(x))  # energy at all frequencies
    state = _state(x, sr)
    y = BandwidthLimit(cutoff_hz=cutoff).apply(state).noisy
    assert len(y) == len(x)
    before, after = np.abs(np.fft.rfft(x)) ** 2, np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    above = f > cutoff
    assert 10 * np.log10(after[above].sum() / after.sum()) < -50
    assert 10 * np.log10(after[above].sum() / before[above].sum()) < -50
    band = (f > 100) & (f < 0.9 * cutoff)
    assert abs(10 * np.log10(after[band].sum() / before[band].sum())) < 0.5
    np.testing.assert_array_equal(BandwidthLimit(cutoff_hz=cutoff).apply(state).target, x)


# ---------------------------------------------------------------------------------------
# reverberation
# ---------------------------------------------------------------------------------------


def _schroeder_rt60(h: np.ndarray, sr: int) -> float:
    energy = np.cumsum(h[::-1] ** 2)[::-1]
    edc = 10 * np.log10(energy / energy[0] + 1e-300)
    i5, i25 = int(np.argmax(edc <= -5)), int(np.argmax(edc <= -25))
    slope = np.polyfit(np.arange(i5, i25) / sr, edc[i5:i25], 1)[0]
    return -60.0 / slope


def test_reverb_target_is_the_early_rir():
    sr = 16000
    reverb = Reverb(rt60=0.4, **ROOM)
    impulse = np.zeros(sr)
    impulse[0] = 1.0
    out = reverb.apply(_state(impulse, sr))
    h = reverb.rir(sr)
    assert len(h) < sr
    np.testing.assert_allclose(out.noisy[: len(h)], h, atol=1e-12)
    assert np.abs(out.noisy[len(h) :]).max() < 1e-12
    start = int(np.argmax(np.abs(h) >= 0.1 * np.abs(h).max()))
    end = start + round(0.05 * sr)
    np.testing.assert_allclose(out.target[:end], h[:end], atol=1e-12)
    assert np.abs(out.target[end:]).max() < 1e-12  # zero up to FFT round-off
    # the direct path arrives after the propagation delay, in both signals
    delay = math.dist(ROOM["source"], ROOM["mic"]) / SPEED_OF_SOUND * sr
    assert abs(start - delay) <= 1.5
    assert np.argmax(np.abs(out.target)) == np.argmax(np.abs(out.noisy))


def test_reverb_decay_and_early_energy_follow_rt60():
    sr = 16000
    x = load_speech("a", sr).astype(np.float64)
    measured, early_ratio = {}, {}
    for rt60 in (0.3, 0.6):
        reverb = Reverb(rt60=rt60, **ROOM)
        measured[rt60] = _schroeder_rt60(reverb.rir(sr), sr)
        out = reverb.apply(_state(x, sr))
        early_ratio[rt60] = float(np.sum(out.target**2) / np.sum(out.noisy**2))
    for rt60, value in measured.items():
        assert value == pytest.approx(rt60, rel=0.35)
    assert 1.5 < measured[0.6] / measured[0.3] < 2.7
    # the early part carries most of the energy, less so in the more reverberant room
    assert 0.4 < early_ratio[0.6] < early_ratio[0.3] < 1.0


def test_reverb_keeps_target_and_noisy_aligned():
    sr = 16000
    x = load_speech("b", sr).astype(np.float64)
    out = Reverb(rt60=0.5, **ROOM).apply(_state(x, sr))
    n = len(x)

    def lag(a: np.ndarray, b: np.ndarray) -> int:
        from scipy.signal import correlate

        c = correlate(a, b, mode="full", method="fft")
        return int(np.argmax(c)) - (len(b) - 1)

    assert lag(out.noisy, out.target) == 0
    # the target keeps the propagation delay: it is the speech convolved with the early RIR
    # (which starts at the direct path, see test_reverb_target_is_the_early_rir), not shifted
    from scipy.signal import fftconvolve

    early, start = Reverb.early_part(Reverb(rt60=0.5, **ROOM).rir(sr), sr)
    np.testing.assert_allclose(out.target, fftconvolve(x, early)[:n], atol=1e-12)
    delay = math.dist(ROOM["source"], ROOM["mic"]) / SPEED_OF_SOUND * sr
    assert abs(start - delay) <= 1.5
    assert lag(out.target, x) >= start - 1  # nothing arrives before the direct path
    assert len(out.noisy) == len(out.target) == n


def test_reverb_rir_matches_pyroomacoustics():
    """The float64 image sum equals pyroomacoustics' own RIR builder on the same image sources."""
    import pyroomacoustics as pra
    from scipy.signal import butter, sosfilt

    sr = 16000
    reverb = Reverb(rt60=0.35, **ROOM)
    ours = reverb.rir(sr)
    e_abs, order = reverb.ism_setup()
    previous = pra.constants.get("rir_hpf_enable")
    pra.constants.set("rir_hpf_enable", False)
    try:
        room = pra.ShoeBox(ROOM["room_dims"], fs=sr, materials=pra.Material(e_abs), max_order=order,
                           air_absorption=False)
        room.add_source(ROOM["source"])
        room.add_microphone(np.array(ROOM["mic"], dtype=float).reshape(3, 1))
        room.compute_rir()
        theirs = np.asarray(room.rir[0][0], dtype=np.float64)
    finally:
        pra.constants.set("rir_hpf_enable", previous)
    theirs = sosfilt(butter(2, 20.0, btype="highpass", output="sos", fs=sr), theirs)
    offset = pra.constants.get("frac_delay_length") // 2  # pyroomacoustics delays its RIR by this
    theirs = theirs[offset : offset + len(ours)]
    m = min(len(ours), len(theirs))
    corr = np.dot(ours[:m], theirs[:m]) / (np.linalg.norm(ours[:m]) * np.linalg.norm(theirs[:m]))
    assert corr > 0.999
    # pyroomacoustics leaves out the 1 / (4 pi) of the free-field Green's function
    assert np.linalg.norm(theirs) / np.linalg.norm(ours) == pytest.approx(4 * np.pi, rel=0.01)


# ---------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------


def test_finalise_scales_peak_and_quantises(speech16k):
    state = apply_chain(speech16k, 16000, [Noise(snr_db=0, type="white", seed=1).to_spec()])
    noisy, target = finalise(state)
    assert noisy.dtype == np.float32 and target.dtype == np.float32
    peak = max(np.abs(noisy).max(), np.abs(target).max())
    assert abs(peak - PEAK_LEVEL) <= 1 / 32768
    for x in (noisy, target):
        np.testing.assert_array_equal(np.round(x.astype(np.float64) * 32768), x.astype(np.float64) * 32768)
    # same scale for both: the noise-free target is the scaled clean speech
    scale = target.astype(np.float64) @ speech16k / (speech16k @ speech16k)
    np.testing.assert_allclose(target, speech16k * scale, atol=1 / 32768)


def test_rendered_sha256_is_the_hash_of_16bit_pcm(tmp_path):
    import soundfile as sf

    x, _ = read_audio(FIXTURE_A)
    write_flac(tmp_path / "x.flac", x, 22050)
    pcm, _ = sf.read(tmp_path / "x.flac", dtype="int16")
    assert rendered_sha256(x) == hashlib.sha256(pcm.astype("<i2").tobytes()).hexdigest()


def _chains() -> list[list[DegradationSpec]]:
    return [
        [Noise(snr_db=2.0, type="modulated", seed=9).to_spec()],
        [Reverb(rt60=0.45, **ROOM).to_spec(), Noise(snr_db=10.0, type="brown", seed=4).to_spec()],
        [Noise(snr_db=15.0, type="hum", seed=1).to_spec(), Clipping(threshold=0.25).to_spec(),
         BandwidthLimit(cutoff_hz=4000).to_spec()],
        [BandwidthLimit(cutoff_hz=8000).to_spec(), Noise(snr_db=-3.0, type="pink", seed=2).to_spec()],
    ]


def _utterances() -> list[Utterance]:
    return [
        Utterance(id=f"u{i}", sample_rate=sr, clean=str(FIXTURE_A if i % 2 else FIXTURE_B),
                  degradations=chain)
        for i, (chain, sr) in enumerate(zip(_chains() * 2, [22050] * 4 + [44100] * 4))
    ]


def test_render_is_bit_identical_in_any_order(tmp_path):
    utts = _utterances()
    forward = [render_utterance(u, tmp_path) for u in utts]
    backward = [render_utterance(u, tmp_path) for u in reversed(utts)][::-1]
    again = [render_utterance(u, tmp_path) for u in utts]
    for a, b, c in zip(forward, backward, again):
        np.testing.assert_array_equal(a.noisy, b.noisy)
        np.testing.assert_array_equal(a.reference, b.reference)
        np.testing.assert_array_equal(a.noisy, c.noisy)
    assert len({r.sha256 for r in forward}) == len(utts)


def test_render_is_bit_identical_in_another_process(tmp_path):
    utts = _utterances()
    lines = tmp_path / "m.jsonl"
    write_manifest(lines, utts)
    code = (
        "import json, sys\n"
        "from urgentbench.manifest import read_manifest\n"
        "from urgentbench.simulation.render import render_utterance, rendered_sha256\n"
        "out = [[r.sha256, rendered_sha256(r.reference)] for r in "
        "(render_utterance(u, '.') for u in reversed(list(read_manifest(sys.argv[1]))))]\n"
        "print(json.dumps(out[::-1]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(lines)], capture_output=True, text=True,
                          check=True, cwd=ROOT, timeout=120)
    theirs = json.loads(proc.stdout)
    ours = [[r.sha256, rendered_sha256(r.reference)] for r in (render_utterance(u, tmp_path) for u in utts)]
    assert theirs == ours


def test_render_recorded_noisy(tmp_path):
    x, _ = read_audio(FIXTURE_A)
    write_flac(tmp_path / "noisy.flac", x, 22050)
    write_flac(tmp_path / "clean.flac", x, 22050)
    write_flac(tmp_path / "short.flac", x[:-10], 22050)
    utt = Utterance(id="r", sample_rate=22050, noisy="noisy.flac", clean="clean.flac")
    r = render_utterance(utt, tmp_path)
    np.testing.assert_array_equal(r.noisy, x)
    np.testing.assert_array_equal(r.reference, x)
    r16 = render_utterance(Utterance(id="r", sample_rate=16000, noisy="noisy.flac"), tmp_path)
    assert r16.reference is None and r16.sample_rate == 16000
    assert abs(len(r16.noisy) - len(x) * 16000 / 22050) <= 1
    with pytest.raises(AudioError, match="reference has"):
        mismatched = Utterance(id="r", sample_rate=22050, noisy="noisy.flac", clean="short.flac")
        render_utterance(mismatched, tmp_path)


def test_render_errors(tmp_path):
    with pytest.raises(AudioError, match="file not found"):
        render_utterance(Utterance(id="m", sample_rate=16000, clean="missing.flac"), tmp_path)
    (tmp_path / "junk.flac").write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="not a readable audio file"):
        render_utterance(Utterance(id="j", sample_rate=16000, clean="junk.flac"), tmp_path)
    unknown = Utterance(id="u", sample_rate=16000, clean=str(FIXTURE_A),
                        degradations=[DegradationSpec("echo", {"delay": 0.1})])
    with pytest.raises(UnknownNameError, match="unknown degradation 'echo'"):
        render_utterance(unknown, tmp_path)


# ---------------------------------------------------------------------------------------
# the committed demo suite
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_utterances() -> list[Utterance]:
    from urgentbench.suites import Suite

    suite = Suite.from_card(DEMO / "card.yaml")
    assert suite.manifest_sha256 == file_sha256(DEMO / "manifest.jsonl")
    return suite.utterances()


def test_demo_card_and_manifest(demo_utterances):
    import yaml

    from urgentbench.suites import get_suite

    suite = get_suite("demo")
    suite.verify()
    assert (suite.name, suite.version, suite.sample_rate) == ("demo", "1.0", 44100)
    card = yaml.safe_load((DEMO / "card.yaml").read_text())
    assert card["categories"] == {
        "non-intrusive": ["dnsmos_ovrl"],
        "intrusive": ["pesq", "estoi", "sdr", "mcd", "lsd"],
        "downstream": ["spk_sim", "wer"],
    }
    utts = demo_utterances
    assert [u.id for u in utts] == [f"demo_{i:04d}" for i in range(1, 25)]
    assert all(u.sample_rate == 44100 and u.text and u.render_sha256 for u in utts)
    assert len({u.clean for u in utts}) == 24 and len({u.text for u in utts}) == 24
    assert all((DEMO / u.clean).is_file() for u in utts)
    assert len({u.speaker for u in utts}) >= 4
    assert sum(any(s.name == "noise" for s in u.degradations) for u in utts) >= 16
    counts = {name: c["count"] for name, c in card["conditions"].items()}
    assert counts == {name: sum(u.tags["condition"] == name for u in utts) for name in counts}
    assert sum(counts.values()) == 24
    for u in utts:  # tags name the chain
        assert u.tags["condition"] == "+".join(s.name for s in u.degradations)
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert total < 2.5e6


def test_demo_clean_files(demo_utterances):
    for u in demo_utterances:
        x, sr = read_audio(DEMO / u.clean)
        assert sr == 22050
        assert 2.3 <= len(x) / sr <= 4.0
        assert np.abs(x).max() == pytest.approx(0.5, abs=1 / 32768)


def test_demo_manifest_resamples_identically(demo_utterances):
    from urgentbench.simulation.demo import sample_manifest

    sampled = sample_manifest()
    for fresh, committed in zip(sampled, demo_utterances, strict=True):
        fresh.render_sha256 = committed.render_sha256
        assert fresh.to_dict() == committed.to_dict()


def test_demo_renders_match_render_sha256(demo_utterances, tmp_path):
    rendered = {}
    for u in demo_utterances:
        r = render_utterance(u, DEMO)
        assert r.sample_rate == 44100 and r.reference is not None and len(r.reference) == len(r.noisy)
        rendered[u.id] = r.sha256
    assert rendered == {u.id: u.render_sha256 for u in demo_utterances}
    # and rewriting the manifest reproduces the card's sha256 byte for byte
    sha = write_manifest(tmp_path / "manifest.jsonl", read_manifest(DEMO / "manifest.jsonl"))
    assert sha == file_sha256(DEMO / "manifest.jsonl")
