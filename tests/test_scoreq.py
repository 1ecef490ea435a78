"""SCOREQ (natural-speech, no-reference) with randomly initialised networks of the published architecture.

The checkpoints are saved in scoreq's layout (the state dict of its ``MosPredictor``) and
go through the real asset and loader paths. The reference computation below is written
independently of urgentbench's network: transformers' ``Wav2Vec2Model`` (the fairseq base
layout) for the encoder, the NR head by hand in float64.
"""

from __future__ import annotations

import json
import math
import sqlite3
import zlib

import numpy as np
import pytest
import torch
from conftest import demo_pair, load_speech, white_noise_mix

from urgentbench.assets import AssetError, get_asset
from urgentbench.metrics import MetricError, get_metric_class

#: Sizes of the small test network: same architecture, 12 heads of width 4.
SMALL = {"channels": 32, "dim": 48, "ffn": 96, "layers": 2}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty asset cache."""
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _scoreq_keys(layers: int = 12) -> set[str]:
    """State-dict keys of scoreq's MosPredictor(TripletModel(fairseq wav2vec 2.0 base)), from its module tree."""
    ssl = "pt_model.ssl_model"
    keys = {f"{ssl}.mask_emb", "mos_layer.weight", "mos_layer.bias"}
    keys |= {"pt_model.embedding_layer.1.weight", "pt_model.embedding_layer.1.bias"}
    fe = f"{ssl}.feature_extractor.conv_layers"
    keys |= {f"{fe}.{i}.0.weight" for i in range(7)} | {f"{fe}.0.2.weight", f"{fe}.0.2.bias"}
    for name in ("layer_norm", "post_extract_proj", "encoder.layer_norm"):
        keys |= {f"{ssl}.{name}.weight", f"{ssl}.{name}.bias"}
    keys |= {f"{ssl}.encoder.pos_conv.0.{p}" for p in ("weight_g", "weight_v", "bias")}
    for layer in range(layers):
        base = f"{ssl}.encoder.layers.{layer}"
        for sub in ("q_proj", "k_proj", "v_proj", "out_proj"):
            keys |= {f"{base}.self_attn.{sub}.weight", f"{base}.self_attn.{sub}.bias"}
        for sub in ("self_attn_layer_norm", "fc1", "fc2", "final_layer_norm"):
            keys |= {f"{base}.{sub}.weight", f"{base}.{sub}.bias"}
    return keys


def _random_state(sizes: dict[str, int]) -> dict[str, torch.Tensor]:
    """Deterministic random weights of the given sizes under scoreq's names (norms and biases too)."""
    from urgentbench.metrics._scoreq_net import ScoreqNR

    out = {}
    for key, value in sorted(ScoreqNR(**sizes).state_dict().items()):
        g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        if key.endswith("weight_g"):
            t = 1.0 + 0.5 * torch.rand(value.shape, generator=g)
        elif value.ndim >= 2:
            t = torch.randn(value.shape, generator=g) / math.sqrt(value[0].numel())
        else:
            t = 0.1 * torch.randn(value.shape, generator=g) + (1.0 if key.endswith(".weight") else 0.0)
        out[key] = t
    return out


def _transformers_twin(state: dict[str, torch.Tensor], sizes: dict[str, int]):
    """A transformers Wav2Vec2Model of the same sizes holding the encoder weights of ``state``."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(
        conv_dim=(sizes["channels"],) * 7, hidden_size=sizes["dim"], intermediate_size=sizes["ffn"],
        num_hidden_layers=sizes["layers"], num_attention_heads=12,
    )
    hf = Wav2Vec2Model(config).eval()
    s = {k.removeprefix("pt_model.ssl_model."): v for k, v in state.items()}
    with torch.no_grad():
        for i, conv in enumerate(hf.feature_extractor.conv_layers):
            conv.conv.weight.copy_(s[f"feature_extractor.conv_layers.{i}.0.weight"])
        norm = hf.feature_extractor.conv_layers[0].layer_norm
        norm.weight.copy_(s["feature_extractor.conv_layers.0.2.weight"])
        norm.bias.copy_(s["feature_extractor.conv_layers.0.2.bias"])

        def linear(module, name):
            module.weight.copy_(s[f"{name}.weight"])
            module.bias.copy_(s[f"{name}.bias"])

        linear(hf.feature_projection.layer_norm, "layer_norm")
        linear(hf.feature_projection.projection, "post_extract_proj")
        pos = hf.encoder.pos_conv_embed.conv
        pos.parametrizations.weight.original0.copy_(s["encoder.pos_conv.0.weight_g"])
        pos.parametrizations.weight.original1.copy_(s["encoder.pos_conv.0.weight_v"])
        pos.bias.copy_(s["encoder.pos_conv.0.bias"])
        linear(hf.encoder.layer_norm, "encoder.layer_norm")
        for i, layer in enumerate(hf.encoder.layers):
            base = f"encoder.layers.{i}"
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                linear(getattr(layer.attention, proj), f"{base}.self_attn.{proj}")
            linear(layer.layer_norm, f"{base}.self_attn_layer_norm")
            linear(layer.feed_forward.intermediate_dense, f"{base}.fc1")
            linear(layer.feed_forward.output_dense, f"{base}.fc2")
            linear(layer.final_layer_norm, f"{base}.final_layer_norm")
    return hf


def _reference_score(hf, state, x16: np.ndarray) -> float:
    """The NR arithmetic of scoreq 1.0.1 by hand: zero-pad to a multiple of 320, frame mean, unit length, linear."""
    n = math.ceil(x16.size / 320) * 320
    wave = torch.from_numpy(np.pad(x16.astype(np.float32), (0, n - x16.size)))[None]
    with torch.no_grad():
        frames = hf(wave).last_hidden_state[0].double().numpy()
    mean = frames.mean(axis=0)
    unit = mean / max(np.linalg.norm(mean), 1e-12)
    w = state["mos_layer.weight"][0].double().numpy()
    return float(unit @ w + float(state["mos_layer.bias"][0]))


def _install(cache, state) -> None:
    src = cache / "adapt_nr_telephone.pt"
    torch.save(state, src)
    asset = get_asset("scoreq-natural-nr")
    assert asset.problem() is not None
    asset.add(src)  # sha256 recorded on first use


# --------------------------------------------------------------------------- network and loader


def test_network_has_scoreq_key_names_and_shapes(tmp_path):
    from urgentbench.metrics._scoreq_net import ScoreqNR, sizes_of
    from urgentbench.metrics.scoreq import load_scoreq_nr

    state = ScoreqNR().state_dict()  # the published sizes
    assert set(state) == _scoreq_keys()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert shapes["pt_model.ssl_model.feature_extractor.conv_layers.0.0.weight"] == (512, 1, 10)
    assert shapes["pt_model.ssl_model.encoder.pos_conv.0.weight_v"] == (768, 48, 128)
    assert shapes["pt_model.ssl_model.encoder.pos_conv.0.weight_g"] == (1, 1, 128)
    assert shapes["pt_model.ssl_model.encoder.layers.11.fc1.weight"] == (3072, 768)
    assert shapes["pt_model.embedding_layer.1.weight"] == (256, 768)
    assert shapes["mos_layer.weight"] == (1, 768)
    assert sizes_of(state) == {"channels": 512, "dim": 768, "ffn": 3072, "layers": 12, "emb_dim": 256}

    small = _random_state(SMALL)
    assert set(small) == _scoreq_keys(layers=2)
    path = tmp_path / "adapt_nr_telephone.pt"
    torch.save(small, path)
    model, sizes = load_scoreq_nr(path)
    assert sizes == {**SMALL, "emb_dim": 256}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in small.items())
    # another layout (a renamed key, a missing tensor, not a dict) is refused, naming the file
    broken = dict(small)
    broken["mos_layer.w"] = broken.pop("mos_layer.weight")
    torch.save(broken, path)
    with pytest.raises(RuntimeError, match="adapt_nr_telephone.pt is not a SCOREQ no-reference checkpoint"):
        load_scoreq_nr(path)
    broken = dict(small)
    del broken["pt_model.embedding_layer.1.bias"]
    torch.save(broken, path)
    with pytest.raises(RuntimeError, match="embedding_layer.1.bias"):
        load_scoreq_nr(path)
    torch.save([1, 2], path)
    with pytest.raises(RuntimeError, match="expected a state dict"):
        load_scoreq_nr(path)


def test_nr_score_equals_an_independent_computation(tmp_path):
    """Our network + padding vs transformers' wav2vec 2.0 and the NR head by hand, same random weights."""
    from urgentbench.metrics._scoreq_net import ScoreqNR
    from urgentbench.metrics.scoreq import SCOREQ

    state = _random_state(SMALL)
    model = ScoreqNR(**SMALL).eval()
    model.load_state_dict(state)
    hf = _transformers_twin(state, SMALL)
    metric = SCOREQ()
    metric._model = model  # the loader path is tested through the asset below
    x = load_speech("a", 16000)
    seen_frames = set()
    for n in (16000, 16321, 12345, 4000, 321):  # multiple of 320 or not, odd and even frame counts
        got = metric.compute(x[:n], None, 16000)["scoreq"]
        expected = _reference_score(hf, state, x[:n])
        assert got == pytest.approx(expected, abs=1e-5), n
        seen_frames.add((math.ceil(n / 320) * 320 - 400) // 320 + 1)
    assert {f % 2 for f in seen_frames} == {0, 1}
    # the padding matters: the unpadded waveform gives another score
    with torch.inference_mode():
        unpadded = float(model(torch.from_numpy(x[:12345])[None])[0])
    assert abs(unpadded - metric.compute(x[:12345], None, 16000)["scoreq"]) > 1e-4


def test_nr_head_arithmetic_by_hand():
    """The score is w . (m / ||m||) + b, m the frame mean of the last layer."""
    from urgentbench.metrics._scoreq_net import ScoreqNR
    from urgentbench.metrics.scoreq import SCOREQ

    torch.manual_seed(1)
    model = ScoreqNR(**SMALL).eval()
    metric = SCOREQ()
    metric._model = model
    x = load_speech("b", 16000)[:9600]  # 30 x 320 samples: no padding
    with torch.inference_mode():
        frames = model.pt_model.ssl_model(torch.from_numpy(x)[None])[0].double()
    m = frames.mean(dim=0)
    unit = m / m.norm()
    with torch.no_grad():
        model.mos_layer.weight.zero_()
        model.mos_layer.bias.fill_(3.25)
    assert metric.compute(x, None, 16000)["scoreq"] == 3.25  # a constant head gives its bias
    with torch.no_grad():
        model.mos_layer.weight.copy_(2.0 * unit.float()[None])  # w along the embedding: 2 * 1 + b
        model.mos_layer.bias.fill_(0.5)
    assert metric.compute(x, None, 16000)["scoreq"] == pytest.approx(2.5, abs=1e-5)
    with torch.no_grad():
        model.mos_layer.weight.zero_()
        model.mos_layer.weight[0, 7] = 1.0  # one coordinate of the unit embedding
        model.mos_layer.bias.zero_()
    assert metric.compute(x, None, 16000)["scoreq"] == pytest.approx(float(unit[7]), abs=1e-6)
    # the head is linear in w
    with torch.no_grad():
        model.mos_layer.weight.mul_(-3.0)
    assert metric.compute(x, None, 16000)["scoreq"] == pytest.approx(-3.0 * float(unit[7]), abs=1e-5)


# --------------------------------------------------------------------------- the metric through its asset


def test_scoreq_metric_through_the_asset(cache):
    from urgentbench.metrics.scoreq import SCOREQ
    from urgentbench.metrics.utmos import resample_sinc_hann

    state = _random_state(SMALL)
    _install(cache, state)
    assert get_metric_class("scoreq") is SCOREQ and get_metric_class("scoreq_nr") is SCOREQ
    assert SCOREQ.category == "non-intrusive" and SCOREQ.output("scoreq").higher_is_better
    assert not SCOREQ.needs_reference and SCOREQ.availability().ok
    assert SCOREQ.model_hashes(SCOREQ.default_options()) == {
        "scoreq-natural-nr": get_asset("scoreq-natural-nr").effective_sha256()
    }
    metric = SCOREQ()
    metric.setup()
    prov = metric.provenance()
    assert prov["model"]["files"]["adapt_nr_telephone.pt"]["pinned"] == "first use"
    assert prov["network"] == {**SMALL, "emb_dim": 256} and "320" in prov["padding"]

    # native rate in, resampled to 16 kHz with torchaudio's algorithm, padded, then scored
    hf = _transformers_twin(state, SMALL)
    x44 = load_speech("a", 44100)[: 44100 // 2]
    first = metric.compute(x44, None, 44100)["scoreq"]
    assert math.isfinite(first) and metric.compute(x44, None, 44100)["scoreq"] == first
    x16 = resample_sinc_hann(torch.from_numpy(x44)[None], 44100, 16000)[0].numpy()
    assert first == pytest.approx(_reference_score(hf, state, x16), abs=1e-5)
    clean = load_speech("a", 16000)[:16000]
    assert metric.compute(white_noise_mix(clean, 0.0), None, 16000)["scoreq"] != pytest.approx(
        metric.compute(clean, None, 16000)["scoreq"], abs=1e-4
    )

    # too short: fewer than 321 samples at 16 kHz is a missing value with its reason
    assert math.isfinite(metric.compute(clean[:321], None, 16000)["scoreq"])
    with pytest.raises(MetricError, match="at least 321 samples at 16 kHz"):
        metric.compute(clean[:320], None, 16000)
    with pytest.raises(MetricError, match="at least 321 samples"):
        metric.compute(np.zeros(882, np.float32), None, 44100)  # 320 samples at 16 kHz
    with pytest.raises(MetricError, match="NaN or Inf"):
        metric.compute(np.full(16000, np.nan, np.float32), None, 16000)
    with pytest.raises(MetricError, match="mono"):
        metric.compute(np.zeros((2, 16000), np.float32), None, 16000)


def test_scoreq_unavailable_without_its_asset(cache):
    from urgentbench.metrics.scoreq import SCOREQ

    avail = SCOREQ.availability()
    assert not avail.ok
    assert "urgentbench assets fetch scoreq-natural-nr" in avail.summary()
    assert "urgentbench assets add scoreq-natural-nr --from FILE" in avail.summary()
    with pytest.raises(AssetError, match="assets fetch scoreq-natural-nr"):
        SCOREQ().setup()
    asset = get_asset("scoreq-natural-nr")
    assert asset.urls["adapt_nr_telephone.pt"] == "https://zenodo.org/records/13860326/files/adapt_nr_telephone.pt"
    assert asset.unpinned  # Zenodo gives md5 only: sha256 recorded on first use, never invented


def test_run_scores_two_demo_utterances_end_to_end(cache, monkeypatch):
    """The CLI: urgentbench run --system noisy --suite demo --metrics scoreq --limit 2 --jobs 1 on the random checkpoint."""
    from urgentbench.cli import main
    from urgentbench.metrics.scoreq import SCOREQ
    from urgentbench.suites import get_suite

    state = _random_state(SMALL)
    _install(cache, state)
    monkeypatch.chdir(cache)
    args = ["-q", "run", "--system", "noisy", "--suite", "demo", "--metrics", "scoreq", "--limit", "2", "--jobs", "1"]
    assert main(args) == 0
    with sqlite3.connect(cache / "results" / "results.sqlite") as db:
        rows = db.execute("SELECT utt_id, result_json, error FROM scores WHERE metric='scoreq' ORDER BY utt_id")
        rows = rows.fetchall()
    assert len(rows) == 2 and all(error is None for _, _, error in rows)
    metric = SCOREQ()
    metric.setup()
    utts = get_suite("demo").utterances()[:2]
    for (utt_id, result, _), utt, index in zip(rows, utts, (0, 1), strict=True):
        assert utt_id == utt.id
        _, noisy = demo_pair(index, utt.sample_rate)  # the noisy system returns its input
        assert json.loads(result)["scoreq"] == pytest.approx(metric.compute(noisy, None, utt.sample_rate)["scoreq"],
                                                             abs=1e-6)
