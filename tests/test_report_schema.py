"""The typed leaderboard: the committed demo leaderboard re-rendered from its JSON, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from urgentbench.report.render import to_csv, to_markdown
from urgentbench.report.schema import NOT_RANKED, Leaderboard, LeaderboardRow, NotRanked

DEMO = Path(__file__).resolve().parent.parent / "leaderboards" / "demo"


@pytest.fixture(scope="module")
def demo() -> tuple[str, Leaderboard]:
    text = (DEMO / "leaderboard.json").read_text(encoding="utf-8")
    return text, Leaderboard.from_json(text)


def test_demo_leaderboard_renders_again_byte_for_byte(demo: tuple[str, Leaderboard]):
    text, lb = demo
    assert lb.to_json() == text
    assert to_markdown(lb) == (DEMO / "leaderboard.md").read_text(encoding="utf-8")
    assert to_csv(lb) == (DEMO / "leaderboard.csv").read_text(encoding="utf-8")


def test_records_are_typed_and_read_like_their_json(demo: tuple[str, Leaderboard]):
    _, lb = demo
    assert isinstance(lb.rows[0], LeaderboardRow) and lb.statistics.paired_reference == lb.rows[0].system
    first, second = lb.rows
    # optional fields are absent while None: the first row has no paired test, no policy by default
    assert first.p_vs_first is None and "p_vs_first" not in first and "p_vs_first" in second
    assert "missing_policy" not in lb and lb.get("missing_policy", "unranked") == "unranked"
    with pytest.raises(KeyError):
        first["p_vs_first"]
    assert lb["rows"][1]["p_vs_first"] == second.p_vs_first
    assert list(lb.keys())[:3] == ["suite", "suite_version", "manifest_sha256"]
    groups = [g for g, _, _ in lb.columns()]
    assert groups[-1] == NOT_RANKED and groups.index(NOT_RANKED) == sum(len(v) for v in lb.categories.values())
    assert lb.columns()[0][2] == "dnsmos_ovrl ↑"


def test_optional_fields_round_trip_and_bad_json_is_refused(demo: tuple[str, Leaderboard]):
    text, _ = demo
    data = json.loads(text)
    data["missing_policy"] = "worst"
    data["incomplete"] = [{"system": "late", "scored": {"pesq": 3}, "expected": {"pesq": 24}, "stale": {},
                           "reason": "not scored on pesq 21/24", "participant_failures": {},
                           "participant_examples": {}, "not_scored": {"pesq": 21}}]
    lb = Leaderboard.from_dict(data)
    assert isinstance(lb.incomplete[0], NotRanked) and lb.incomplete[0].filled is None
    assert json.loads(lb.to_json()) == data and list(json.loads(lb.to_json())) == list(data)
    assert "Not ranked (incomplete): late" in to_markdown(lb)
    with pytest.raises(ValueError, match="unknown key"):
        Leaderboard.from_dict({**data, "surprise": 1})
    with pytest.raises(ValueError, match="missing key.*rows"):
        Leaderboard.from_dict({k: v for k, v in data.items() if k != "rows"})
    with pytest.raises(ValueError, match="not JSON"):
        Leaderboard.from_json("{")
