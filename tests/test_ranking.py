"""URGENT's ranking rule against the worked example of the challenge rules."""

from __future__ import annotations

import pytest

from urgentbench.ranking import rank_systems, rank_values

METRICS = ["dnsmos", "nisqa", "pesq", "estoi", "sdr", "mcd", "lsd", "sbs", "lps", "spksim", "wacc"]
CATEGORIES = {
    "non-intrusive": ["dnsmos", "nisqa"],
    "intrusive": ["pesq", "estoi", "sdr", "mcd", "lsd"],
    "downstream-independent": ["sbs", "lps"],
    "downstream": ["spksim", "wacc"],
}
# Per-metric ranks of the worked example (urgent-protocol.md §3.2).
EXAMPLE_RANKS = {
    "Noisy": [6, 6, 5, 4, 5, 5, 5, 1, 5, 3, 3],
    "Baseline": [5, 5, 4, 5, 4, 4, 4, 4, 4, 5, 4],
    "Sub 1": [1, 1, 6, 6, 6, 6, 6, 6, 6, 6, 6],
    "Sub 2": [4, 4, 3, 3, 3, 3, 3, 4, 3, 4, 5],
    "Sub 3": [3, 3, 2, 2, 2, 2, 2, 1, 2, 2, 2],
    "Sub 4": [2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1],
}
EXPECTED_CATEGORIES = {
    "Noisy": [6.0, 4.8, 3.0, 3.0],
    "Baseline": [5.0, 4.2, 4.0, 4.5],
    "Sub 1": [1.0, 6.0, 6.0, 6.0],
    "Sub 2": [4.0, 3.0, 3.5, 4.5],
    "Sub 3": [3.0, 2.0, 1.5, 2.0],
    "Sub 4": [2.0, 1.0, 1.0, 1.0],
}
EXPECTED_OVERALL = {"Noisy": 4.2, "Baseline": 4.425, "Sub 1": 4.75, "Sub 2": 3.75, "Sub 3": 2.125, "Sub 4": 1.25}


def _values_from_ranks(ranks: dict[str, list[int]]) -> dict[str, dict[str, float]]:
    # Use the rank itself as a lower-is-better value: re-ranking must give the same ranks.
    return {s: dict(zip(METRICS, map(float, r))) for s, r in ranks.items()}


def test_worked_example_min_ties_reproduces_the_table():
    directions = {m: False for m in METRICS}
    ranking = rank_systems(_values_from_ranks(EXAMPLE_RANKS), directions, CATEGORIES, tie="min")
    for system, expected in EXAMPLE_RANKS.items():
        assert [ranking.ranks[system][m] for m in METRICS] == expected
        assert [ranking.category_scores[system][c] for c in CATEGORIES] == pytest.approx(EXPECTED_CATEGORIES[system])
        assert ranking.overall[system] == pytest.approx(EXPECTED_OVERALL[system])
    assert ranking.order() == ["Sub 4", "Sub 3", "Sub 2", "Noisy", "Baseline", "Sub 1"]


@pytest.mark.parametrize(
    ("tie", "sbs_ranks", "overall", "order"),
    [
        ("min", [1, 4, 6, 4, 1, 1], [4.200, 4.425, 4.750, 3.750, 2.125, 1.250],
         ["Sub 4", "Sub 3", "Sub 2", "Noisy", "Baseline", "Sub 1"]),
        ("dense", [1, 2, 3, 2, 1, 1], [4.200, 4.175, 4.375, 3.500, 2.125, 1.250],
         ["Sub 4", "Sub 3", "Sub 2", "Baseline", "Noisy", "Sub 1"]),
    ],
)
def test_tie_method_on_raw_sbs_values(tie, sbs_ranks, overall, order):
    values = _values_from_ranks(EXAMPLE_RANKS)
    directions = {m: False for m in METRICS}
    directions["sbs"] = True  # raw SpeechBERTScore values, higher is better
    for system, sbs in zip(EXAMPLE_RANKS, [0.90, 0.80, 0.70, 0.80, 0.90, 0.90]):
        values[system]["sbs"] = sbs
    ranking = rank_systems(values, directions, CATEGORIES, tie=tie)
    assert [ranking.ranks[s]["sbs"] for s in EXAMPLE_RANKS] == sbs_ranks
    assert [ranking.overall[s] for s in EXAMPLE_RANKS] == pytest.approx(overall)
    assert ranking.order() == order


def test_direction_and_missing_values_rank_last():
    assert rank_values([2.0, 3.0, 1.0], higher_is_better=True) == [2.0, 1.0, 3.0]
    assert rank_values([2.0, 3.0, 1.0], higher_is_better=False) == [2.0, 3.0, 1.0]
    # a system without a value never beats one with a value, whatever the direction
    assert rank_values([None, 0.1, 0.5], higher_is_better=True) == [3.0, 2.0, 1.0]
    assert rank_values([float("nan"), 0.1, 0.5], higher_is_better=False, tie="min") == [3.0, 1.0, 2.0]


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="tie method"):
        rank_values([1.0], True, tie="average")
    with pytest.raises(ValueError, match="no known direction"):
        rank_systems({"a": {"x": 1.0}}, {}, {"c": ["x"]})
