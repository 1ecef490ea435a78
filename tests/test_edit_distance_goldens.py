"""WER/CER edit counts (jiwer) and LPS phoneme distances (rapidfuzz) equal the values of the former code.

The goldens in ``fixtures/edit_distance_goldens.json`` were recorded from urgentbench's
hand-written Levenshtein functions before they were replaced (see ``fixtures/README.md``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from urgentbench.metrics.asr import NormalisedPair, WhisperErrorRate, error_counts
from urgentbench.metrics.lps import phoneme_distance, phoneme_similarity

GOLDENS = json.loads((Path(__file__).parent / "fixtures" / "edit_distance_goldens.json").read_text(encoding="utf-8"))


def test_goldens_cover_the_cases_they_claim():
    raw = GOLDENS["error_counts"]
    assert any(c["reference"] == "" and c["hypothesis"] == "" for c in raw)
    assert any("\u00a0" in c["reference"] for c in raw) and any("\t" in c["reference"] for c in raw)
    assert max(len(c["reference"].split()) for c in raw) >= 1000
    real = [c for c in GOLDENS["normalised_counts"] if c["id"].startswith("demo_")]
    assert len(real) == 48 * 3 and {c["language"] for c in real} == {None, "eng", "deu"}
    assert sum(c["counts"]["wer_edits"] > 0 for c in real) > len(real) // 2  # real errors, not only exact matches
    assert max(len(c["a"]) for c in GOLDENS["lps_distance"]) >= 1500


@pytest.mark.parametrize("case", GOLDENS["error_counts"], ids=lambda c: repr(c["reference"][:24]))
def test_error_counts_equal_the_goldens(case):
    assert error_counts(case["reference"], case["hypothesis"]) == case["counts"]


def test_normalised_counts_equal_the_goldens():
    pytest.importorskip("whisper")
    metric = WhisperErrorRate()
    for case in GOLDENS["normalised_counts"]:
        pair = metric.normalise_pair(case["reference"], case["hypothesis"], case["language"])
        assert isinstance(pair, NormalisedPair)
        assert pair.counts() == case["counts"], case


def test_corpus_rates_of_the_real_transcripts_equal_the_goldens():
    """Corpus-level WER/CER (URGENT's micro-average) of the 24 noisy demo transcripts, from the stored counts."""
    pytest.importorskip("whisper")
    metric = WhisperErrorRate()
    cases = [c for c in GOLDENS["normalised_counts"] if c["id"].startswith("demo_") and "/" not in c["id"]]
    cases = [c for c in cases if c["language"] is None]
    assert len(cases) == 24
    rows = []
    for case in cases:
        counts = metric.normalise_pair(case["reference"], case["hypothesis"]).counts()
        rows.append({"wer": counts["wer_edits"] / counts["wer_ref_words"], "cer": 0.0, **counts})
    expected_wer = sum(c["counts"]["wer_edits"] for c in cases) / sum(c["counts"]["wer_ref_words"] for c in cases)
    expected_cer = sum(c["counts"]["cer_edits"] for c in cases) / sum(c["counts"]["cer_ref_chars"] for c in cases)
    assert WhisperErrorRate.aggregate("wer", rows) == expected_wer
    assert WhisperErrorRate.aggregate("cer", rows) == expected_cer
    assert 0.2 < expected_wer < 1.0  # noisy inputs: Whisper base makes real errors


@pytest.mark.parametrize("key", ["lps_distance", "lps_token_distance"])
def test_phoneme_distances_equal_the_goldens(key):
    for case in GOLDENS[key]:
        assert phoneme_distance(case["a"], case["b"]) == case["distance"], case
        assert phoneme_distance(case["b"], case["a"]) == case["distance"]  # symmetric
        if key == "lps_distance" and case["b"]:
            assert phoneme_similarity(case["b"], case["a"]) == 1.0 - case["distance"] / len(case["b"])
