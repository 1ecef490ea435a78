"""The ``urgent2024-tfgridnet`` system (URGENT 2024 TF-GridNetV3 baseline) and its asset.

The published checkpoint cannot be downloaded here, so the network is exercised with random
weights: the official configuration's parameter names and shapes (derived by hand from the
recipe's numbers), equality with ESPnet's own modules (ESPnet 202511's wheel fetched with
pip, random weights saved in the checkpoint's layout and loaded strictly), exact length
and rate at 8-48 kHz, chunking without seams, the messages for a missing or corrupt
checkpoint, and a run of the demo suite. Everything but the ESPnet comparison and the run
uses a tiny configuration (same STFT, 1 block) so that the file stays fast.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")

import urgentbench.assets.asset as asset_module  # noqa: E402
from urgentbench.assets import AssetError, get_asset  # noqa: E402
from urgentbench.cli import main  # noqa: E402
from urgentbench.runner import run_system  # noqa: E402
from urgentbench.systems import SYSTEMS  # noqa: E402
from urgentbench.systems.tfgridnet_assets import ASSET, CHECKPOINT, CONFIG  # noqa: E402
from urgentbench.systems.tfgridnet_net import TFGridNetConfig, TFGridNetV3, config_from_espnet  # noqa: E402

NAME = "urgent2024-tfgridnet"
TINY = TFGridNetConfig(n_layers=1, lstm_hidden_units=8, attn_n_head=2, attn_qk_output_channel=2, emb_dim=8)
RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the machines running the tests are small and shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_model(cfg: TFGridNetConfig = TINY, seed: int = 0) -> TFGridNetV3:
    """A network with random weights, norms included (so that no parameter keeps its initial value)."""
    torch.manual_seed(seed)
    model = TFGridNetV3(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def espnet_config(cfg: TFGridNetConfig) -> dict:
    """The parts of an ESPnet ``config.yaml`` that describe ``cfg`` (as the urgent24 recipe writes them)."""
    sep = {k: getattr(cfg, k) for k in ("n_srcs", "n_layers", "lstm_hidden_units", "attn_n_head",
                                        "attn_qk_output_channel", "emb_dim", "emb_ks", "emb_hs", "eps")}
    stft = {"n_fft": cfg.n_fft, "hop_length": cfg.hop_length, "default_fs": cfg.default_fs}
    return {
        "optim": "adam", "max_epoch": 100, "allow_multi_rates": True, "num_spk": 1,
        "model_conf": {"normalize_variance_per_ch": True, "categories": [f"1ch_{r}Hz" for r in (8000, 48000)]},
        "encoder": "stft", "encoder_conf": {**stft, "use_builtin_complex": True},
        "decoder": "stft", "decoder_conf": stft,
        "separator": "tfgridnetv3", "separator_conf": {**sep, "n_imics": 1, "activation": "prelu"},
    }


def write_checkpoint(folder: Path, model: TFGridNetV3) -> Path:
    """The published layout: ``21epoch.pth`` (ESPnet model state dict, ``separator.*``) and ``config.yaml``."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({f"separator.{k}": v for k, v in model.state_dict().items()}, folder / CHECKPOINT)
    (folder / CONFIG).write_text(yaml.safe_dump(espnet_config(model.cfg)))
    return folder / CHECKPOINT


def system_with(model, **options):
    system = SYSTEMS.get(NAME).build(**options)
    system.use_model(model)
    return system


def noise(n: int, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


# ---------------------------------------------------------------------------- the official network
def expected_shapes(layers=6, hidden=200, emb=48, ks=4, heads=4, qk=2) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of the official checkpoint's separator, from the recipe's numbers."""
    shapes = {"conv.0.weight": (emb, 2, 3, 3), "conv.0.bias": (emb,), "conv.1.weight": (emb,),
              "conv.1.bias": (emb,), "deconv.weight": (emb, 2, 3, 3), "deconv.bias": (2,)}
    for i in range(layers):
        b = f"blocks.{i}."
        for path in ("intra", "inter"):
            shapes |= {f"{b}{path}_norm.weight": (emb,), f"{b}{path}_norm.bias": (emb,),
                       f"{b}{path}_linear.weight": (2 * hidden, emb, ks), f"{b}{path}_linear.bias": (emb,)}
            for d in ("", "_reverse"):
                shapes |= {f"{b}{path}_rnn.weight_ih_l0{d}": (4 * hidden, emb * ks),
                           f"{b}{path}_rnn.weight_hh_l0{d}": (4 * hidden, hidden),
                           f"{b}{path}_rnn.bias_ih_l0{d}": (4 * hidden,), f"{b}{path}_rnn.bias_hh_l0{d}": (4 * hidden,)}
        for x, channels in (("Q", qk), ("K", qk), ("V", emb // heads)):
            shapes |= {f"{b}attn_conv_{x}.weight": (heads * channels, emb, 1, 1),
                       f"{b}attn_conv_{x}.bias": (heads * channels,),
                       f"{b}attn_norm_{x}.gamma": (1, heads, channels, 1, 1),
                       f"{b}attn_norm_{x}.beta": (1, heads, channels, 1, 1), f"{b}attn_norm_{x}.act.weight": (heads,)}
        shapes |= {f"{b}attn_concat_proj.0.weight": (emb, emb, 1, 1), f"{b}attn_concat_proj.0.bias": (emb,),
                   f"{b}attn_concat_proj.1.weight": (1,), f"{b}attn_concat_proj.2.gamma": (1, emb, 1, 1),
                   f"{b}attn_concat_proj.2.beta": (1, emb, 1, 1)}
    return shapes


def test_official_configuration_names_shapes_and_card():
    model = TFGridNetV3()  # the defaults are the URGENT 2024 baseline's configuration
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == expected_shapes()
    card = SYSTEMS.get(NAME).card
    assert card.parameters == sum(int(np.prod(s)) for s in expected_shapes().values()) == 8_524_352
    assert config_from_espnet(espnet_config(TFGridNetConfig()), "official") == TFGridNetConfig()
    assert TFGridNetConfig().stft_sizes(8000) == (256, 128) and TFGridNetConfig().stft_sizes(44100) == (1411, 705)
    system = SYSTEMS.get(NAME).build()
    assert system.native_rate_follows_input and system.needed_assets() == [ASSET] == card.assets
    asset = get_asset(ASSET)
    assert {f.name for f in asset.files} == {CHECKPOINT, CONFIG} and all(f.unpinned for f in asset.files)
    base = "https://huggingface.co/wyz/tfgridnet_for_urgent24/resolve/main/exp/enh_train_enh_tfgridnet_raw/"
    assert asset.urls == {CHECKPOINT: base + CHECKPOINT, CONFIG: base + CONFIG} and "CC-BY-4.0" in asset.licence


@pytest.mark.parametrize("change,match", [
    ({"separator": "tfgridnetv2"}, "separator 'tfgridnetv2'"),
    ({"model_conf": {"always_forward_in_48k": True}}, "always_forward_in_48k"),
    ({"encoder_conf": {"n_fft": 256, "hop_length": 128, "default_fs": 8000, "window": "hamming"}}, "window"),
    ({"decoder_conf": {"n_fft": 512, "hop_length": 128, "default_fs": 8000}}, "different sizes"),
])
def test_unsupported_configurations_are_refused(change, match):
    with pytest.raises(ValueError, match=match):
        config_from_espnet({**espnet_config(TFGridNetConfig()), **change}, "config.yaml")


_ESPNET_SCRIPT = textwrap.dedent("""
    import sys, types
    src, out = sys.argv[1], sys.argv[2]
    sys.path.insert(0, src)
    # ESPnet's STFT and TF-GridNetV3 modules import these at the top without using them here
    # (torch's native complex type, no type checks needed): stand-ins instead of installing them.
    tensor, functional, typeguard = (types.ModuleType(n) for n in ("torch_complex.tensor",
                                     "torch_complex.functional", "typeguard"))
    tensor.ComplexTensor = type("ComplexTensor", (), {})
    typeguard.typechecked = lambda f: f
    package = types.ModuleType("torch_complex")
    package.tensor, package.functional = tensor, functional
    sys.modules.update({"torch_complex": package, "torch_complex.tensor": tensor,
                        "torch_complex.functional": functional, "typeguard": typeguard})
    import numpy as np, torch
    from espnet2.enh.decoder.stft_decoder import STFTDecoder
    from espnet2.enh.encoder.stft_encoder import STFTEncoder
    from espnet2.enh.separator.tfgridnetv3_separator import TFGridNetV3
    torch.set_num_threads(1)
    torch.manual_seed(0)
    sep = TFGridNetV3(None, n_srcs=1, n_imics=1, n_layers=6, lstm_hidden_units=200, attn_n_head=4,
                      attn_qk_output_channel=2, emb_dim=48, emb_ks=4, emb_hs=1, activation="prelu", eps=1e-5)
    with torch.no_grad():
        for p in sep.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    sep.eval()
    # ESPnetEnhancementModel.state_dict(): the encoder, decoder and losses hold no tensors
    torch.save({"separator." + k: v for k, v in sep.state_dict().items()}, out + "/21epoch.pth")
    enc = STFTEncoder(n_fft=256, hop_length=128, use_builtin_complex=True, default_fs=8000)
    dec = STFTDecoder(n_fft=256, hop_length=128, default_fs=8000)
    results = {}
    for fs in (8000, 16000, 22050, 48000):  # SeparateSpeech.__call__ with normalize_output_wav
        x = torch.from_numpy(np.random.default_rng(fs).standard_normal((1, fs // 5 + 3)).astype("float32") * 0.1)
        ilens = torch.tensor([x.shape[1]])
        with torch.no_grad():
            std = torch.std(x, dim=1, keepdim=True)
            feats, flens = enc(x / std, ilens, fs=fs)
            feats, _, _ = sep(feats, flens, {})
            y = dec(feats[0], ilens, fs=fs)[0] * std
            y = y / abs(y).max(dim=1, keepdim=True)[0] * 0.9
        results[f"x{fs}"], results[f"y{fs}"] = x[0].numpy(), y[0].numpy()
    np.savez(out + "/espnet.npz", **results)
""")


@pytest.fixture(scope="module")
def espnet_source(tmp_path_factory) -> Path:
    """ESPnet 202511's wheel, unpacked: the pinned release file `make install` fetches (asset espnet-202511)."""
    from conftest import _default_assets

    wheel = _default_assets() / "espnet-202511" / "espnet-202511-py3-none-any.whl"
    if not wheel.is_file():
        pytest.fail(f"{wheel} not found: run `urgentbench assets fetch espnet-202511` (make install does)")
    src = tmp_path_factory.mktemp("espnet-202511")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(src)
    return src


@pytest.mark.slow
def test_equal_to_espnet_modules_with_the_official_configuration(tmp_path, espnet_source):
    """ESPnet's own TF-GridNetV3 (random weights) -> checkpoint -> loaded strictly here -> same output."""
    exp = tmp_path / "exp"
    exp.mkdir()
    done = subprocess.run([sys.executable, "-c", _ESPNET_SCRIPT, str(espnet_source), str(exp)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (exp / CONFIG).write_text(yaml.safe_dump(espnet_config(TFGridNetConfig())))
    system = SYSTEMS.get(NAME).build(checkpoint=str(exp / CHECKPOINT), threads=1)
    system.setup()
    assert system.provenance()["weights"]["model_config"] == TFGridNetConfig().to_dict()
    ref = np.load(exp / "espnet.npz")
    for fs in (8000, 16000, 22050, 48000):
        y, rate = system.enhance(ref[f"x{fs}"], fs)
        assert rate == fs and y.shape == ref[f"y{fs}"].shape
        np.testing.assert_allclose(y, ref[f"y{fs}"], atol=1e-5, rtol=0)
        assert np.abs(y).max() == pytest.approx(0.9, abs=1e-6)


# ---------------------------------------------------------------------------- length, rate, scale
@pytest.mark.parametrize("rate", RATES)
def test_exact_length_and_rate(rate):
    system = system_with(random_model())
    for n in (1, 2, 100, rate // 4 + 1):
        y, out_rate = system.enhance(noise(n, seed=n), rate)
        assert out_rate == rate and y.shape == (n,) and y.dtype == np.float32 and np.isfinite(y).all()
    assert np.abs(system.enhance(noise(rate // 4), rate)[0]).max() == pytest.approx(0.9, rel=1e-6)


def test_rates_outside_training_range_are_resampled_and_back():
    model = random_model()
    for rate in (6000, 96000):  # run at 8 and 48 kHz
        x = noise(rate // 3, seed=rate)
        y, out_rate = system_with(model).enhance(x, rate)
        assert out_rate == rate and y.shape == x.shape and np.isfinite(y).all() and np.abs(y).max() > 0


def test_runner_path_keeps_the_input_rate():
    system = system_with(random_model())
    for rate in (8000, 22050, 48000):
        x = noise(rate // 2 + 5, seed=rate)
        y, clipped = run_system(system, x, rate, "fixture")
        assert y.shape == x.shape and clipped == 0
        direct, _ = system.enhance(x, rate)
        assert np.max(np.abs(y - direct)) <= 1 / 32768  # no resampling: only the 16-bit grid


def test_scale_options_and_silence():
    model = random_model()
    x = noise(4000)
    raw, _ = system_with(model, normalize_output=False).enhance(x, 16000)
    peak, _ = system_with(model).enhance(x, 16000)
    np.testing.assert_allclose(peak, raw / np.abs(raw).max() * 0.9, rtol=1e-5, atol=1e-7)
    # the input's level does not change the variance-normalised network's output shape
    louder, _ = system_with(model, normalize_output=False).enhance(x * 10, 16000)
    np.testing.assert_allclose(louder, raw * 10, rtol=1e-4, atol=1e-6)
    silent, _ = system_with(model).enhance(np.zeros(800, np.float32), 16000)
    assert silent.shape == (800,) and not silent.any()
    with pytest.raises(ValueError, match="chunk_seconds"):
        SYSTEMS.get(NAME).build(chunk_seconds=5)


# ---------------------------------------------------------------------------- chunking
class Pointwise(torch.nn.Module):
    """A stand-in network that scales the spectrogram: any seam would show in its output."""

    cfg = TINY

    def forward(self, spec):
        return spec[:, None] * 0.5


def test_chunking_has_no_seams():
    rate = 16000
    x = noise(int(14.3 * rate))
    chunked = system_with(Pointwise(), chunk_seconds=6, normalize_output=False)
    bounds = chunked.chunk_bounds(x.size, rate)
    assert len(bounds) == 4 and bounds[0][0] == 0 and bounds[-1][1] == x.size
    y_chunked, _ = chunked.enhance(x, rate)
    y_once, _ = system_with(Pointwise(), normalize_output=False).enhance(x, rate)
    np.testing.assert_allclose(y_chunked, y_once, rtol=0, atol=1e-6)
    np.testing.assert_allclose(y_once, 0.5 * x, rtol=0, atol=1e-6)  # the STFT round trip is exact
    fade = chunked.fade_in(rate)
    assert fade[0] == 0 and fade[-1] == 1 and np.all(np.diff(fade) >= 0)


def test_long_input_with_the_network_is_chunked_to_exact_length():
    rate = 8000
    system = system_with(random_model(), chunk_seconds=6)
    x = noise(int(13.5 * rate))
    assert len(system.chunk_bounds(x.size, rate)) == 4
    y, _ = system.enhance(x, rate)
    assert y.shape == x.shape and np.isfinite(y).all() and np.abs(y).max() == pytest.approx(0.9, rel=1e-6)


# ---------------------------------------------------------------------------- checkpoints and assets
def test_checkpoint_option_loads_strictly(tmp_path):
    model = random_model(seed=3)
    path = write_checkpoint(tmp_path / "exp", model)
    system = SYSTEMS.get(NAME).build(checkpoint=str(path))
    assert system.needed_assets() == [] and SYSTEMS.get(NAME).availability({"checkpoint": str(path)}).ok
    system.setup()
    x = noise(3000)
    np.testing.assert_array_equal(system.enhance(x, 16000)[0], system_with(model).enhance(x, 16000)[0])
    weights = system.provenance()["weights"]
    assert weights["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and weights["source"] == "checkpoint"
    assert weights["model_config"] == TINY.to_dict() and weights["config"] == str(tmp_path / "exp" / CONFIG)
    # without the config beside it, the official (larger) configuration does not fit the weights
    (tmp_path / "exp" / CONFIG).unlink()
    with pytest.raises(ValueError, match="weights do not fit"):
        SYSTEMS.get(NAME).build(checkpoint=str(path)).setup()


@pytest.mark.parametrize("content,match", [
    (None, "does not exist"),
    (b"not a checkpoint", "not a readable checkpoint"),
])
def test_bad_checkpoint_option_says_what_to_do(tmp_path, content, match):
    path = tmp_path / "model.pth"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as err:
        SYSTEMS.get(NAME).build(checkpoint=str(path)).setup()
    assert "official weights" in str(err.value) and "\n" not in str(err.value)


def test_missing_and_corrupt_asset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    asset = get_asset(ASSET)
    with pytest.raises(AssetError) as err:
        SYSTEMS.get(NAME).build().setup()
    assert f"urgentbench assets fetch {ASSET}" in str(err.value)
    assert f"urgentbench assets add {ASSET} --from DIR" in str(err.value)
    assert main(["ls", "systems"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(NAME + " "))
    assert "missing" in line and f"urgentbench assets fetch {ASSET}" in line
    # install a random-weight copy in the published layout: its digests are recorded, then verified
    model = random_model(seed=4)
    source = write_checkpoint(tmp_path / "download", model).parent
    asset.add(source)
    recorded = asset.recorded_pins()
    assert recorded[CHECKPOINT]["sha256"] == hashlib.sha256((source / CHECKPOINT).read_bytes()).hexdigest()
    system = SYSTEMS.get(NAME).build()
    system.setup()
    assert system.provenance()["weights"]["official"] is True
    x = noise(2000)
    np.testing.assert_array_equal(system.enhance(x, 8000)[0], system_with(model).enhance(x, 8000)[0])
    # a changed file is corrupt; setup says so with the commands that replace it
    torch.save({"separator.conv.0.bias": torch.zeros(8)}, asset.directory() / CHECKPOINT)
    assert asset.status().state == "corrupt"
    monkeypatch.setattr(asset_module, "_VERIFIED", {})  # forget this process's verification
    with pytest.raises(AssetError, match=f"corrupt .*urgentbench assets fetch {ASSET}"):
        SYSTEMS.get(NAME).build().setup()


@pytest.mark.slow
def test_demo_run_with_a_random_checkpoint(tmp_path, monkeypatch, capsys):
    """``urgentbench run`` end to end on two demo utterances (44.1 kHz) with --system-args checkpoint=PATH."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("URGENTBENCH_THREADS", "1")
    path = write_checkpoint(tmp_path / "exp", random_model(seed=5))
    code = main(["-q", "run", "--system", NAME, "--suite", "demo", "--system-args", f"checkpoint={path}",
                 "--limit", "2", "--metrics", "pesq", "--jobs", "1"])
    assert code == 0, capsys.readouterr()
    import sqlite3

    with sqlite3.connect(tmp_path / "results" / "results.sqlite") as db:
        rows = db.execute("SELECT system, metric, error, result_json FROM scores").fetchall()
    assert len(rows) == 2 and all(r[:3] == (NAME, "pesq", None) and "pesq" in r[3] for r in rows)
