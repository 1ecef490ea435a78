"""UTMOS (SpeechMOS utmos22_strong) and RawNet3 speaker similarity with random-initialised models.

Models of the exact architectures, loaded through the real asset and loader paths with the
official key names.

Reference values marked "recorded" were computed once with the reference implementations
(torchaudio 2.11 ``functional.resample``; ESPnet 202402's AsteroidFrontend, RawNet3Encoder,
ChnAttnStatPooling and RawNet3Projector with asteroid-filterbanks 0.4.0) on the same inputs and
weights; urgentbench matched them exactly (difference 0.0).
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
from conftest import load_speech, white_noise_mix

from urgentbench.assets import AssetError, get_asset
from urgentbench.metrics import MetricError, get_metric_class

# --------------------------------------------------------------------------- helpers


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty asset cache."""
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _speechmos_keys() -> set[str]:
    """State-dict keys of SpeechMOS v1.2.0's UTMOS22Strong, written out from its module tree."""
    keys = {"domain_emb", "judge_emb", "wav2vec2.mask_emb"}
    fe = "wav2vec2.feature_extractor.conv_layers"
    keys |= {f"{fe}.{i}.0.weight" for i in range(7)} | {f"{fe}.0.2.weight", f"{fe}.0.2.bias"}
    for name in ("wav2vec2.layer_norm", "wav2vec2.post_extract_proj", "wav2vec2.encoder.layer_norm"):
        keys |= {f"{name}.weight", f"{name}.bias"}
    keys |= {f"wav2vec2.encoder.pos_conv.0.{p}" for p in ("weight_g", "weight_v", "bias")}
    for layer in range(12):
        base = f"wav2vec2.encoder.layers.{layer}"
        for sub in ("q_proj", "k_proj", "v_proj", "out_proj"):
            keys |= {f"{base}.self_attn.{sub}.weight", f"{base}.self_attn.{sub}.bias"}
        for sub in ("self_attn_layer_norm", "fc1", "fc2", "final_layer_norm"):
            keys |= {f"{base}.{sub}.weight", f"{base}.{sub}.bias"}
    for suffix in ("", "_reverse"):
        keys |= {f"blstm.{p}_l0{suffix}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    keys |= {f"projection.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}
    return keys


def _espnet_rawnet3_keys() -> set[str]:
    """State-dict keys of ESPnet's voxcelebs12_rawnet3 model (without the loss), from its module tree."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {
        "frontend.flipped_filter",
        "frontend.norm.weight",
        "frontend.norm.bias",
        *(f"frontend.conv.filterbank.{p}" for p in ("low_hz_", "band_hz_", "window_", "n_")),
        "encoder.layer4.weight",
        "encoder.layer4.bias",
        "pooling.attention.0.weight",
        "pooling.attention.0.bias",
        *(f"pooling.attention.2.{p}" for p in bn),
        "pooling.attention.3.weight",
        "pooling.attention.3.bias",
        *(f"projector.bn.{p}" for p in bn),
        "projector.fc.weight",
        "projector.fc.bias",
    }
    for layer in (1, 2, 3):
        base = f"encoder.layer{layer}"
        keys |= {f"{base}.{c}.{p}" for c in ("conv1", "conv3") for p in ("weight", "bias")}
        keys |= {f"{base}.{b}.{p}" for b in ("bn1", "bn3") for p in bn}
        keys |= {f"{base}.convs.{i}.{p}" for i in range(7) for p in ("weight", "bias")}
        keys |= {f"{base}.bns.{i}.{p}" for i in range(7) for p in bn}
        keys |= {f"{base}.afms.alpha", f"{base}.afms.fc.weight", f"{base}.afms.fc.bias"}
    keys.add("encoder.layer1.residual.0.weight")  # 256 -> 1024 channels: a projection shortcut
    return keys


_KEEP = ("low_hz_", "band_hz_", "window_", "n_", "flipped_filter", "num_batches_tracked")


def _seeded_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Deterministic weights keyed by name (the recipe used for the recorded ESPnet values)."""
    out = {}
    for key, value in sorted(model.state_dict().items()):
        if key.rsplit(".", 1)[-1] in _KEEP:
            out[key] = value.clone()
            continue
        g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        if key.endswith("running_var"):
            t = 0.5 + torch.rand(value.shape, generator=g)
        elif value.ndim >= 2:
            t = torch.randn(value.shape, generator=g) / math.sqrt(value[0].numel())
        else:
            t = 0.1 * torch.randn(value.shape, generator=g) + (1.0 if key.endswith(".weight") else 0.0)
        out[key] = t.to(value.dtype)
    return out


_RAWNET3_CONFIG = """\
config: conf/tuning/train_rawnet3_best_trnVox12_emb192_amp_subcentertopk.yaml
frontend: asteroid_frontend
frontend_conf:
    sinc_stride: 16
    sinc_kernel_size: 251
    sinc_filters: 256
    preemph_coef: 0.97
    log_term: 1.0e-06
specaug: null
normalize: null
encoder: rawnet3
encoder_conf:
    model_scale: 8
    ndim: 1024
    output_size: 1536
pooling: chn_attn_stat
pooling_conf: {}
projector: rawnet3
projector_conf:
    output_size: 192
loss: aamsoftmax_sc_topk
"""


@pytest.fixture(scope="module")
def utmos_net():
    """A random UTMOS22 strong network (fixed seed)."""
    from urgentbench.metrics._utmos_net import UTMOS22Strong

    torch.manual_seed(0)
    return UTMOS22Strong().eval()


@pytest.fixture(scope="module")
def rawnet3_state():
    """Seeded RawNet3 weights under ESPnet's names, plus the training loss's class centres."""
    from urgentbench.metrics._rawnet3_net import RawNet3

    state = _seeded_state(RawNet3())
    state["loss.weight"] = torch.randn(3 * 10, 192)  # AAM-softmax sub-centres: not part of the embedder
    return state


def _install_rawnet3(tmp_path, state, config=_RAWNET3_CONFIG):
    src = tmp_path / "rawnet3_src"
    src.mkdir(exist_ok=True)
    torch.save(state, src / "40epoch.pth")
    (src / "config.yaml").write_text(config)
    return get_asset("rawnet3-voxcelebs12").add(src)


# --------------------------------------------------------------------------- UTMOS


@pytest.mark.slow
def test_utmos_network_has_speechmos_key_names_and_loads_strictly(tmp_path, utmos_net):
    from urgentbench.metrics.utmos import load_utmos22_strong

    state = utmos_net.state_dict()
    assert set(state) == _speechmos_keys()
    assert tuple(state["wav2vec2.encoder.pos_conv.0.weight_g"].shape) == (1, 1, 128)
    assert tuple(state["wav2vec2.encoder.pos_conv.0.weight_v"].shape) == (768, 48, 128)
    assert tuple(state["domain_emb"].shape) == tuple(state["judge_emb"].shape) == (1, 128)
    assert tuple(state["blstm.weight_ih_l0"].shape) == (4 * 512, 768 + 256)
    path = tmp_path / "utmos22_strong_step7459_v1.pt"
    torch.save(state, path)
    loaded = load_utmos22_strong(path)
    wave = 0.1 * torch.randn(1, 8000, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        assert torch.equal(loaded(wave), utmos_net(wave))
    # a renamed key (another checkpoint layout) is refused by the strict load, naming the file
    state["projection.3.weight"] = state.pop("projection.2.weight")
    torch.save(state, path)
    with pytest.raises(RuntimeError, match="utmos22_strong_step7459_v1.pt is not a SpeechMOS"):
        load_utmos22_strong(path)


@pytest.mark.slow
def test_utmos_wav2vec2_equals_transformers_wav2vec2(utmos_net):
    """The SSL part equals transformers' Wav2Vec2Model (fairseq base layout) with the same weights."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    ours = utmos_net.wav2vec2
    hf = Wav2Vec2Model(Wav2Vec2Config()).eval()
    with torch.no_grad():
        for i, block in enumerate(ours.feature_extractor.conv_layers):
            hf.feature_extractor.conv_layers[i].conv.weight.copy_(getattr(block, "0").weight)
        hf.feature_extractor.conv_layers[0].layer_norm.load_state_dict(
            getattr(ours.feature_extractor.conv_layers[0], "2").state_dict()
        )
        hf.feature_projection.layer_norm.load_state_dict(ours.layer_norm.state_dict())
        hf.feature_projection.projection.load_state_dict(ours.post_extract_proj.state_dict())
        pos = hf.encoder.pos_conv_embed.conv
        pos.parametrizations.weight.original0.copy_(ours.encoder.pos_conv[0].weight_g)
        pos.parametrizations.weight.original1.copy_(ours.encoder.pos_conv[0].weight_v)
        pos.bias.copy_(ours.encoder.pos_conv[0].bias)
        hf.encoder.layer_norm.load_state_dict(ours.encoder.layer_norm.state_dict())
        for theirs, mine in zip(hf.encoder.layers, ours.encoder.layers, strict=True):
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                getattr(theirs.attention, proj).load_state_dict(getattr(mine.self_attn, proj).state_dict())
            theirs.layer_norm.load_state_dict(mine.self_attn_layer_norm.state_dict())
            theirs.feed_forward.intermediate_dense.load_state_dict(mine.fc1.state_dict())
            theirs.feed_forward.output_dense.load_state_dict(mine.fc2.state_dict())
            theirs.final_layer_norm.load_state_dict(mine.final_layer_norm.state_dict())
        g = torch.Generator().manual_seed(7)
        for n in (16321, 401):  # an even and an odd (fairseq pads it to even) number of frames
            x = 0.1 * torch.randn(1, n, generator=g)
            expected = hf(x).last_hidden_state
            got = ours(x)
            assert got.shape == expected.shape
            assert torch.allclose(got, expected, atol=2e-5), (got - expected).abs().max()


def test_resampler_equals_torchaudio_recorded_values():
    from urgentbench.metrics.utmos import resample_sinc_hann

    x = (torch.sin(torch.arange(4410, dtype=torch.float32) * 0.05) * 0.5)[None]
    y = resample_sinc_hann(x, 44100, 16000)[0]
    # recorded: torchaudio.functional.resample(x, 44100, 16000) (torchaudio 2.11.0)
    assert y.shape == (1600,)
    expected = [0.0064825, 0.0678147, 0.1365982, 0.4688096, -0.14506, 0.2381666]
    assert y[[0, 1, 2, 100, 800, 1599]].tolist() == pytest.approx(expected, abs=2e-7)
    assert float(y.sum()) == pytest.approx(0.4906843304634094, abs=1e-5)
    assert float((y**2).sum()) == pytest.approx(199.6751708984375, rel=1e-6)
    assert resample_sinc_hann(x, 16000, 16000) is x
    for rate, n in ((8000, 12345), (22050, 12345), (48000, 12345)):  # ceil(16000 * n / rate) samples
        assert resample_sinc_hann(torch.zeros(1, n), rate, 16000).shape[-1] == math.ceil(16000 * n / rate)
    with pytest.raises(ValueError, match="positive"):
        resample_sinc_hann(x, 0, 16000)


@pytest.mark.slow
def test_utmos_metric_through_the_asset(cache, utmos_net, speech16):
    from urgentbench.metrics.utmos import UTMOS, resample_sinc_hann

    src = cache / "utmos22_strong_step7459_v1.pt"
    torch.save(utmos_net.state_dict(), src)
    asset = get_asset("utmos22-strong")
    assert asset.problem() is not None
    asset.add(src)  # digest recorded on first use
    assert get_metric_class("utmos") is UTMOS
    assert UTMOS.availability().ok
    metric = UTMOS()
    metric.setup()
    assert metric.provenance()["model"]["files"]["utmos22_strong_step7459_v1.pt"]["pinned"] == "first use"

    # finite, deterministic, resampled to 16 kHz exactly as SpeechMOS's torchaudio call does
    x44 = load_speech("a", 44100)[: 44100 // 2]
    first = metric.compute(x44, None, 44100)["utmos"]
    assert math.isfinite(first) and metric.compute(x44, None, 44100)["utmos"] == first
    with torch.inference_mode():
        direct = float(utmos_net(resample_sinc_hann(torch.from_numpy(x44)[None], 44100, 16000))[0])
    assert first == pytest.approx(direct, abs=1e-6)
    clean = speech16[:8000]
    assert metric.compute(white_noise_mix(clean, 0.0), None, 16000)["utmos"] != pytest.approx(
        metric.compute(clean, None, 16000)["utmos"], abs=1e-4
    )
    # Output scaling: a zero last layer with bias b scores every frame b, so UTMOS = 2 b + 3.
    with torch.no_grad():
        metric._model.projection[2].weight.zero_()
        metric._model.projection[2].bias.fill_(0.4)
    assert metric.compute(clean, None, 16000)["utmos"] == pytest.approx(3.8, abs=1e-6)

    with pytest.raises(MetricError, match="at least 400 samples"):
        metric.compute(np.zeros(1000, np.float32), None, 44100)  # 363 samples at 16 kHz
    with pytest.raises(MetricError, match="NaN or Inf"):
        metric.compute(np.full(16000, np.nan, np.float32), None, 16000)
    with pytest.raises(MetricError, match="mono"):
        metric.compute(np.zeros((2, 16000), np.float32), None, 16000)


def test_utmos_unavailable_without_its_asset(cache):
    from urgentbench.metrics.utmos import UTMOS

    avail = UTMOS.availability()
    assert not avail.ok
    summary = avail.summary()
    assert "urgentbench assets fetch utmos22-strong" in summary
    assert "urgentbench assets add utmos22-strong --from FILE" in summary
    with pytest.raises(AssetError, match="assets fetch utmos22-strong"):
        UTMOS().setup()
    asset = get_asset("utmos22-strong")
    assert asset.urls["utmos22_strong_step7459_v1.pt"] == (
        "https://github.com/tarepan/SpeechMOS/releases/download/v1.0.0/utmos22_strong_step7459_v1.pt"
    )
    assert asset.unpinned  # no published digest: recorded on first use, never invented


# --------------------------------------------------------------------------- RawNet3


def test_rawnet3_network_has_espnet_key_names(rawnet3_state):
    from urgentbench.metrics._rawnet3_net import RawNet3

    model = RawNet3()
    assert set(model.state_dict()) == _espnet_rawnet3_keys()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["frontend.conv.filterbank.low_hz_"] == (128, 1)
    assert shapes["frontend.conv.filterbank.n_"] == (1, 125)
    assert shapes["encoder.layer4.weight"] == (1536, 3072, 1)
    assert shapes["pooling.attention.0.weight"] == (128, 4608, 1)
    assert shapes["projector.fc.weight"] == (192, 3072)


def test_rawnet3_equals_espnet_recorded_embedding(tmp_path, rawnet3_state):
    from urgentbench.metrics.rawnet3 import load_rawnet3

    path = tmp_path / "40epoch.pth"
    torch.save(rawnet3_state, path)
    (tmp_path / "config.yaml").write_text(_RAWNET3_CONFIG)
    model = load_rawnet3(path, tmp_path / "config.yaml")  # strict load; loss.* set aside
    t = torch.arange(16000)
    x = (0.1 * torch.sin(t * 0.031) + 0.05 * torch.sin(t * 0.17))[None].float()
    with torch.inference_mode():
        e = model(x)[0]
    # recorded: ESPnet 202402 AsteroidFrontend -> RawNet3Encoder -> ChnAttnStatPooling -> RawNet3Projector.
    # The seeded random network amplifies float32 rounding: the same code and torch build give
    # elements up to 2.6e-4 apart on another CPU (and float64 moves them by ~3e-3), so the
    # tolerance is 1e-3 on elements of an embedding of norm 12.9; a wrong layer is off by O(1).
    assert e.shape == (192,)
    assert e[:6].tolist() == pytest.approx(
        [0.425998, -0.708823, 0.256151, 0.141337, 0.196229, -0.192985], abs=1e-3
    )
    assert float(e.norm()) == pytest.approx(12.887109756469727, rel=1e-4)
    assert float(e.sum()) == pytest.approx(-20.726943969726562, abs=2e-2)

    broken = dict(rawnet3_state)
    del broken["encoder.layer4.bias"]
    torch.save(broken, path)
    with pytest.raises(RuntimeError, match="40epoch.pth is not an ESPnet RawNet3 voxcelebs12"):
        load_rawnet3(path)


def test_rawnet3_config_check(tmp_path):
    from urgentbench.metrics.rawnet3 import check_config

    good = tmp_path / "good.yaml"
    good.write_text(_RAWNET3_CONFIG)
    check_config(good)
    bad = tmp_path / "bad.yaml"
    bad.write_text(_RAWNET3_CONFIG.replace("ndim: 1024", "ndim: 512"))
    with pytest.raises(RuntimeError, match=r"encoder_conf.ndim is 512, expected 1024"):
        check_config(bad)
    other = tmp_path / "other.yaml"
    other.write_text(_RAWNET3_CONFIG.replace("encoder: rawnet3", "encoder: ecapa_tdnn"))
    with pytest.raises(RuntimeError, match="encoder is 'ecapa_tdnn'"):
        check_config(other)


@pytest.mark.slow
def test_spk_sim_rawnet3_through_the_asset(cache, rawnet3_state):
    from urgentbench.metrics.speaker import SpeakerSimilarity

    assert SpeakerSimilarity.default_options()["model"] == "resemblyzer"
    assert SpeakerSimilarity.assets_for(SpeakerSimilarity.default_options()) == ()
    _install_rawnet3(cache, rawnet3_state)
    options = {**SpeakerSimilarity.default_options(), "model": "rawnet3"}
    assert SpeakerSimilarity.availability(options).ok
    digest = SpeakerSimilarity.model_hashes(options)["rawnet3-voxcelebs12"]
    assert digest == get_asset("rawnet3-voxcelebs12").effective_sha256()

    metric = SpeakerSimilarity(model="rawnet3")
    metric.setup()
    a = load_speech("a", 16000)[:16000]
    b = load_speech("b", 16000)[:16000]
    noisy = white_noise_mix(a, 5.0)
    assert metric.compute(a, a, 16000)["spk_sim"] == pytest.approx(1.0, abs=1e-6)
    s_noisy = metric.compute(noisy, a, 16000)["spk_sim"]
    s_other = metric.compute(b, a, 16000)["spk_sim"]
    assert -1.0 <= s_noisy < 1.0 - 1e-4 and -1.0 <= s_other < 1.0 - 1e-4
    assert metric.compute(noisy, a, 16000)["spk_sim"] == s_noisy  # deterministic
    assert metric.compute(a, noisy, 16000)["spk_sim"] == pytest.approx(s_noisy, abs=1e-12)  # symmetric
    # the batch entry point gives the same numbers, one utterance at a time
    from urgentbench.metrics.base import BatchItem

    batch = metric.compute_batch([BatchItem(noisy, a, 16000), BatchItem(a[:500], a, 16000)])
    assert batch[0]["spk_sim"] == s_noisy
    assert isinstance(batch[1], MetricError) and "715 samples" in str(batch[1])
    assert metric.provenance()["model"]["name"] == "rawnet3-voxcelebs12"
    with pytest.raises(MetricError, match="NaN or Inf"):
        metric.compute(np.full(16000, np.inf, np.float32), a, 16000)
    with pytest.raises(MetricError, match="16000 Hz"):
        metric.compute(a, a, 8000)


def test_spk_sim_rawnet3_unavailable_without_its_asset(cache):
    from urgentbench.metrics.speaker import SpeakerSimilarity

    avail = SpeakerSimilarity.availability({"model": "rawnet3"})
    assert not avail.ok
    assert "urgentbench assets fetch rawnet3-voxcelebs12" in avail.summary()
    assert "urgentbench assets add rawnet3-voxcelebs12 --from DIR" in avail.summary()
    with pytest.raises(AssetError, match="rawnet3-voxcelebs12"):
        SpeakerSimilarity(model="rawnet3").setup()
    with pytest.raises(ValueError, match="'resemblyzer' or 'rawnet3'"):
        SpeakerSimilarity(model="ecapa")
    urls = get_asset("rawnet3-voxcelebs12").urls
    assert urls["40epoch.pth"].startswith(
        "https://huggingface.co/espnet/voxcelebs12_rawnet3/resolve/ec530091d804940ef4e2c30a8888878f02a91835/"
    )


def test_rawnet3_refuses_too_short_and_embeds_silence(rawnet3_state):
    from urgentbench.metrics._rawnet3_net import RawNet3, encoder_frames, min_samples
    from urgentbench.metrics.rawnet3 import RawNet3Embedder

    assert min_samples() == 715 and encoder_frames(715) == 2 and encoder_frames(714) == 1
    model = RawNet3().eval()
    model.load_state_dict({k: v for k, v in rawnet3_state.items() if not k.startswith("loss.")})
    embedder = RawNet3Embedder(model=model)
    with pytest.raises(MetricError, match="715 samples"):
        embedder.embed(np.ones(714, np.float32) * 0.1, "enhanced")
    assert embedder.embed(np.ones(715, np.float32) * 0.1).shape == (192,)
    silent = embedder.embed(np.zeros(16000, np.float32))
    assert np.all(np.isfinite(silent))  # ESPnet embeds digital silence too
