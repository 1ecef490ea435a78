"""EmoSim (URGENT 2026): emotion2vec_base utterance embeddings, cosine similarity, with random-initialised models.

The encoder is urgentbench's own (:mod:`urgentbench.metrics._emotion2vec_net`). Values marked
"recorded" were computed once with FunASR 1.4.16's copy of the emotion2vec model code
(``funasr.models.emotion2vec.model.Emotion2vec(...).extract_features(x)["x"]``, imported from
the wheel with stubs for FunASR's registry) on the same seeded weights and input; urgentbench
matched it exactly (difference 0.0) at the tiny size below and at the real emotion2vec_base size.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import demo_pair

import urgentbench
from urgentbench.assets import AssetError, AssetFile, get_asset, register_asset
from urgentbench.metrics import MetricError, get_metric_class
from urgentbench.pipeline.options import RunOptions
from urgentbench.suites import get_suite

# --------------------------------------------------------------------------- configurations


def _model_cfg(tiny: bool) -> dict:
    """A fairseq ``cfg.model`` as emotion2vec's checkpoints hold it (FunASR's template values); tiny or real size."""
    width = 16 if tiny else 512
    audio = {
        "_name": None, "type": "AUDIO", "prenet_depth": 1 if tiny else 4, "prenet_layerdrop": 0.05,
        "prenet_dropout": 0.1, "start_drop_path_rate": 0.0, "end_drop_path_rate": 0.0,
        "num_extra_tokens": 3 if tiny else 10, "init_extra_token_zero": True, "mask_noise_std": 0.01,
        "mask_prob_min": None, "mask_prob": 0.5, "inverse_mask": False, "mask_prob_adjust": 0.05,
        "keep_masked_pct": 0.0, "mask_length": 5, "add_masks": False, "remove_masks": False, "mask_dropout": 0.0,
        "encoder_zero_mask": True, "mask_channel_prob": 0.0, "mask_channel_length": 64, "ema_local_encoder": False,
        "local_grad_mult": 1.0, "use_alibi_encoder": True, "alibi_scale": 1.0, "learned_alibi": False,
        "alibi_max_pos": None, "learned_alibi_scale": True, "learned_alibi_scale_per_head": True,
        "learned_alibi_scale_per_layer": False, "num_alibi_heads": 6 if tiny else 12, "model_depth": 2 if tiny else 8,
        "decoder": {
            "decoder_dim": 16 if tiny else 384, "decoder_groups": 4 if tiny else 16, "decoder_kernel": 7,
            "decoder_layers": 2 if tiny else 4, "input_dropout": 0.1, "add_positions_masked": False,
            "add_positions_all": False, "decoder_residual": True, "projection_layers": 1, "projection_ratio": 2.0,
        },
        "extractor_mode": "layer_norm",
        "feature_encoder_spec": f"[({width}, 10, 5)] + [({width}, 3, 2)] * 4 + [({width},2,2)] + [({width},2,2)]",
        "conv_pos_width": 95, "conv_pos_groups": 4 if tiny else 16, "conv_pos_depth": 5, "conv_pos_pre_ln": False,
    }
    return {
        "_name": "data2vec_multi", "loss_beta": 0.0, "loss_scale": None, "depth": 2 if tiny else 8,
        "start_drop_path_rate": 0.0, "end_drop_path_rate": 0.0, "num_heads": 6 if tiny else 12, "norm_eps": 1e-05,
        "norm_affine": True, "encoder_dropout": 0.1, "post_mlp_drop": 0.1, "attention_dropout": 0.1,
        "activation_dropout": 0.0, "dropout_input": 0.0, "layerdrop": 0.05, "embed_dim": 48 if tiny else 768,
        "mlp_ratio": 4.0, "layer_norm_first": False, "average_top_k_layers": 8, "end_of_block_targets": False,
        "clone_batch": 8, "skip_ema": False, "cls_loss": 1.0, "recon_loss": 0.0, "d2v_loss": 1.0, "cls_type": "chunk",
        "modalities": {"_name": None, "audio": audio},
    }


def _fairseq_cfg(tiny: bool = True, normalize: bool = True) -> dict:
    return {"model": _model_cfg(tiny), "task": {"_name": "audio_pretraining", "normalize": normalize}}


def _fairseq_keys(cfg: dict) -> set[str]:
    """State-dict keys of the fork's ``Data2VecMultiModel`` without its decoder, written out from its module tree."""
    m, a = cfg["model"], cfg["model"]["modalities"]["audio"]
    enc = "modality_encoders.AUDIO"
    keys = {f"{enc}.extra_tokens", f"{enc}.alibi_scale"}
    keys |= {f"{enc}.local_encoder.conv_layers.{i}.0.weight" for i in range(7)}
    keys |= {f"{enc}.local_encoder.conv_layers.{i}.2.1.{p}" for i in range(7) for p in ("weight", "bias")}
    keys |= {f"{enc}.project_features.{i}.{p}" for i in (1, 2) for p in ("weight", "bias")}
    keys |= {f"{enc}.relative_positional_encoder.{i}.0.{p}" for i in range(1, 6) for p in ("weight", "bias")}
    keys |= {f"{enc}.context_encoder.norm.{p}" for p in ("weight", "bias")}

    def block(prefix: str) -> set[str]:
        names = ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
        return {f"{prefix}.{n}.{p}" for n in names for p in ("weight", "bias")}

    for i in range(a["prenet_depth"]):
        keys |= block(f"{enc}.context_encoder.blocks.{i}")
    for i in range(m["depth"]):
        keys |= block(f"blocks.{i}")
    return keys


def _decoder_state(cfg: dict) -> dict[str, torch.Tensor]:
    """The pre-training decoder's weights (``Decoder1d``) a published checkpoint also holds."""
    m, d = cfg["model"], cfg["model"]["modalities"]["audio"]["decoder"]
    out = {}
    for i in range(d["decoder_layers"]):
        width_in = m["embed_dim"] if i == 0 else d["decoder_dim"]
        shape = (d["decoder_dim"], width_in // d["decoder_groups"], d["decoder_kernel"])
        out[f"modality_encoders.AUDIO.decoder.blocks.{i}.0.weight"] = torch.randn(shape)
        out[f"modality_encoders.AUDIO.decoder.blocks.{i}.0.bias"] = torch.randn(d["decoder_dim"])
    out["modality_encoders.AUDIO.decoder.proj.weight"] = torch.randn(m["embed_dim"], d["decoder_dim"])
    out["modality_encoders.AUDIO.decoder.proj.bias"] = torch.randn(m["embed_dim"])
    return out


def _seeded(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Deterministic weights keyed by name (the recipe used for the recorded FunASR values)."""
    out = {}
    for key, value in sorted(state.items()):
        g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        if key.endswith("alibi_scale"):
            t = 0.5 + torch.rand(value.shape, generator=g)
        elif value.ndim >= 2:
            t = torch.randn(value.shape, generator=g) / math.sqrt(value[0].numel())
        else:
            t = 0.1 * torch.randn(value.shape, generator=g) + (1.0 if key.endswith(".weight") else 0.0)
        out[key] = t.to(value.dtype)
    return out


def _probe(n: int) -> torch.Tensor:
    t = torch.arange(n)
    return (0.1 * torch.sin(t * 0.031) + 0.05 * torch.sin(t * 0.17)).float()


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, torch.Tensor]:
    from urgentbench.metrics._emotion2vec_net import Emotion2vec, Emotion2vecConfig

    return _seeded(Emotion2vec(Emotion2vecConfig.from_fairseq(_fairseq_cfg())).state_dict())


def _published(state: dict[str, torch.Tensor], cfg: dict | None = None) -> dict:
    """A checkpoint in fairseq's layout: cfg, the model with its decoder, optimizer history, extra state."""
    cfg = cfg or _fairseq_cfg()
    return {
        "args": None,
        "cfg": cfg,
        "model": {**state, **_decoder_state(cfg)},
        "criterion": None,
        "optimizer_history": [{"criterion_name": "ModelCriterion", "optimizer_name": "FairseqAdam", "num_updates": 1}],
        "task_state": {},
        "extra_state": {"epoch": 1, "previous_training_time": torch.tensor(12.5, dtype=torch.float64)},
    }


# --------------------------------------------------------------------------- the network


def test_feature_spec_is_parsed_without_eval():
    from urgentbench.metrics._emotion2vec_net import DEFAULT_FEATURE_SPEC, parse_feature_spec

    layers = parse_feature_spec(DEFAULT_FEATURE_SPEC)
    assert layers == ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2
    for bad in ("__import__('os').system('true')", "[(512, 10)]", "[]", "[(512, 10, 5)] * 2.0", "[(1, 2, -3)]"):
        with pytest.raises(ValueError, match="feature_encoder_spec"):
            parse_feature_spec(bad)


def test_config_from_the_checkpoint_cfg():
    from urgentbench.metrics._emotion2vec_net import Emotion2vecConfig

    cfg = Emotion2vecConfig.from_fairseq(_fairseq_cfg(tiny=False))
    assert (cfg.embed_dim, cfg.num_heads, cfg.depth, cfg.prenet_depth, cfg.num_extra_tokens) == (768, 12, 8, 4, 10)
    assert cfg.norm_eps == 1e-5 and cfg.use_alibi_encoder and cfg.learned_alibi_scale_per_head and cfg.normalize
    assert cfg.min_samples() == 400  # the receptive field: 400 samples give one frame, 399 none
    assert (cfg.frames(400), cfg.frames(399), cfg.frames(16000)) == (1, 0, 49)
    assert not Emotion2vecConfig.from_fairseq(_fairseq_cfg(normalize=False)).normalize
    for section, key, value, message in (
        ("model", "layer_norm_first", True, "layer_norm_first"),
        ("audio", "learned_alibi", True, "learned_alibi"),
        ("audio", "extractor_mode", "default", "extractor_mode"),
    ):
        bad = _fairseq_cfg()
        (bad["model"] if section == "model" else bad["model"]["modalities"]["audio"])[key] = value
        with pytest.raises(ValueError, match=message):
            Emotion2vecConfig.from_fairseq(bad)
    with pytest.raises(ValueError, match="no 'model' section"):
        Emotion2vecConfig.from_fairseq({"task": {}})


def test_real_size_state_dict_has_the_fairseq_layout():
    from urgentbench.metrics._emotion2vec_net import Emotion2vec, Emotion2vecConfig

    cfg = _fairseq_cfg(tiny=False)
    with torch.device("meta"):
        model = Emotion2vec(Emotion2vecConfig.from_fairseq(cfg))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert set(shapes) == _fairseq_keys(cfg)
    enc = "modality_encoders.AUDIO"
    assert shapes[f"{enc}.extra_tokens"] == (1, 10, 768)
    assert shapes[f"{enc}.alibi_scale"] == (1, 1, 12, 1, 1)
    assert shapes[f"{enc}.local_encoder.conv_layers.0.0.weight"] == (512, 1, 10)
    assert shapes[f"{enc}.relative_positional_encoder.1.0.weight"] == (768, 48, 19)
    assert shapes["blocks.7.attn.qkv.weight"] == (2304, 768)
    assert shapes["blocks.7.mlp.fc1.weight"] == (3072, 768)
    assert sum(math.prod(s) for s in shapes.values()) == 93_171_212  # the fork's model without its decoder


def test_alibi_slopes_and_bias_by_hand():
    from urgentbench.metrics._emotion2vec_net import alibi_bias, alibi_slopes

    assert alibi_slopes(8) == pytest.approx([2.0**-k for k in range(1, 9)], rel=1e-15)
    # 12 heads: the 8-head slopes, then every other slope of 16 heads (2^-0.5, 2^-1.5, ...)
    expected = [2.0**-k for k in range(1, 9)] + [2.0 ** -(k + 0.5) for k in range(4)]
    assert alibi_slopes(12) == pytest.approx(expected, rel=1e-15)
    bias = alibi_bias(4, 12)
    assert bias.shape == (1, 12, 4, 4) and bias.dtype == torch.float32
    assert bias[0, 0].tolist() == [[0, -0.5, -1, -1.5], [-0.5, 0, -0.5, -1], [-1, -0.5, 0, -0.5], [-1.5, -1, -0.5, 0]]
    assert float(bias[0, 11, 0, 3]) == pytest.approx(-3 * 2**-3.5, rel=1e-6)


def test_tiny_encoder_equals_funasr_recorded_embedding(tiny_state):
    from urgentbench.metrics._emotion2vec_net import Emotion2vec, Emotion2vecConfig

    model = Emotion2vec(Emotion2vecConfig.from_fairseq(_fairseq_cfg())).eval()
    model.load_state_dict(tiny_state, strict=True)
    x = _probe(16000)
    with torch.inference_mode():
        frames = model(F.layer_norm(x, x.shape).view(1, -1))
    assert frames.shape == (1, 49, 48)  # extra tokens removed
    e = np.mean(frames[0].numpy(), axis=0)
    # recorded: FunASR 1.4.16 Emotion2vec.extract_features(layer_norm(x))["x"], mean over frames
    assert e[:6].tolist() == pytest.approx(
        [1.1159348487854004, 0.8747915029525757, 0.7998540997505188, 0.9578523635864258,
         -0.7248532176017761, -0.6380786299705505], abs=1e-5
    )
    assert float(np.linalg.norm(e)) == pytest.approx(6.628021240234375, rel=1e-6)


def test_encoder_equals_funasr_code_when_importable(tiny_state):
    """Direct comparison with FunASR's model code, where FunASR is installed (it is not a dependency)."""
    theirs_module = pytest.importorskip("funasr.models.emotion2vec.model")
    from urgentbench.metrics._emotion2vec_net import Emotion2vec, Emotion2vecConfig

    cfg = _fairseq_cfg()
    theirs = theirs_module.Emotion2vec(model_conf={**cfg["model"], "normalize": True}).eval()
    theirs.load_state_dict({**tiny_state, **_decoder_state(cfg)}, strict=True)
    mine = Emotion2vec(Emotion2vecConfig.from_fairseq(cfg)).eval()
    mine.load_state_dict(tiny_state, strict=True)
    for n in (400, 12345):
        x = F.layer_norm(_probe(n), (n,)).view(1, -1)
        with torch.no_grad():
            expected = theirs.extract_features(x, padding_mask=None)["x"]
            assert torch.allclose(mine(x), expected, atol=1e-5)


# --------------------------------------------------------------------------- loading


def test_published_layout_loads_weights_only(tmp_path, tiny_state):
    from urgentbench.metrics.emotion import load_emotion2vec, utterance_embedding

    path = tmp_path / "emotion2vec_base.pt"
    torch.save(_published(tiny_state), path)
    model = load_emotion2vec(path)  # decoder set aside, everything else strict
    assert model.cfg.normalize and not model.training
    x = _probe(16000).numpy()
    e = utterance_embedding(model, x)
    assert e.dtype == np.float32 and e.shape == (48,)
    assert e[:2].tolist() == pytest.approx([1.1159348487854004, 0.8747915029525757], abs=1e-5)
    # the waveform normalisation is F.layer_norm over all samples: (x - mean) / sqrt(var + 1e-5)
    by_hand = ((x - x.mean()) / np.sqrt(x.var() + 1e-5)).astype(np.float32)
    model.cfg = dataclasses.replace(model.cfg, normalize=False)
    np.testing.assert_allclose(utterance_embedding(model, by_hand), e, atol=2e-5)
    assert np.abs(utterance_embedding(model, x) - e).max() > 1e-2  # the normalisation matters

    broken = _published(tiny_state)
    del broken["model"]["blocks.1.mlp.fc2.bias"]
    torch.save(broken, path)
    with pytest.raises(RuntimeError, match="emotion2vec_base.pt is not an emotion2vec checkpoint.*fc2.bias"):
        load_emotion2vec(path)
    other = _published(tiny_state)
    other["cfg"]["model"]["layer_norm_first"] = True
    torch.save(other, path)
    with pytest.raises(RuntimeError, match="layer_norm_first"):
        load_emotion2vec(path)
    torch.save(tiny_state, path)  # a bare state dict: no fairseq 'model' entry
    with pytest.raises(RuntimeError, match="not a fairseq checkpoint"):
        load_emotion2vec(path)
    torch.save({**_published(tiny_state), "args": argparse.Namespace(arch="x")}, path)
    with pytest.raises(RuntimeError, match="not a weights-only readable checkpoint"):
        load_emotion2vec(path)  # never unpickled fully


# --------------------------------------------------------------------------- the metric


@pytest.fixture
def installed(tmp_path, monkeypatch, tiny_state):
    """The tiny checkpoint installed as ``emotion2vec-base`` (its pin swapped for the file's sha256)."""
    import urgentbench.assets as assets_mod

    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "src" / "emotion2vec_base.pt"
    src.parent.mkdir()
    torch.save(_published(tiny_state), src)
    asset = get_asset("emotion2vec-base")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    patched = dataclasses.replace(asset, files=(AssetFile("emotion2vec_base.pt", digest, src.stat().st_size),))
    monkeypatch.setattr(assets_mod, "_VERIFIED", {})
    register_asset(patched, aliases=("emotion2vec_base",), override=True)
    try:
        patched.add(src)
        yield patched
    finally:
        register_asset(asset, aliases=("emotion2vec_base",), override=True)


def test_metric_on_demo_utterances(installed):
    from urgentbench.metrics.base import BatchItem
    from urgentbench.metrics.emotion import EmotionSimilarity, cosine
    from urgentbench.reference_cache import ReferenceStateCache

    assert get_metric_class("emo_sim") is EmotionSimilarity is get_metric_class("emosim")
    assert EmotionSimilarity.category == "downstream" and EmotionSimilarity.output("emo_sim").higher_is_better
    assert EmotionSimilarity.availability().ok
    assert EmotionSimilarity.model_hashes({})["emotion2vec-base"] == installed.sha256
    metric = EmotionSimilarity()
    metric.setup()
    prov = metric.provenance()
    assert prov["model"]["name"] == "emotion2vec-base" and prov["embedding"]["waveform_layer_norm"] is True

    for index in (0, 1):
        ref, noisy = demo_pair(index, 16000)
        same = metric.compute(ref, ref, 16000)["emo_sim"]
        assert same == pytest.approx(1.0, abs=1e-6)
        value = metric.compute(noisy, ref, 16000)["emo_sim"]
        assert -1.0 <= value < 1.0 - 1e-4
        assert metric.compute(ref, noisy, 16000)["emo_sim"] == pytest.approx(value, abs=1e-12)  # symmetric
        # the cosine by hand, from the two embeddings
        e_ref, e_est = metric.embed(ref).astype(np.float64), metric.embed(noisy).astype(np.float64)
        by_hand = sum(a * b for a, b in zip(e_ref, e_est)) / math.sqrt(sum(a * a for a in e_ref) * sum(b * b for b in e_est))
        assert value == pytest.approx(by_hand, abs=1e-12)
    assert cosine(np.array([1.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(math.sqrt(0.5), abs=1e-15)
    with pytest.raises(MetricError, match="all zeros"):
        cosine(np.zeros(3), np.ones(3))

    # the cached reference state gives the same number as the direct path
    ref, noisy = demo_pair(0, 16000)
    cache = ReferenceStateCache(installed.directory().parent / "refstate", "demo@test")
    state = cache.get(metric, "emo_sim-v1-x", "utt0", ref, 16000)
    again = cache.get(metric, "emo_sim-v1-x", "utt0", ref, 16000)
    assert (cache.misses, cache.hits) == (1, 1) and np.array_equal(state["embedding"], again["embedding"])
    assert again["embedding"].dtype == np.float32
    direct = metric.compute(noisy, ref, 16000)["emo_sim"]
    assert metric.compute_with_state(noisy, ref, again, 16000)["emo_sim"] == direct

    # missing values with a reason
    short = metric.compute_batch([BatchItem(noisy[:399], ref, 16000), BatchItem(noisy[:400], ref, 16000)])
    assert isinstance(short[0], MetricError) and "at least 400 samples" in str(short[0])
    assert math.isfinite(short[1]["emo_sim"])
    with pytest.raises(MetricError, match="reference audio is silent"):
        metric.compute(noisy, np.zeros_like(ref), 16000)
    with pytest.raises(MetricError, match="reference audio is 24.9 ms long"):
        metric.compute(noisy, ref[:399], 16000)
    with pytest.raises(MetricError, match="NaN or Inf"):
        metric.compute(np.full_like(ref, np.nan), ref, 16000)
    with pytest.raises(MetricError, match="16000 Hz"):
        metric.compute(noisy, ref, 8000)
    with pytest.raises(MetricError, match="needs the clean reference"):
        metric.compute(noisy, None, 16000)


@pytest.mark.slow
def test_emo_sim_end_to_end_on_two_demo_utterances(installed, tmp_path):
    from urgentbench.metrics.emotion import EmotionSimilarity

    results = urgentbench.evaluate("noisy", "demo", metrics=["emo_sim"], limit=2, results_dir=tmp_path / "results",
                                   options=RunOptions(progress=False))
    df = results.to_pandas().sort_values("utt_id").reset_index(drop=True)
    assert list(df["status"]) == ["ok", "ok"] and list(df["output"]) == ["emo_sim", "emo_sim"]
    assert list((tmp_path / "results" / "reference-state").rglob("*.npz"))  # reference embeddings cached
    metric = EmotionSimilarity()
    for index, utt in enumerate(get_suite("demo").utterances(2)):
        ref, noisy = demo_pair(index, 16000)
        value = float(df.loc[df["utt_id"] == utt.id, "value"].iloc[0])
        assert value == pytest.approx(metric.compute(noisy, ref, 16000)["emo_sim"], abs=1e-6)


def test_unavailable_without_its_asset(tmp_path, monkeypatch):
    from urgentbench.metrics.emotion import CHECKPOINT_SHA256, EmotionSimilarity

    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    avail = EmotionSimilarity.availability()
    assert not avail.ok
    assert "urgentbench assets fetch emotion2vec-base" in avail.summary()
    with pytest.raises(AssetError, match="assets fetch emotion2vec-base"):
        EmotionSimilarity().setup()
    asset = get_asset("emotion2vec-base")
    assert asset.urls["emotion2vec_base.pt"] == (
        "https://huggingface.co/emotion2vec/emotion2vec_base/resolve/"
        "5e05b4938a819f0e267f187ad94557b6f925e044/emotion2vec_base.pt"
    )
    assert not asset.unpinned and asset.files[0].sha256 == CHECKPOINT_SHA256
    assert get_asset("emotion2vec_base") is asset
