"""SpeechBERTScore and LPS with tiny randomly-initialised transformers models of the real architectures."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import load_speech, white_noise_mix

from urgentbench.assets import AssetError, get_asset
from urgentbench.metrics import METRICS, MetricError, get_metric_class
from urgentbench.metrics.lps import (
    LPS,
    CTCPhonemeDecoder,
    phoneme_distance,
    phoneme_similarity,
    zero_mean_unit_variance,
)
from urgentbench.metrics.speechbertscore import SpeechBERTScore, bertscore_precision

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SR = 16000
#: A small phoneme vocabulary in the layout of the eSpeak model's vocab.json.
VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "h": 4, "ə": 5, "l": 6, "oʊ": 7, "aɪ": 8, "ː": 9}


def _hubert_config(layers: int = 10):
    return transformers.HubertConfig(
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )


def _old_style_state_dict(model) -> dict:
    """State dict with the positional convolution's weight norm named as in the 2021 Hub checkpoints."""
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    for key in [k for k in sd if k.endswith("pos_conv_embed.conv.parametrizations.weight.original0")]:
        prefix = key[: -len("parametrizations.weight.original0")]
        sd[prefix + "weight_g"] = sd.pop(key)
        sd[prefix + "weight_v"] = sd.pop(prefix + "parametrizations.weight.original1")
    return sd


@pytest.fixture(scope="session")
def hubert_dir(tmp_path_factory):
    """A tiny HuBERT (10 layers) saved like utter-project/mHuBERT-147 (config.json + model.safetensors)."""
    return write_tiny_hubert(tmp_path_factory.mktemp("tiny-hubert"))


@pytest.fixture(scope="session")
def hubert_bin_dir(tmp_path_factory, hubert_dir):
    """The same model saved like facebook/hubert-base-ls960 (config.json + pytorch_model.bin, weight_g/v names)."""
    folder = tmp_path_factory.mktemp("tiny-hubert-bin")
    model = transformers.HubertModel.from_pretrained(hubert_dir)
    model.config.save_pretrained(folder)
    torch.save(_old_style_state_dict(model), folder / "pytorch_model.bin")
    return folder


def write_tiny_hubert(folder):
    """A tiny HuBERT (10 layers, seed 0) saved like utter-project/mHuBERT-147 (config.json + model.safetensors)."""
    torch.manual_seed(0)
    transformers.HubertModel(_hubert_config()).eval().save_pretrained(folder)
    return folder


def write_tiny_phoneme_ctc(folder):
    """A tiny Wav2Vec2ForCTC phoneme recogniser (seed 1) laid out like facebook/wav2vec2-lv-60-espeak-cv-ft."""
    folder.mkdir(parents=True, exist_ok=True)
    config = transformers.Wav2Vec2Config(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        conv_bias=True,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        pad_token_id=0,
    )
    torch.manual_seed(1)
    model = transformers.Wav2Vec2ForCTC(config).eval()
    with torch.no_grad():  # a random head rarely wins with the blank; make it so, like a trained model
        model.lm_head.weight.mul_(20.0)
        model.lm_head.bias.zero_()
        model.lm_head.bias[0] = -1.0
    config.save_pretrained(folder)
    torch.save(_old_style_state_dict(model), folder / "pytorch_model.bin")
    (folder / "vocab.json").write_text(json.dumps(VOCAB, ensure_ascii=False), encoding="utf-8")
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "do_normalize": True,
                "feature_extractor_type": "Wav2Vec2FeatureExtractor",
                "feature_size": 1,
                "padding_side": "right",
                "padding_value": 0.0,
                "return_attention_mask": True,
                "sampling_rate": SR,
            }
        )
    )
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {**special, "do_phonemize": True, "phonemizer_lang": "en-us", "phonemizer_backend": "espeak"}
        )
    )
    return folder


@pytest.fixture(scope="session")
def ctc_dir(tmp_path_factory):
    """A tiny Wav2Vec2ForCTC phoneme recogniser laid out like facebook/wav2vec2-lv-60-espeak-cv-ft."""
    return write_tiny_phoneme_ctc(tmp_path_factory.mktemp("tiny-w2v2-ctc"))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def clean():
    return load_speech("a", SR)


# --------------------------------------------------------------------------- SpeechBERTScore


def _reference_precision(est: np.ndarray, ref: np.ndarray) -> float:
    """Straightforward loops: for each enhanced frame the best cosine to any reference frame, averaged."""
    best = []
    for e in est.astype(np.float64):
        scores = [
            float(np.dot(e, r) / (np.linalg.norm(e) * np.linalg.norm(r))) for r in ref.astype(np.float64)
        ]
        best.append(max(scores))
    return sum(best) / len(best)


_FULL_MODELS: dict = {}


def _hidden_state(folder, x: np.ndarray, layer: int) -> np.ndarray:
    """hidden_states[layer] of the complete model, as transformers returns it."""
    if folder not in _FULL_MODELS:
        _FULL_MODELS[folder] = transformers.HubertModel.from_pretrained(folder).eval()
    model = _FULL_MODELS[folder]
    with torch.no_grad():
        out = model(torch.from_numpy(x)[None], output_hidden_states=True).hidden_states
    return out[layer][0].numpy()


def test_bertscore_precision_by_hand():
    est = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, -2.0]])
    ref = np.array([[2.0, 0.0], [0.0, 1.0]])
    # frame 1 matches ref 0 exactly; frame 2 is 45 degrees from both; frame 3 is opposite to ref 1
    expected = (1.0 + np.sqrt(0.5) + 0.0) / 3
    assert bertscore_precision(est, ref) == pytest.approx(expected, abs=1e-12)
    # asymmetric: with the roles swapped, ref 0 finds est 0 (1) and ref 1 finds est 1 (45 degrees)
    assert bertscore_precision(ref, est) == pytest.approx((1.0 + np.sqrt(0.5)) / 2, abs=1e-12)
    with pytest.raises(MetricError, match="all zeros"):
        bertscore_precision(np.zeros((2, 2)), ref)


def test_sbs_identical_is_one(hubert_dir, clean):
    metric = SpeechBERTScore(model_dir=str(hubert_dir))
    value = metric.compute(clean, clean, SR)["speechbertscore"]
    assert abs(value - 1.0) < 1e-6


def test_sbs_decreases_with_noise(hubert_dir, clean):
    metric = SpeechBERTScore(model_dir=str(hubert_dir))
    scores = [
        metric.compute(white_noise_mix(clean, snr), clean, SR)["speechbertscore"] for snr in (30, 10, 0)
    ]
    assert scores[0] < 1.0 - 1e-4
    assert scores[0] > scores[1] > scores[2], scores


@pytest.mark.parametrize("layer", [8, 3, 0])
def test_sbs_equals_independent_computation(hubert_dir, clean, layer):
    clean = clean[: 2 * SR]
    noisy = white_noise_mix(clean, 5.0, seed=3)
    metric = SpeechBERTScore(model_dir=str(hubert_dir), layer=layer)
    value = metric.compute(noisy, clean, SR)["speechbertscore"]
    # features from the full model's hidden_states[layer], score from plain loops
    expected = _reference_precision(
        _hidden_state(hubert_dir, noisy, layer), _hidden_state(hubert_dir, clean, layer)
    )
    assert value == pytest.approx(expected, abs=1e-6)
    assert value < 0.999


def test_sbs_from_bin_checkpoint_with_old_weight_names(hubert_dir, hubert_bin_dir, clean):
    """hubert-base-ls960 ships pytorch_model.bin with weight_g/weight_v: it must load to the same model."""
    noisy = white_noise_mix(clean, 10.0)
    a = SpeechBERTScore(model_dir=str(hubert_dir)).compute(noisy, clean, SR)["speechbertscore"]
    b = SpeechBERTScore(model="hubert-base", model_dir=str(hubert_bin_dir)).compute(noisy, clean, SR)
    assert b["speechbertscore"] == pytest.approx(a, abs=1e-6)


def test_sbs_refuses_checkpoint_missing_weights(tmp_path, hubert_dir, clean):
    model = transformers.HubertModel.from_pretrained(hubert_dir)
    model.config.save_pretrained(tmp_path)
    sd = _old_style_state_dict(model)
    del sd["encoder.pos_conv_embed.conv.weight_g"], sd["encoder.pos_conv_embed.conv.weight_v"]
    torch.save(sd, tmp_path / "pytorch_model.bin")
    with pytest.raises(RuntimeError, match=r"pytorch_model|does not hold 2 weight"):
        SpeechBERTScore(model_dir=str(tmp_path)).setup()


def test_sbs_bad_inputs(hubert_dir, clean):
    metric = SpeechBERTScore(model_dir=str(hubert_dir))
    with pytest.raises(MetricError, match="at least 400"):
        metric.compute(clean[:399], clean[:399], SR)
    assert metric.compute(clean[:400], clean[:400], SR)["speechbertscore"] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(MetricError, match="16000 Hz"):
        metric.compute(clean, clean, 8000)
    with pytest.raises(MetricError, match="reference"):
        metric.compute(clean, None, SR)
    bad = clean.copy()
    bad[10] = np.nan
    with pytest.raises(MetricError, match="NaN"):
        metric.compute(bad, clean, SR)
    with pytest.raises(ValueError, match="unknown model"):
        SpeechBERTScore(model="wavlm-large")
    with pytest.raises(ValueError, match="layer"):
        SpeechBERTScore(layer=-1)
    with pytest.raises(RuntimeError, match="layer 11 requested but the model has 10"):
        SpeechBERTScore(model_dir=str(hubert_dir), layer=11).setup()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        SpeechBERTScore(model_dir=str(hubert_dir / "nowhere")).setup()


@pytest.mark.parametrize(
    ("model", "asset_name", "folder_fixture"),
    [("mhubert-147", "mhubert-147", "hubert_dir"), ("hubert-base", "hubert-base-ls960", "hubert_bin_dir")],
)
def test_sbs_uses_verified_asset(cache, request, clean, model, asset_name, folder_fixture):
    folder = request.getfixturevalue(folder_fixture)
    cls = get_metric_class("speechbertscore")
    avail = cls.availability({"model": model})
    assert not avail.ok
    assert f"urgentbench assets fetch {asset_name}" in avail.summary()
    assert f"urgentbench assets add {asset_name} --from DIR" in avail.summary()
    with pytest.raises(AssetError, match="fetch"):
        SpeechBERTScore(model=model).setup()

    get_asset(asset_name).add(folder)  # trust on first use: the digests are recorded
    assert cls.availability({"model": model}).ok
    metric = SpeechBERTScore(model=model)
    noisy = white_noise_mix(clean, 10.0)
    value = metric.compute(noisy, clean, SR)["speechbertscore"]
    direct = SpeechBERTScore(model_dir=str(folder)).compute(noisy, clean, SR)["speechbertscore"]
    assert value == pytest.approx(direct, abs=1e-7)
    prov = metric.provenance()
    files = prov["model"]["asset"]["files"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", f["sha256"]) for f in files.values())
    assert prov["model"]["asset"]["sha256"] == get_asset(asset_name).effective_sha256()
    assert prov["options"]["model"] == model and prov["options"]["layer"] == 8
    # the results key names the installed checkpoint; a local folder is named by its own digest
    assert cls.model_hashes({"model": model}) == {asset_name: get_asset(asset_name).effective_sha256()}
    (local,) = cls.model_hashes({"model": model, "model_dir": str(folder)})
    assert local == f"model_dir {folder}"


# --------------------------------------------------------------------------- LPS


def _dp_levenshtein(a, b) -> int:
    """Textbook full-matrix dynamic programme, for cross-checking."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1][-1]


def test_phoneme_distance_hand_examples():
    assert phoneme_distance("kitten", "sitting") == 3
    assert phoneme_distance("flaw", "lawn") == 2
    assert phoneme_distance("", "abc") == 3 and phoneme_distance("abc", "") == 3
    assert phoneme_distance("ðəkæt", "ðəkæt") == 0
    assert phoneme_distance(["aɪ", "l"], ["a", "ɪ", "l"]) == 2  # token level differs from character level


def test_phoneme_distance_matches_textbook_dp():
    rng = np.random.default_rng(0)
    alphabet = list("abcdəɪʊː")
    for _ in range(200):
        a = "".join(rng.choice(alphabet, rng.integers(0, 12)))
        b = "".join(rng.choice(alphabet, rng.integers(0, 12)))
        assert phoneme_distance(a, b) == _dp_levenshtein(a, b), (a, b)


def test_phoneme_similarity_by_hand():
    # ə -> ɛ substituted and a z inserted: distance 2 over 5 reference characters
    assert phoneme_similarity("həloʊ", "hɛloʊz") == pytest.approx(1 - 2 / 5)
    # characters, not phonemes: oʊ -> o drops one of two characters
    assert phoneme_similarity("oʊ", "o") == pytest.approx(0.5)
    # no clipping at zero
    assert phoneme_similarity("a", "bcd") == pytest.approx(-2.0)
    with pytest.raises(MetricError, match="undefined"):
        phoneme_similarity("", "abc")


def test_ctc_decoding_by_hand_and_like_the_tokenizer(ctc_dir):
    decoder = CTCPhonemeDecoder.from_folder(ctc_dir)
    sequences = {
        # blanks separate repeats; merged repeats; an unknown id (42) and <unk> merge into one <unk>
        (0, 4, 4, 0, 5, 6, 6, 0, 6, 7, 7, 0, 3, 42, 8, 9): "həlloʊ<unk>aɪː",
        (0, 0, 0): "",
        (1, 4, 2): "<s>h</s>",  # special tokens other than the blank stay, as in batch_decode
        (8, 8, 8, 0, 8): "aɪaɪ",
    }
    tokenizer = transformers.Wav2Vec2PhonemeCTCTokenizer(str(ctc_dir / "vocab.json"), do_phonemize=False)
    for ids, expected in sequences.items():
        assert decoder.phoneme_string(ids) == expected
        assert tokenizer.batch_decode([list(ids)])[0].replace(" ", "") == expected
    assert decoder.tokens([4, 7, 7, 0, 7]) == ["h", "oʊ", "oʊ"]


def test_input_normalisation_matches_feature_extractor(clean):
    fe = transformers.Wav2Vec2FeatureExtractor(do_normalize=True, sampling_rate=SR)
    x = 0.3 * clean + 0.01
    expected = fe(x, sampling_rate=SR, return_tensors="np").input_values[0]
    np.testing.assert_array_equal(zero_mean_unit_variance(x), expected)


def test_lps_identical_is_one(ctc_dir, clean):
    metric = LPS(model_dir=str(ctc_dir))
    assert len(metric.phonemes(clean)) > 5
    out = metric.compute(clean, clean, SR)
    assert out["lps"] == 1.0 and out["lps_distance"] == 0


def test_lps_reference_state_from_disk_gives_the_same_result(ctc_dir, clean, tmp_path):
    from urgentbench.reference_cache import ReferenceStateCache

    noisy = white_noise_mix(clean, 0.0, seed=5)
    direct = LPS(model_dir=str(ctc_dir)).compute(noisy, clean, SR)
    metric = LPS(model_dir=str(ctc_dir))  # a fresh worker: nothing in its memory cache
    cache = ReferenceStateCache(tmp_path, "suite")
    cache.get(metric, "lps-v1-x", "u1", clean, SR)
    second = ReferenceStateCache(tmp_path, "suite")
    state = second.get(metric, "lps-v1-x", "u1", clean, SR)
    assert (second.hits, second.misses) == (1, 0)  # read back from disk
    assert str(state["phonemes"]) == metric.phonemes(clean)
    assert metric.compute_with_state(noisy, clean, state, SR) == direct
    with pytest.raises(MetricError, match="no phoneme was recognised"):
        metric.compute_with_state(noisy, clean, {"phonemes": np.array("")}, SR)


def test_lps_equals_transformers_pipeline(ctc_dir, clean):
    """Processor + model + argmax + batch_decode, as URGENT's script runs them, give the same strings and LPS."""
    noisy = white_noise_mix(clean, 0.0, seed=5)
    fe = transformers.Wav2Vec2FeatureExtractor.from_pretrained(ctc_dir)
    tokenizer = transformers.Wav2Vec2PhonemeCTCTokenizer(str(ctc_dir / "vocab.json"), do_phonemize=False)
    model = transformers.Wav2Vec2ForCTC.from_pretrained(ctc_dir).eval()

    def urgent_string(x):
        inputs = fe(x, return_tensors="pt", sampling_rate=SR).input_values
        with torch.no_grad():
            ids = torch.argmax(model(inputs).logits, dim=-1)
        return tokenizer.batch_decode(ids)[0].replace(" ", "")

    ref, enh = urgent_string(clean), urgent_string(noisy)
    metric = LPS(model_dir=str(ctc_dir))
    assert metric.phonemes(clean) == ref and metric.phonemes(noisy) == enh
    assert ref != enh
    out = metric.compute(noisy, clean, SR)
    assert out["lps"] == pytest.approx(1 - _dp_levenshtein(enh, ref) / len(ref))
    assert out["lps_reference_length"] == len(ref)


def test_lps_compute_with_designed_recognition(ctc_dir, clean, monkeypatch):
    metric = LPS(model_dir=str(ctc_dir))
    metric.setup()
    outputs = {
        "reference": [0, 4, 4, 5, 0, 6, 7, 7],  # "həloʊ"
        "enhanced": [4, 0, 8, 6, 6, 7, 0, 9],  # "haɪloʊː": ə -> a, insert ɪ, insert ː
    }
    monkeypatch.setattr(metric, "frame_ids", lambda x, role="input": np.array(outputs[role]))
    out = metric.compute(clean + 0.01, clean, SR)
    assert out["lps_distance"] == 3 and out["lps_reference_length"] == 5
    assert out["lps"] == pytest.approx(1 - 3 / 5)

    outputs["reference"] = [0, 0, 0]
    metric._cache.clear()
    with pytest.raises(MetricError, match="no phoneme was recognised in the reference"):
        metric.compute(clean + 0.01, clean, SR)


def test_lps_bad_inputs(ctc_dir, clean):
    metric = LPS(model_dir=str(ctc_dir))
    with pytest.raises(MetricError, match="at least 400"):
        metric.compute(clean[:100], clean[:100], SR)
    with pytest.raises(MetricError, match="16000 Hz"):
        metric.compute(clean, clean, 44100)
    with pytest.raises(MetricError, match="reference"):
        metric.compute(clean, None, SR)


def test_lps_uses_verified_asset(cache, ctc_dir, clean):
    cls = get_metric_class("phoneme_similarity")
    summary = cls.availability().summary()
    assert "urgentbench assets fetch wav2vec2-lv-60-espeak-cv-ft" in summary
    assert "urgentbench assets add wav2vec2-lv-60-espeak-cv-ft --from DIR" in summary
    get_asset("wav2vec2-lv-60-espeak-cv-ft").add(ctc_dir)
    assert cls.availability().ok
    noisy = white_noise_mix(clean, 0.0, seed=5)
    metric = LPS()
    assert (
        metric.compute(noisy, clean, SR)["lps"]
        == LPS(model_dir=str(ctc_dir)).compute(noisy, clean, SR)["lps"]
    )
    prov = metric.provenance()
    assert prov["model"]["repository"] == "facebook/wav2vec2-lv-60-espeak-cv-ft"
    assert set(prov["model"]["asset"]["files"]) == {
        "config.json",
        "preprocessor_config.json",
        "pytorch_model.bin",
        "special_tokens_map.json",
        "tokenizer_config.json",
        "vocab.json",
    }


# --------------------------------------------------------------------------- registration


def test_registered_with_protocol_metadata():
    sbs, lps = METRICS.get("speechbertscore"), METRICS.get("lps")
    for cls in (sbs, lps):
        assert cls.category == "downstream-independent"
        assert cls.sample_rate == SR and cls.needs_reference
        assert all(out.higher_is_better for out in cls.outputs)
        assert "transformers" in cls.distributions and "torch" in cls.distributions
    assert METRICS.get("sbs") is sbs and METRICS.get("phoneme_similarity") is lps
    assert sbs.default_options()["model"] == "mhubert-147" and sbs.default_options()["layer"] == 8
    revisions = {
        "hubert-base-ls960": "facebook/hubert-base-ls960/resolve/dba3bb02fda4248b6e082697eee756de8fe8aa8a/",
        "mhubert-147": "utter-project/mHuBERT-147/resolve/3c4c625e915d7e761d5203a6963129e7c1ff2eb6/",
        "wav2vec2-lv-60-espeak-cv-ft": (
            "facebook/wav2vec2-lv-60-espeak-cv-ft/resolve/ae45363bf3413b374fecd9dc8bc1df0e24c3b7f4/"
        ),
    }
    for name, prefix in revisions.items():
        asset = get_asset(name)
        assert asset.unpinned and all(f.unpinned for f in asset.files)
        assert all(url == f"https://huggingface.co/{prefix}{f}" for f, url in asset.urls.items())
