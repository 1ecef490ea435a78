"""OWSM v3.1 WER/CER (``owsm_wer``) and OWSM-CTC language-identification accuracy (``lid_acc``).

The real checkpoints (1 B parameters each) are not reachable here. The end-to-end tests
build randomly initialised models of the real architectures from ESPnet's own task
classes at tiny sizes (E-Branchformer + Transformer decoder; E-Branchformer-CTC with a
prompt encoder), with a real sentencepiece model trained in the test that holds OWSM's
language, task and timestamp symbols, saved in the published folder layout
(``meta.yaml``, ``exp/.../config.yaml`` with relative paths, the model file, the BPE
model, the feature statistics), and score two demo utterances with the metrics. The
transcripts are compared with URGENT's own ``owsm_utils.owsm_predict`` and
``calculate_lid_accuracy.predict_language_id`` run on the same ESPnet objects.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from urgentbench.manifest import Transcript
from urgentbench.metrics import MetricError
from urgentbench.metrics.owsm_asr import OWSMErrorRate, clean_text, error_counts
from urgentbench.metrics.owsm_lid import LanguageIDAccuracy, predicted_language
from urgentbench.metrics.owsm_models import (
    fit_30s,
    is_long_form,
    long_form_text,
    max_len_ratio,
    owsm_language,
)

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "urgent2026_track1_evaluation_metrics"
OFFICIAL = REFERENCE / "evaluation_metrics"
SR = 16000


# --------------------------------------------------------------------------- URGENT's arithmetic
def test_max_len_ratio_is_ten_tokens_per_second_truncated_and_capped():
    assert max_len_ratio(3 * SR) == -30
    assert max_len_ratio(int(0.19 * SR)) == -1  # int() truncates 1.9
    assert max_len_ratio(int(0.05 * SR)) == 0  # under 0.1 s: 0, ESPnet's "encoder length"
    assert max_len_ratio(29 * SR + SR // 2) == -295
    assert max_len_ratio(45 * SR) == -300


def test_fit_30s_pads_and_trims_like_librosa_fix_length_and_the_long_form_switch():
    import librosa

    rng = np.random.default_rng(1)
    short, long_ = rng.standard_normal(1000).astype(np.float32), rng.standard_normal(31 * SR).astype(np.float32)
    for x in (short, long_):
        np.testing.assert_array_equal(fit_30s(x), librosa.util.fix_length(x, size=30 * SR))
    assert fit_30s(short).shape == (30 * SR,) and not fit_30s(short)[1000:].any()
    assert not is_long_form(30 * SR) and is_long_form(30 * SR + 1)


def test_long_form_text_is_timestamped_lines_and_the_end_times_survive_cleaning():
    text = long_form_text([(0.0, 12.5, "Hello there."), (12.5, 3725.25, "Bye!")])
    assert text == "[00:00.000 --> 00:12.500] Hello there.\n[00:12.500 --> 01:02:05.250] Bye!"
    # the normalisers' bracket rule stops at the '>' of '-->': URGENT's long-form hypotheses keep
    # the end times as words (reproduced, not corrected)
    assert clean_text(text, "whisper_basic") == " 00 12 500 hello there 01 02 05 250 bye "


def test_normaliser_per_edition_and_urgent_counting():
    # URGENT 2025/2026: whisper_basic (punctuation to spaces, nothing stripped); 2024: whisper_en
    assert clean_text("Mr. Smith's 2 cats!", "whisper_basic") == "mr smith s 2 cats "
    assert clean_text("Mr. Smith's 2 cats!", "whisper_en") == "mister smith is 2 cats"  # contraction expanded, no trailing space
    with pytest.raises(ValueError, match="normalizer"):
        clean_text("x", "tacotron")
    ref, hyp = clean_text("Hello world.", "whisper_basic"), clean_text("hello word", "whisper_basic")
    assert (ref, hyp) == ("hello world ", "hello word")
    # words: one substitution of 2; characters: the trailing space counts (12), 'l' and ' ' deleted
    assert error_counts(ref, hyp) == {"wer_edits": 1, "wer_ref_words": 2, "cer_edits": 2, "cer_ref_chars": 12}


def test_corpus_aggregation_sums_counts():
    rows = [
        {"wer": 0.5, "wer_edits": 1, "wer_ref_words": 2, "cer": 0.1, "cer_edits": 1, "cer_ref_chars": 10},
        {"wer": 0.0, "wer_edits": 0, "wer_ref_words": 8, "cer": 0.0, "cer_edits": 0, "cer_ref_chars": 30},
        {"wer": None},  # a failed utterance
    ]
    assert OWSMErrorRate.aggregate("wer", rows) == pytest.approx(0.1)
    assert OWSMErrorRate.aggregate("cer", rows) == pytest.approx(1 / 40)
    assert OWSMErrorRate.aggregate("wer", [{"wer": None}]) is None


def test_language_codes_and_the_first_token_rule():
    assert [owsm_language(c) for c in ("eng", "en", "en-US", "ger", "deu", "zh_CN", "<fra>", "SPA")] == [
        "eng", "eng", "eng", "deu", "deu", "zho", "fra", "spa"
    ]  # fmt: skip
    with pytest.raises(ValueError):
        owsm_language("english1")
    assert predicted_language(["<deu>", "<asr>", "▁hallo"]) == "deu"
    with pytest.raises(MetricError, match="no token"):
        predicted_language([])


def test_missing_values_before_any_model_is_loaded():
    x = np.zeros(SR, dtype=np.float32)
    wer = OWSMErrorRate()
    with pytest.raises(MetricError, match="<not-available>"):
        wer.compute(x, None, SR, transcript=Transcript("<not-available>", "eng"))
    with pytest.raises(MetricError, match="empty after whisper_basic"):
        wer.compute(x, None, SR, transcript="(laughs) ...")
    with pytest.raises(MetricError, match="no language"):
        LanguageIDAccuracy().compute(x, None, SR, transcript="hello")
    with pytest.raises(MetricError, match="no language"):
        LanguageIDAccuracy().compute(x, None, SR, transcript=None)
    assert wer._model is None  # nothing was loaded for these


def test_availability_names_each_missing_asset_with_its_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    problems = " | ".join(OWSMErrorRate.availability().problems)
    assert "owsm-v3.1-ebf" in problems and "urgentbench assets fetch owsm-v3.1-ebf" in problems
    assert "urgentbench assets fetch espnet-202511" in problems
    lid = " | ".join(LanguageIDAccuracy.availability().problems)
    assert "urgentbench assets fetch owsm-ctc-v4-1b" in lid
    # a local model folder needs no model asset, only ESPnet's code
    local = " | ".join(OWSMErrorRate.availability({"model_dir": str(tmp_path)}).problems)
    assert "owsm-v3.1-ebf" not in local and "espnet-202511" in local


# --------------------------------------------------------------------------- tiny models of the real architectures
_SPECIALS = (
    ["<na>", "<nolang>", "<eng>", "<deu>", "<zho>", "<asr>", "<st_eng>", "<notimestamps>"]
    + [f"<{i * 0.02:.2f}>" for i in range(1501)]
    + ["<sos>", "<eos>", "<sop>"]
)
_PRE = {
    "text_prev_name": "text_prev", "text_ctc_name": "text_ctc", "fs": 16000, "na_symbol": "<na>",
    "speech_length": 30, "speech_resolution": 0.02, "speech_init_silence": 30, "text_prev_apply_prob": 0.5,
    "time_apply_prob": 0.5, "notime_symbol": "<notimestamps>", "first_time_symbol": "<0.00>",
    "last_time_symbol": "<30.00>",
}  # fmt: skip
_EBF = dict(
    output_size=32, attention_heads=2, attention_layer_type="selfattn", pos_enc_layer_type="abs_pos",
    rel_pos_type="latest", cgmlp_linear_units=64, cgmlp_conv_kernel=3, use_linear_after_conv=False,
    gate_activation="identity", dropout_rate=0.0, positional_dropout_rate=0.0, attention_dropout_rate=0.0,
    layer_drop_rate=0.0, linear_units=64, positionwise_layer_type="linear", use_ffn=True, macaron_ffn=True,
    merge_conv_kernel=3,
)  # fmt: skip
_BPE = "data/token_list/bpe_unigram50000/bpe.model"
_STATS = "exp/s2t_stats_raw_bpe50000/train/feats_stats.npz"


def _write_folder(root: Path, exp: str, task_cls, cfg: dict, seed: int, model_file: str = "model.pth") -> Path:
    """Build ``task_cls``'s model from ``cfg`` (random weights) and save it in the published layout."""
    import torch
    import yaml

    torch.manual_seed(seed)
    model = task_cls.build_model(argparse.Namespace(**cfg))
    (root / "exp" / exp).mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), root / "exp" / exp / model_file)
    published = {**cfg, "bpemodel": _BPE, "normalize_conf": {"stats_file": _STATS}}  # relative, as on the Hub
    (root / "exp" / exp / "config.yaml").write_text(yaml.safe_dump(published))
    meta = {"espnet": "202511", "files": {"s2t_model_file": f"exp/{exp}/{model_file}"},
            "yaml_files": {"s2t_train_config": f"exp/{exp}/config.yaml"}}  # fmt: skip
    (root / "meta.yaml").write_text(yaml.safe_dump(meta))
    return root


def _common_files(root: Path) -> list[str]:
    """Train the tiny BPE model (OWSM's symbols as user-defined pieces), write the statistics; the token list."""
    import sentencepiece as spm

    (root / _BPE).parent.mkdir(parents=True, exist_ok=True)
    (root / _STATS).parent.mkdir(parents=True, exist_ok=True)
    corpus = root / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\nspeech enhancement is evaluated here\n" * 20)
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(root / _BPE)[: -len(".model")], vocab_size=len(_SPECIALS) + 30,
        model_type="unigram", user_defined_symbols=_SPECIALS, hard_vocab_limit=False, minloglevel=2,
    )  # fmt: skip
    np.savez(root / _STATS, count=np.array(1.0), sum=np.zeros(80), sum_square=np.ones(80))
    sp = spm.SentencePieceProcessor(model_file=str(root / _BPE))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    return ["<blank>", "<unk>", *[p for p in pieces if p not in ("<unk>", "<s>", "</s>")]]


#: Published experiment folders and model file names of the two checkpoints (their assets' layout).
PUBLISHED = {
    "owsm": ("s2t_train_s2t_ebf_conv2d_size1024_e18_d18_piecewise_lr2e-4_warmup60k_flashattn_raw_bpe50000",
             "valid.total_count.ave_5best.till45epoch.pth"),
    "owsm_ctc": ("s2t_train_s2t_multitask-ctc_ebf27_conv2d8_size1024_raw_bpe50000",
                 "valid.total_count.ave_5best.till40epoch.pth"),
}  # fmt: skip


def write_tiny_owsm(folder: Path, kind: str, *, published: bool = False) -> Path:
    """A random OWSM (``kind="owsm"``) or OWSM-CTC (``"owsm_ctc"``) model of the real architecture, tiny size.

    With ``published``, the experiment folder and model file carry the Hub repository's
    names, so the folder can be added as the ``owsm-v3.1-ebf`` / ``owsm-ctc-v4-1b`` asset.
    """
    from urgentbench.metrics.espnet_runtime import import_espnet

    s2t, s2t_ctc = import_espnet("espnet2.tasks.s2t", "espnet2.tasks.s2t_ctc")
    task, seed = (s2t.S2TTask, 0) if kind == "owsm" else (s2t_ctc.S2TTask, 1)
    folder.mkdir(parents=True, exist_ok=True)
    common = dict(
        token_list=_common_files(folder), token_type="bpe", bpemodel=str(folder / _BPE), input_size=None,
        frontend="default", frontend_conf={"n_fft": 512, "win_length": 400, "hop_length": 160, "fs": "16k"},
        specaug=None, normalize="global_mvn", normalize_conf={"stats_file": str(folder / _STATS)},
        preprocessor="s2t", preprocessor_conf=_PRE,
    )  # fmt: skip
    cfg = {**task.get_default_config(), **common}
    if kind == "owsm":
        cfg.update(
            encoder="e_branchformer", encoder_conf={**_EBF, "num_blocks": 2, "input_layer": "conv2d"},
            decoder="transformer", decoder_conf=dict(attention_heads=2, linear_units=64, num_blocks=2,
                dropout_rate=0.0, positional_dropout_rate=0.0, self_attention_dropout_rate=0.0,
                src_attention_dropout_rate=0.0),
            model="espnet", model_conf=dict(ctc_weight=0.3, lsm_weight=0.1, length_normalized_loss=False,
                sym_na="<na>"),
        )  # fmt: skip
        exp = "s2t_train_s2t_ebf_conv2d_tiny_raw_bpe"
    else:
        cfg.update(
            encoder="e_branchformer_ctc", encoder_conf={**_EBF, "num_blocks": 3, "input_layer": "conv2d8",
                "interctc_layer_idx": [1, 2], "interctc_use_conditioning": True},
            promptencoder="transformer", promptencoder_conf=dict(output_size=32, attention_heads=2,
                linear_units=64, num_blocks=1, dropout_rate=0.0, positional_dropout_rate=0.0,
                attention_dropout_rate=0.0, normalize_before=True),
            model="espnet_ctc", model_conf=dict(interctc_weight=0.5, ctc_asr_only=[True, False], sym_na="<na>"),
        )  # fmt: skip
        exp = "s2t_train_s2t_multitask-ctc_ebf_conv2d8_tiny_raw_bpe"
    model_file = "model.pth"
    if published:
        exp, model_file = PUBLISHED[kind]
    return _write_folder(folder, exp, task, cfg, seed, model_file)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """(OWSM folder, OWSM-CTC folder) with random weights of the real architectures at tiny sizes."""
    root = tmp_path_factory.mktemp("owsm")
    return write_tiny_owsm(root / "owsm", "owsm"), write_tiny_owsm(root / "owsm_ctc", "owsm_ctc")


def _official(module: str):
    if str(OFFICIAL) not in sys.path:
        sys.path.insert(0, str(OFFICIAL))
    return __import__(module)


@pytest.mark.slow
def test_owsm_wer_end_to_end_matches_urgents_owsm_predict(tiny_models, demo_pair_16k):
    owsm_dir, _ = tiny_models
    metric = OWSMErrorRate(model_dir=str(owsm_dir), threads=1)
    start = time.perf_counter()
    metric.setup()
    owsm_utils = _official("owsm_utils")
    rows = []
    for x, text in demo_pair_16k:
        t0 = time.perf_counter()
        row = metric.compute(x, None, SR, transcript=Transcript(text, "eng"))
        print(f"owsm_wer tiny decode {len(x) / SR:.1f} s audio: {time.perf_counter() - t0:.2f} s")
        official = owsm_utils.owsm_predict(metric._model, x, SR, src_lang="eng", beam_size=5, long_form=False)
        assert row["hypothesis"] == official and row["decoding"] == "short"
        expected = error_counts(clean_text(text, "whisper_basic"), clean_text(official, "whisper_basic"))
        assert {k: row[k] for k in expected} == expected
        assert row["wer"] == expected["wer_edits"] / expected["wer_ref_words"]
        rows.append(row)
    total = sum(r["wer_edits"] for r in rows) / sum(r["wer_ref_words"] for r in rows)
    assert OWSMErrorRate.aggregate("wer", rows) == pytest.approx(total)
    # the language symbol comes from the utterance; one the model lacks is a missing value
    with pytest.raises(MetricError, match="no symbol <fra>"):
        metric.compute(demo_pair_16k[0][0], None, SR, transcript=Transcript("bonjour", "fra"))
    print(f"owsm_wer tiny set-up + 2 utterances: {time.perf_counter() - start:.2f} s")


@pytest.mark.slow
def test_owsm_wer_long_form_follows_urgent(tiny_models):
    owsm_dir, _ = tiny_models
    metric = OWSMErrorRate(model_dir=str(owsm_dir), threads=1, normalizer="whisper_en")
    metric.setup()
    x = (0.05 * np.random.default_rng(3).standard_normal(31 * SR)).astype(np.float32)
    t0 = time.perf_counter()
    row = metric.compute(x, None, SR, transcript="the quick brown fox")
    print(f"owsm_wer tiny long-form 31 s: {time.perf_counter() - t0:.2f} s ({row['decoding']})")
    official = _official("owsm_utils").owsm_predict(metric._model, x, SR, src_lang="eng", beam_size=5, long_form=True)
    assert row["hypothesis"] == official and row["decoding"] in ("long", "fallback")


@pytest.mark.slow
def test_lid_acc_end_to_end_matches_urgents_first_token(tiny_models, demo_pair_16k):
    _, ctc_dir = tiny_models
    metric = LanguageIDAccuracy(model_dir=str(ctc_dir), threads=1)
    metric.setup()
    official = _official("calculate_lid_accuracy")
    values = []
    for x, _text in demo_pair_16k:
        t0 = time.perf_counter()
        row = metric.compute(x, None, SR, transcript=Transcript("text", "eng"))
        print(f"lid_acc tiny decode {len(x) / SR:.1f} s audio: {time.perf_counter() - t0:.2f} s")
        token = official.predict_language_id(metric._model, x, SR)
        assert row["predicted"] == token.strip("<>")
        assert row["lid_acc"] == float(token == "<eng>")
        values.append(row)
    assert LanguageIDAccuracy.aggregate("lid_acc", values) == np.mean([r["lid_acc"] for r in values])
    # a CTC head biased to <eng> on every frame: its output is <eng> alone, right for English only
    import torch

    model = metric._model.s2t_model
    with torch.no_grad():
        model.ctc.ctc_lo.bias[model.token_list.index("<eng>")] += 1e4
    x = demo_pair_16k[0][0]
    assert metric.identify(x) == ["<eng>"]
    assert metric.compute(x, None, SR, transcript=Transcript("text", "en-GB"))["lid_acc"] == 1.0
    deu = metric.compute(x, None, SR, transcript=Transcript("text", "ger"))
    assert (deu["lid_acc"], deu["predicted"], deu["language"]) == (0.0, "eng", "deu")
    assert metric.min_samples() == 14 * 160  # conv2d8 needs 15 frames of 10 ms
    with pytest.raises(MetricError, match="too short"):
        metric.compute(np.zeros(2000, np.float32), None, SR, transcript=Transcript("x", "eng"))


@pytest.fixture(scope="module")
def demo_pair_16k():
    """Two demo utterances' noisy inputs at 16 kHz with their transcripts."""
    from conftest import demo_pair

    from urgentbench.suites import get_suite

    utts = get_suite("demo").utterances()[:2]
    return [(demo_pair(i, SR)[1], str(utts[i].text)) for i in range(2)]
