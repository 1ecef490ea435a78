"""The ``voicefixer`` system: re-implemented networks, checkpoint loading, the wrapper, the asset.

The official checkpoints cannot be downloaded here, so everything runs on randomly
initialised networks: the official architecture for the state-dict round trips and the
comparison with the ``voicefixer`` package's own inference code; small widths (same depths,
dilations, strides and pooling, hence the same receptive fields) for the wrapper paths
(rates, lengths, chunking).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import load_speech, white_noise_mix  # noqa: E402

from urgentbench import assets as assets_mod  # noqa: E402
from urgentbench.assets import AssetError, AssetFile, get_asset, register_asset  # noqa: E402
from urgentbench.cli import main  # noqa: E402
from urgentbench.runner import run_system  # noqa: E402
from urgentbench.systems import SYSTEMS  # noqa: E402
from urgentbench.systems import voicefixer as vf  # noqa: E402
from urgentbench.systems.voicefixer_nets import AnalysisModule, Vocoder, parameter_count  # noqa: E402

SR = 44_100
TINY_UNET = (4, 4, 8, 8, 8, 8)


def _randomise_norms(module, seed: int) -> None:
    """Non-trivial batch-norm statistics and affine parameters (defaults would be 0/1)."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=gen))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=gen))
            m.bias.data.copy_(0.4 * torch.rand(n, generator=gen) - 0.2)


def random_models(seed: int = 0, tiny: bool = True):
    """Random analysis module and vocoder (official widths unless ``tiny``), in eval mode."""
    torch.manual_seed(seed)
    if tiny:
        analysis, vocoder = AnalysisModule(unet_widths=TINY_UNET), Vocoder(channels=64, cond_channels=16)
    else:
        analysis, vocoder = AnalysisModule(), Vocoder()
    _randomise_norms(analysis, seed)
    return analysis.eval(), vocoder.eval()


def system_with(models, **options):
    system = SYSTEMS.get("voicefixer").build(**options)
    system.use_models(*models)
    return system


def save_official(analysis, vocoder, folder: Path, extra_analysis_keys: bool = True) -> tuple[Path, Path]:
    """Write the two files in the official layout (flat restorer state dict; ``{"generator": ...}``)."""
    folder.mkdir(parents=True, exist_ok=True)
    state = dict(analysis.state_dict())
    if extra_analysis_keys:  # vf.ckpt may also hold STFT kernels and a vocoder copy; both are ignored
        state["f_helper.stft.conv_real.weight"] = torch.zeros(1025, 1, 2048)
        state["vocoder.model.condnet.0.bias"] = torch.zeros(3)
    a_path, v_path = folder / vf.ANALYSIS_FILE, folder / vf.VOCODER_FILE
    torch.save(state, a_path)
    torch.save({"generator": vocoder.state_dict()}, v_path)
    return a_path, v_path


@pytest.fixture(scope="module")
def tiny():
    return random_models(seed=0, tiny=True)


@pytest.fixture(scope="module")
def full():
    return random_models(seed=1, tiny=False)


@pytest.fixture(scope="module")
def speech():
    return white_noise_mix(load_speech("a", SR), 10.0, seed=3)


# ----------------------------------------------------------------------------- card, asset, listing


def test_card_and_asset():
    card = SYSTEMS.get("voicefixer").build().card
    assert (card.sample_rate, card.assets) == (SR, ["voicefixer"])
    analysis, vocoder = AnalysisModule(), Vocoder()
    assert card.parameters == parameter_count(analysis.generator) + parameter_count(vocoder) == 104_260_339
    assert card.algorithmic_latency_ms == 30_000
    asset = get_asset("voicefixer")
    assert [f.name for f in asset.files] == ["vf.ckpt", "model.ckpt-1490000_trimed.pt"]
    assert all(len(f.sha256) == 64 for f in asset.files)
    for f in asset.files:
        assert asset.urls[f.name] == f"https://zenodo.org/records/5600188/files/{f.name}?download=1"
    assert "CC-BY-4.0" in asset.licence and "CC-BY-4.0" in card.licence and "MIT" in card.licence


def test_listed_unavailable_with_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path))
    assert main(["ls", "systems"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("voicefixer "))
    assert "asset 'voicefixer' is missing" in line
    assert "urgentbench assets fetch voicefixer" in line
    assert "urgentbench assets add voicefixer --from DIR" in line
    assert not SYSTEMS.get("voicefixer").availability().ok
    system = SYSTEMS.get("voicefixer").build()
    with pytest.raises(AssetError, match="urgentbench assets fetch voicefixer"):
        system.enhance(np.zeros(SR, dtype=np.float32), SR)


def test_options_are_checked():
    spec = SYSTEMS.get("voicefixer")
    with pytest.raises(ValueError, match="chunk_seconds must be a number >= 23.28"):
        spec.build(chunk_seconds=20)
    with pytest.raises(ValueError, match="unknown option"):
        spec.build(mode=1)


# ----------------------------------------------------------------------------- networks and checkpoints


@pytest.mark.slow
def test_official_state_dicts_round_trip_strict(tmp_path, full):
    analysis, vocoder = full
    a_path, v_path = save_official(analysis, vocoder, tmp_path)
    loaded_a, loaded_v = vf.read_checkpoints(a_path, v_path)
    for src, dst in ((analysis, loaded_a), (vocoder, loaded_v)):
        s, d = src.state_dict(), dst.state_dict()
        assert s.keys() == d.keys()
        assert all(torch.equal(s[k], d[k]) for k in s)
    keys = set(vocoder.state_dict())
    assert {
        "condnet.0.weight_g", "condnet.0.weight_v", "generator.3.layer.weight_g",
        "generator.3.skip_conv.weight", "generator.4.layers.7.1.weight_v", "generator.16.weight_g",
    } <= keys
    assert vocoder.state_dict()["generator.3.layer.weight_g"].shape == (1024, 1, 1)  # per input channel
    assert {
        "mel.fb", "generator.denoiser.7.gru.weight_hh_l1_reverse",
        "generator.unet.decoder_block6.conv1.weight",
        "generator.unet.encoder_block1.conv_block1.shortcut.weight",
    } <= set(analysis.state_dict())


def test_parametrized_weight_norm_names_are_accepted(full):
    _, vocoder = full
    new_names = {
        "weight_g": "parametrizations.weight.original0",
        "weight_v": "parametrizations.weight.original1",
    }
    renamed = {}
    for key, value in vocoder.state_dict().items():
        stem, _, last = key.rpartition(".")
        renamed[f"{stem}.{new_names.get(last, last)}"] = value
    state = vf.vocoder_state({"generator": renamed}, "x.pt")
    assert state.keys() == vocoder.state_dict().keys()


def test_bad_checkpoints_are_named(tmp_path, tiny, full):
    a_path, v_path = save_official(*tiny, tmp_path / "tiny")  # wrong widths for the official architecture
    with pytest.raises(ValueError, match=r"vf\.ckpt: weights do not fit the VoiceFixer architecture"):
        vf.read_checkpoints(a_path, v_path)
    good_a, _ = save_official(*full, tmp_path / "full")
    with pytest.raises(ValueError, match=r"trimed\.pt: weights do not fit"):
        vf.read_checkpoints(good_a, v_path)
    junk = tmp_path / "junk.ckpt"
    torch.save({"something": torch.zeros(2)}, junk)
    with pytest.raises(ValueError, match="junk.ckpt: no 'generator"):
        vf.read_checkpoints(junk, v_path)
    with pytest.raises(ValueError, match="junk.ckpt: no 'condnet"):
        vf.read_checkpoints(good_a, junk)
    text = tmp_path / "text.ckpt"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="text.ckpt: not a readable checkpoint"):
        vf.read_checkpoints(text, v_path)


# ----------------------------------------------------------------------------- upstream parity


#: voicefixer 0.1.3's wheel as published on PyPI (its metadata asks for streamlit, GitPython and
#: progressbar, so it is not a test dependency: the test takes its code from the wheel).
_VOICEFIXER_WHEEL = ("voicefixer-0.1.3-py3-none-any.whl", "7ee61b71c25fbdf1ef4e5407fe870ec0b351f8a82765806a8b09c37eb3a1162d")


def _voicefixer_release(folder: Path) -> Path:
    """The ``voicefixer`` folder of the pinned 0.1.3 wheel, downloaded with pip (skip when that fails)."""
    import hashlib
    import subprocess
    import zipfile

    name, sha256 = _VOICEFIXER_WHEEL
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(folder),
         "voicefixer==0.1.3"],
        capture_output=True, text=True, timeout=300,
    )
    wheel = folder / name
    if done.returncode != 0 or not wheel.is_file():
        pytest.skip(f"voicefixer 0.1.3 could not be downloaded: {(done.stderr or done.stdout).strip()[-300:]}")
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == sha256
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(folder / "src", [m for m in zf.namelist() if m.startswith("voicefixer/")])
    return folder / "src" / "voicefixer"


@pytest.fixture
def official_voicefixer(monkeypatch, tmp_path):
    """``voicefixer`` 0.1.3's own ``VoiceFixer`` class, imported without running its downloading __init__ files.

    Upstream reads its checkpoints from ``~/.cache/voicefixer``; HOME points at a temporary
    folder that the test fills with random checkpoints.
    """
    pytest.importorskip("torchlibrosa")
    pytest.importorskip("matplotlib")
    spec = importlib.util.find_spec("voicefixer")  # never imported as a whole: its __init__ downloads
    root = Path(spec.submodule_search_locations[0]) if spec is not None else _voicefixer_release(tmp_path / "wheel")
    saved = {k: v for k, v in sys.modules.items() if k == "voicefixer" or k.startswith("voicefixer.")}
    for name in list(saved):
        del sys.modules[name]
    packages = ("", "vocoder", "restorer", "tools", "tools/modules", "vocoder/model")
    for sub in packages:
        name = ".".join(["voicefixer", *sub.split("/")]) if sub else "voicefixer"
        stub = types.ModuleType(name)
        stub.__path__ = [str(root / sub)]  # a package whose __init__ (the download) never runs
        sys.modules[name] = stub
    monkeypatch.setenv("HOME", str(tmp_path))
    try:
        yield importlib.import_module("voicefixer.base").VoiceFixer, tmp_path / ".cache" / "voicefixer"
    finally:
        for name in [k for k in sys.modules if k == "voicefixer" or k.startswith("voicefixer.")]:
            del sys.modules[name]
        sys.modules.update(saved)


@pytest.mark.slow
def test_equals_the_voicefixer_package_mode_0(official_voicefixer, full, speech):
    """Same random checkpoints: upstream ``restore_inmem(mode=0)`` and the wrapper agree to float rounding."""
    official_cls, cache = official_voicefixer
    analysis, vocoder = full
    torch.save(analysis.state_dict(), _mkdir(cache / "analysis_module" / "checkpoints") / "vf.ckpt")
    vocoder_dir = _mkdir(cache / "synthesis_module" / "44100")
    torch.save({"generator": vocoder.state_dict()}, vocoder_dir / vf.VOCODER_FILE)
    upstream = official_cls()
    x = speech[: int(1.3 * SR) + 123]
    with torch.inference_mode():
        ref = upstream.restore_inmem(x, mode=0)[0]
    y, rate = system_with(full).enhance(x, SR)
    assert rate == SR and y.shape == x.shape == ref.shape
    rms = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2)))
    assert rms > 1e-4  # the random model produces a real signal
    assert np.max(np.abs(y - ref)) < 1e-4 * rms


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------- wrapper paths


@pytest.mark.parametrize("rate", [8_000, 16_000, 44_100, 48_000])
def test_output_length_equals_input_length(tiny, rate):
    system = system_with(tiny)
    rng = np.random.default_rng(rate)
    for n in (1, 37, 200, rate // 3 + 1, int(0.6 * rate) + 5):
        x = (rng.standard_normal(n) * 0.1).astype(np.float32)
        y, clipped = run_system(system, x, rate, "fixture")
        assert y.shape == (n,) and np.isfinite(y).all() and clipped >= 0


def test_native_length_and_short_inputs(tiny):
    system = system_with(tiny)
    rng = np.random.default_rng(5)
    for n in (1, 1024, 1025, 1026, 4410, 30_001):
        y, rate = system.enhance((rng.standard_normal(n) * 0.1).astype(np.float32), SR)
        assert rate == SR and y.shape == (n,) and y.dtype == np.float32 and np.isfinite(y).all()
    x = (rng.standard_normal(600) * 0.1).astype(np.float32)
    padded = np.concatenate([x, np.zeros(1025 - 600, dtype=np.float32)])
    np.testing.assert_array_equal(system.enhance(x, SR)[0], system.enhance(padded, SR)[0][:600])
    with pytest.raises(ValueError, match="runs at 44100 Hz"):
        system.enhance(x, 16_000)


def test_crop_follows_upstream_trim_center():
    for n in (1025, 4410, 44_099, 44_100, 44_101, 88_200 + 440):
        frames = n // 441 + 1
        emitted = (frames + frames % 2 + 4) * 441
        diff = emitted - n
        kept = np.arange(emitted)[diff // 2 : -(diff // 2)][:n]  # upstream's _trim_center
        assert vf.crop_offset(n) == kept[0] and len(kept) == n


class _Shift(torch.nn.Module):
    """Stand-in for the two networks: sample-exact and translation-equivariant (a delayed tanh)."""

    def __init__(self, delay: int):
        super().__init__()
        self.delay = delay

    def forward(self, x):
        n = x.shape[-1]
        frames = n // 441 + 1
        emitted = (frames + frames % 2 + 4) * 441
        return torch.nn.functional.pad(torch.tanh(3 * x), (self.delay, emitted - n - self.delay))


def test_chunk_crossfade_and_offsets_are_exact(speech):
    """With an exactly equivariant stand-in, chunked output equals one-shot output sample for sample."""
    x = np.concatenate([speech] * 11)[: int(62.3 * SR)]
    system = SYSTEMS.get("voicefixer").build(chunk_seconds=24)
    system._analysis, system._vocoder = torch.nn.Identity(), _Shift(delay=900)
    bounds = system.chunk_bounds(len(x))
    assert len(bounds) >= 4 and bounds[0][0] == 0 and bounds[-1][1] == len(x)
    for (_, e0), (s1, _) in zip(bounds, bounds[1:]):
        assert s1 % vf.GRID == 0 and e0 - s1 >= vf.OVERLAP_S * SR
    y_chunked, _ = system.enhance(x, SR)
    system.options["chunk_seconds"] = 1e4
    y_once, _ = system.enhance(x, SR)
    offset = vf.crop_offset(len(x))
    raw = _Shift(900)(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_array_equal(y_once, raw[offset : offset + len(x)])  # upstream's crop of the whole input
    np.testing.assert_allclose(y_chunked, y_once, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_chunked_agrees_with_one_shot(tiny, speech):
    """Random networks of the official structure: 24-s chunks, 11-s overlaps vs the whole input at once."""
    x = np.concatenate([speech, load_speech("b", SR)] * 5)  # 47.5 s
    chunked = system_with(tiny, chunk_seconds=24)
    bounds = chunked.chunk_bounds(len(x))
    assert len(bounds) == 3
    y_chunked, _ = chunked.enhance(x, SR)
    y_once, _ = system_with(tiny, chunk_seconds=60).enhance(x, SR)
    rms = float(np.sqrt(np.mean(y_once.astype(np.float64) ** 2)))
    assert rms > 1e-4
    err = np.abs(y_chunked.astype(np.float64) - y_once)
    assert err.max() < 1e-4 * rms  # -80 dB re the output level, everywhere
    for start, _ in bounds[1:]:  # and in particular across every overlap
        seam = slice(start, start + int(vf.OVERLAP_S * SR))
        assert err[seam].max() < 1e-4 * rms


@pytest.mark.slow
def test_asset_add_setup_and_provenance(tmp_path, monkeypatch, full, speech):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(assets_mod, "_VERIFIED", {})
    folder = tmp_path / "weights"
    a_path, v_path = save_official(*full, folder)
    asset = get_asset("voicefixer")
    pins = tuple(AssetFile(p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in (a_path, v_path))
    patched = type(asset)(**{**asset.__dict__, "files": pins})
    register_asset(patched, override=True)
    try:
        with pytest.raises(AssetError, match="pass the folder"):
            patched.add(a_path)
        patched.add(folder)
        assert patched.status().state == "present" and SYSTEMS.get("voicefixer").availability().ok
        system = SYSTEMS.get("voicefixer").build()
        system.setup()
        x = speech[: SR // 2]
        np.testing.assert_array_equal(system.enhance(x, SR)[0], system_with(full).enhance(x, SR)[0])
        prov = system.provenance()
        assert prov["weights"]["source"] == "asset"
        assert prov["weights"]["parameters"] == {"analysis": 70_377_009, "vocoder": 33_883_330}
        assert prov["asset"]["files"]["vf.ckpt"]["sha256"] == pins[0].sha256
        (patched.directory() / vf.VOCODER_FILE).write_bytes(b"corrupt")
        assert patched.status().state == "corrupt"
    finally:
        register_asset(asset, override=True)
