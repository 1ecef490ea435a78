"""Confidence intervals and paired significance tests over utterances.

Two procedures, both seeded and therefore reproducible bit for bit:

- **Confidence interval of a system value**: the percentile bootstrap over utterances.
  Utterances are drawn with replacement (``n_resamples`` times, ``numpy.random.default_rng(seed)``)
  and the system statistic is recomputed on every resample; the interval is the
  ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles (linear interpolation) of
  those values. For an output aggregated by the mean this is exactly
  ``scipy.stats.bootstrap(..., method="percentile", rng=default_rng(seed))``; for a corpus-level
  output (WER, CER: total edits over total reference words) whole utterance results are
  resampled and the metric's own :meth:`~urgentbench.metrics.base.Metric.aggregate`
  recomputes the corpus statistic on each resample.
- **Paired test between two systems** on the same utterances: a two-sided paired
  permutation (sign-flip, "approximate randomisation") test. Under the null hypothesis
  the two systems are exchangeable on every utterance, so the outputs of A and B are
  swapped on a random subset of utterances and the difference of the system statistics
  (A minus B, the metric's aggregate, corpus-level where the metric is) is recomputed.
  The p-value follows ``scipy.stats.permutation_test(permutation_type="samples")``: all
  ``2**n`` swaps are enumerated when that is at most ``n_resamples`` (exact test),
  otherwise ``n_resamples`` random swaps plus the observed one; two-sided p is twice the
  smaller one-sided p, capped at 1. Only utterances on which both systems have a value
  are paired. The Wilcoxon signed-rank test (``scipy.stats.wilcoxon``) is available for
  outputs aggregated by the mean.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Defaults used by leaderboards, tables and the regression gate.
N_RESAMPLES = 1000
SEED = 0
CONFIDENCE = 0.95
ALPHA = 0.05
TESTS = ("permutation", "wilcoxon")

CI_METHOD = "percentile bootstrap over utterances"
TEST_METHOD = "two-sided paired permutation (sign-flip) test over utterances"


@dataclass(frozen=True)
class Interval:
    """A system value with its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    n: int

    def as_list(self) -> list[float]:
        """``[low, high]`` (JSON form)."""
        return [self.low, self.high]


@dataclass(frozen=True)
class PairedResult:
    """Outcome of a paired test of system A against system B."""

    difference: float
    p_value: float
    n: int
    method: str
    exact: bool = False


def _valid(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _check(n_resamples: int, confidence: float = CONFIDENCE) -> None:
    from urgentbench.validation import require_int

    require_int(n_resamples, "n_resamples")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def bootstrap_mean_ci(
    values: Sequence[float], n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE, seed: int = SEED
) -> Interval | None:
    """Percentile-bootstrap interval of the mean of ``values`` (NaN/None dropped).

    Returns:
        The interval, or None when no value is left.

    Raises:
        ValueError: For ``n_resamples < 1`` or a confidence outside (0, 1).
    """
    _check(n_resamples, confidence)
    x = np.asarray([float(v) for v in values if _valid(v)], dtype=np.float64)
    if x.size == 0:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, (n_resamples, x.size))
    means = x[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return Interval(float(x.mean()), float(low), float(high), int(x.size))


def bootstrap_statistic_ci(
    rows: Sequence[Any],
    statistic: Callable[[list[Any]], float | None],
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> Interval | None:
    """Percentile-bootstrap interval of any statistic of a list of per-utterance rows.

    The rows (utterances) are resampled with replacement and ``statistic`` is recomputed
    on each resample (for WER: the corpus rate of the resampled utterances). Resamples on
    which the statistic is undefined (None) are dropped.

    Returns:
        The interval, or None when the statistic is undefined on the full sample.

    Raises:
        ValueError: For ``n_resamples < 1`` or a confidence outside (0, 1).
    """
    _check(n_resamples, confidence)
    rows = list(rows)
    estimate = statistic(rows) if rows else None
    if estimate is None or not _valid(estimate):
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(rows), (n_resamples, len(rows)))
    stats = []
    for sample in idx:
        value = statistic([rows[i] for i in sample])
        if _valid(value):
            stats.append(float(value))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.asarray(stats), [alpha, 1.0 - alpha])
    return Interval(float(estimate), float(low), float(high), len(rows))


def output_ci(
    metric_cls: Any,
    output: str,
    rows: Sequence[Mapping[str, Any]],
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> Interval | None:
    """Bootstrap interval of one metric output over a system's per-utterance results.

    Args:
        metric_cls: The metric class (its output spec says mean or corpus aggregation).
        output: The output name.
        rows: Per-utterance result dicts (failed utterances have no row or a None value).
        n_resamples: Bootstrap resamples.
        confidence: Coverage of the interval (0.95: the 2.5 % and 97.5 % quantiles).
        seed: Seed of ``numpy.random.default_rng``.
    """
    spec = metric_cls.output(output)
    valid = [r for r in rows if _valid(r.get(output))]
    if spec.aggregate == "mean":
        return bootstrap_mean_ci([r[output] for r in valid], n_resamples, confidence, seed)
    return bootstrap_statistic_ci(
        valid, lambda sample: metric_cls.aggregate(output, sample), n_resamples, confidence, seed
    )


def _p_values(null: np.ndarray, observed: float, exact: bool) -> float:
    """Two-sided p-value with scipy.stats.permutation_test's conventions."""
    adjustment = 0 if exact else 1
    gamma = abs(np.finfo(np.float64).eps * 100 * observed)
    count = null.size
    less = (np.count_nonzero(null <= observed + gamma) + adjustment) / (count + adjustment)
    greater = (np.count_nonzero(null >= observed - gamma) + adjustment) / (count + adjustment)
    return float(min(1.0, max(0.0, 2.0 * min(less, greater))))


def _swaps(n: int, n_resamples: int, seed: int) -> tuple[np.ndarray, bool]:
    """Boolean swap masks: every one of the 2**n when affordable (exact), else random."""
    if n < 63 and 2**n <= n_resamples:
        return np.array(list(itertools.product([False, True], repeat=n)), dtype=bool).reshape(-1, n), True
    rng = np.random.default_rng(seed)
    return rng.random((n_resamples, n)) < 0.5, False


def paired_permutation_test(
    a: Sequence[Any],
    b: Sequence[Any],
    statistic: Callable[[list[Any]], float | None] | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> PairedResult | None:
    """Two-sided paired permutation test of system A against system B.

    Args:
        a: Per-utterance values (``statistic`` None: numbers, compared by their mean) or
            per-utterance rows of system A, in the same utterance order as ``b``.
        b: The same for system B.
        statistic: A system statistic of a list of rows (e.g. a corpus WER); None means
            the mean of numeric values (vectorised).
        n_resamples: Random swaps (the test is exact when ``2**n <= n_resamples``).
        seed: Seed of ``numpy.random.default_rng``.

    Returns:
        The observed difference ``stat(A) - stat(B)`` and its p-value, or None when no
        utterance is paired.

    Raises:
        ValueError: When ``a`` and ``b`` differ in length, or ``n_resamples < 1``.
    """
    _check(n_resamples)
    if len(a) != len(b):
        raise ValueError(f"paired test needs the same utterances: {len(a)} values for A, {len(b)} for B")
    n = len(a)
    if n == 0:
        return None
    masks, exact = _swaps(n, n_resamples, seed)
    if statistic is None:
        d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
        observed = float(d.mean())
        signs = np.where(masks, -1.0, 1.0)
        null = (signs * d).mean(axis=1)
    else:
        obs = _difference(statistic, list(a), list(b))
        if obs is None:
            return None
        observed = obs
        values = []
        for mask in masks:
            swapped_a = [y if m else x for x, y, m in zip(a, b, mask)]
            swapped_b = [x if m else y for x, y, m in zip(a, b, mask)]
            diff = _difference(statistic, swapped_a, swapped_b)
            if diff is not None:
                values.append(diff)
        null = np.asarray(values, dtype=np.float64)
    return PairedResult(observed, _p_values(null, observed, exact), n, "permutation", exact)


def _difference(statistic: Callable[[list[Any]], float | None], a: list[Any], b: list[Any]) -> float | None:
    sa, sb = statistic(a), statistic(b)
    if not (_valid(sa) and _valid(sb)):
        return None
    return float(sa) - float(sb)


def paired_rows(
    rows_a: Mapping[str, Mapping[str, Any]], rows_b: Mapping[str, Mapping[str, Any]], output: str
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Rows of the utterances on which both systems have a value of ``output`` (sorted by id)."""
    ids = sorted(u for u in rows_a if u in rows_b and _valid(rows_a[u].get(output)) and _valid(rows_b[u].get(output)))
    return [rows_a[u] for u in ids], [rows_b[u] for u in ids]


def compare_systems(
    metric_cls: Any,
    output: str,
    rows_a: Mapping[str, Mapping[str, Any]],
    rows_b: Mapping[str, Mapping[str, Any]],
    test: str = "permutation",
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> PairedResult | None:
    """Paired test of one metric output between two systems scored on the same utterances.

    Args:
        metric_cls: The metric class (mean or corpus aggregation of ``output``).
        output: The output name.
        rows_a: Utterance id -> result dict of system A.
        rows_b: The same for system B.
        test: ``"permutation"`` (any output) or ``"wilcoxon"`` (mean outputs only).
        n_resamples: Most random swaps of the permutation test (all ``2**n`` when fewer).
        seed: Seed of ``numpy.random.default_rng`` for the swaps.

    Returns:
        The result, or None when no utterance has a value from both systems.

    Raises:
        ValueError: For an unknown test, or Wilcoxon on a corpus-level output.
    """
    if test not in TESTS:
        raise ValueError(f"unknown paired test {test!r}; use one of {', '.join(TESTS)}")
    spec = metric_cls.output(output)
    a, b = paired_rows(rows_a, rows_b, output)
    if not a:
        return None
    if test == "wilcoxon":
        if spec.aggregate != "mean":
            raise ValueError(f"the Wilcoxon test needs per-utterance means; {output} is a corpus-level statistic")
        return wilcoxon_test([r[output] for r in a], [r[output] for r in b])
    if spec.aggregate == "mean":
        return paired_permutation_test([r[output] for r in a], [r[output] for r in b], None, n_resamples, seed)
    return paired_permutation_test(a, b, lambda rows: metric_cls.aggregate(output, rows), n_resamples, seed)


def wilcoxon_test(a: Sequence[float], b: Sequence[float]) -> PairedResult:
    """Two-sided Wilcoxon signed-rank test (``scipy.stats.wilcoxon``) of paired values.

    Identical pairs give p = 1 (scipy cannot rank all-zero differences).
    """
    from scipy.stats import wilcoxon

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = float(np.mean(x - y)) if x.size else 0.0
    if x.size == 0 or np.all(x == y):
        return PairedResult(diff, 1.0, int(x.size), "wilcoxon")
    return PairedResult(diff, float(wilcoxon(x, y).pvalue), int(x.size), "wilcoxon")


def describe(n_resamples: int = N_RESAMPLES, seed: int = SEED, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """How the intervals and tests of a report were computed (stored with it)."""
    return {
        "ci_method": CI_METHOD,
        "confidence": confidence,
        "n_resamples": n_resamples,
        "seed": seed,
        "paired_test": TEST_METHOD,
        "alpha": ALPHA,
    }
