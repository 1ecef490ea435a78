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


def test_table_rows_select_by_shown_or_stored_name_and_resolve_the_reference():
    from urgentbench.report.publish import check_formats, resolve_reference, select_systems
    from urgentbench.report.summary import SystemSummary
    from urgentbench.suites import get_suite

    suite = get_suite("demo")
    a1 = SystemSummary("team", "aaa", "Team", {})
    a2 = SystemSummary("team", "bbb", "Team", {})
    other = SystemSummary("noisy", "ccc", "noisy", {})
    summaries = [a1, a2, other]
    assert list(select_systems(summaries, None, suite)) == ["Team [aaa]", "Team [bbb]", "noisy"]
    rows = select_systems(summaries, ["noisy", "team"], suite)  # order asked; a stored name matches every config
    assert list(rows) == ["noisy", "Team [aaa]", "Team [bbb]"] and rows["noisy"] is other
    with pytest.raises(ValueError, match="no stored results of 'nobody' on demo; stored: Team \\[aaa\\], Team \\[bbb\\], noisy"):
        select_systems(summaries, ["nobody"], suite)
    assert resolve_reference("noisy", rows) == "noisy"
    assert resolve_reference("team", rows) == "team"  # ambiguous: left as given, build_table names the problem
    assert resolve_reference("team", select_systems([a1, other], None, suite)) == "Team"
    assert check_formats(["md", "html"]) == ["md", "html"]
    with pytest.raises(ValueError, match="unknown format\\(s\\) pdf; use md, csv, json, html"):
        check_formats(["md", "pdf"])
