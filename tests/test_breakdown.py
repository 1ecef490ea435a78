"""Per-condition breakdowns: tags derived from degradation parameters, grouping, ordering."""

from __future__ import annotations

import pytest

from urgentbench.manifest import DegradationSpec, Utterance
from urgentbench.report.breakdown import group_utterances, utterance_tags


def _utt(uid: str, *steps: tuple[str, dict], tags: dict | None = None) -> Utterance:
    return Utterance(
        id=uid, sample_rate=44100, clean="x.flac", speaker="p360",
        degradations=[DegradationSpec(n, p) for n, p in steps], tags=tags or {},
    )


def test_tags_are_derived_from_the_degradation_chain():
    utt = _utt(
        "a",
        ("reverb", {"rt60": 0.537}),
        ("noise", {"snr_db": -2.8, "type": "pink", "seed": 1}),
        ("clipping", {"threshold": 0.25}),
        ("bandwidth_limit", {"cutoff_hz": 4000}),
        tags={"condition": "all"},
    )
    tags = utterance_tags(utt)
    assert tags == {
        "sample_rate": "44100", "speaker": "p360", "snr_bin": "-5..0", "rt60_bin": "0.4..0.6",
        "clip_threshold": "0.25", "cutoff_hz": "4000", "condition": "all",
    }
    clean = utterance_tags(_utt("b"))
    assert (clean["snr_bin"], clean["rt60_bin"], clean["clip_threshold"], clean["cutoff_hz"]) == (
        "no noise", "no reverb", "none", "none")


def test_manifest_tags_win_over_derived_ones():
    utt = _utt("a", ("noise", {"snr_db": 3.0}), tags={"snr_bin": "custom"})
    assert utterance_tags(utt)["snr_bin"] == "custom"


def test_groups_are_in_numeric_order_and_unknown_tags_fail():
    utts = [_utt(str(i), ("noise", {"snr_db": snr})) for i, snr in enumerate([12.0, -3.0, 7.0, 1.0, 19.9])]
    utts.append(_utt("clean"))
    groups = group_utterances(utts, "snr_bin")
    assert list(groups) == ["-5..0", "0..5", "5..10", "10..15", "15..20", "no noise"]
    assert [u.id for u in groups["10..15"]] == ["0"]
    with pytest.raises(ValueError, match="known tags: .*snr_bin"):
        group_utterances(utts, "room")
