"""URGENT's ranking rule.

1. Each metric is averaged over the utterances of a system (done before this module).
2. Systems are ranked per metric (descending for higher-is-better metrics); ties use
   ``dense`` ranking ("1223", as the rules text says) or ``min`` ("1224", which is what
   the rules' worked example shows).
3. A category score is the mean of its metrics' raw ranks (not re-ranked).
4. The overall score is the unweighted mean of the category scores; lower is better.

Missing values (a system with no valid value for a metric) are ranked last, tied with
each other: a system cannot gain rank by failing to produce a number.

Which systems reach this module, and with which values, is the leaderboard's failure
policy (:mod:`urgentbench.report.leaderboard`, README "Failure policy"): a system whose
outputs are missing or unusable on some utterances is not ranked, or (``--missing
worst``) its missing per-utterance values take the worst value of the other systems
before step 1. Metric failures on valid outputs are left out of step 1's nan-mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TIE_METHODS = ("dense", "min")


@dataclass
class Ranking:
    """Ranks, category scores and overall scores of a set of systems."""

    systems: list[str]
    ranks: dict[str, dict[str, float]]
    category_scores: dict[str, dict[str, float]]
    overall: dict[str, float]

    def order(self) -> list[str]:
        """Systems from best to worst overall (ties broken by name)."""
        return sorted(self.systems, key=lambda s: (self.overall[s], s))


def rank_values(values: list[float | None], higher_is_better: bool, tie: str = "dense") -> list[float]:
    """Rank one metric's system values (1 = best).

    Raises:
        ValueError: For an unknown tie method.
    """
    from scipy.stats import rankdata

    if tie not in TIE_METHODS:
        raise ValueError(f"unknown tie method {tie!r}; use one of {', '.join(TIE_METHODS)}")
    worst = -math.inf if higher_is_better else math.inf
    clean = [worst if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values]
    keys = -np.asarray(clean) if higher_is_better else np.asarray(clean)
    return [float(r) for r in rankdata(keys, method=tie)]


def rank_systems(
    values: dict[str, dict[str, float | None]],
    higher_is_better: dict[str, bool],
    categories: dict[str, list[str]],
    tie: str = "dense",
) -> Ranking:
    """Apply URGENT's ranking rule.

    Args:
        values: system -> metric output -> system-level value (None when missing).
        higher_is_better: metric output -> direction.
        categories: category -> metric outputs ranked in it.
        tie: ``"dense"`` or ``"min"``.

    Raises:
        ValueError: When a category names a metric without a direction, or is empty.
    """
    systems = list(values)
    ranks: dict[str, dict[str, float]] = {s: {} for s in systems}
    for category, outputs in categories.items():
        if not outputs:
            raise ValueError(f"category {category!r} has no metrics")
        for output in outputs:
            if output not in higher_is_better:
                raise ValueError(f"metric {output!r} of category {category!r} has no known direction")
            column = rank_values([values[s].get(output) for s in systems], higher_is_better[output], tie)
            for s, r in zip(systems, column):
                ranks[s][output] = r
    category_scores = {
        s: {c: float(np.mean([ranks[s][o] for o in outs])) for c, outs in categories.items()} for s in systems
    }
    overall = {s: float(np.mean(list(category_scores[s].values()))) for s in systems}
    return Ranking(systems, ranks, category_scores, overall)
