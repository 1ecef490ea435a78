"""Bootstrap intervals and paired tests, checked against scipy and against hand computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from urgentbench.metrics.asr import WhisperErrorRate as WhisperWER
from urgentbench.metrics.intrusive import PESQ
from urgentbench.report import stats


def _mean_diff(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def test_mean_ci_equals_scipy_percentile_bootstrap():
    x = np.random.default_rng(5).normal(2.0, 1.0, 24)
    ref = sps.bootstrap((x,), np.mean, n_resamples=1000, method="percentile", rng=np.random.default_rng(7))
    ours = stats.bootstrap_mean_ci(x, n_resamples=1000, seed=7)
    assert ours.estimate == pytest.approx(x.mean())
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=1e-12)
    # seeded: the same call gives the same interval, another seed another one
    assert stats.bootstrap_mean_ci(x, 1000, seed=7) == ours
    assert stats.bootstrap_mean_ci(x, 1000, seed=8) != ours
    # failures (None / NaN) are dropped, never counted as 0
    assert stats.bootstrap_mean_ci([*x, None, float("nan")], 1000, seed=7) == ours
    assert stats.bootstrap_mean_ci([None]) is None
    with pytest.raises(ValueError, match="confidence"):
        stats.bootstrap_mean_ci(x, confidence=1.5)


def test_corpus_wer_ci_resamples_utterances_and_recomputes_the_rate():
    rng = np.random.default_rng(0)
    words = rng.integers(3, 40, 20)
    edits = np.minimum(rng.integers(0, 10, 20), words)
    rows = [{"wer": e / w, "wer_edits": int(e), "wer_ref_words": int(w)} for e, w in zip(edits, words)]
    rows.append({"wer": None, "wer_edits": None, "wer_ref_words": None})  # a failed utterance
    ci = stats.output_ci(WhisperWER, "wer", rows, n_resamples=500, seed=3)
    assert ci.estimate == pytest.approx(edits.sum() / words.sum())
    assert ci.n == 20
    # by hand: the same index draws over the valid utterances, corpus rate per resample
    idx = np.random.default_rng(3).integers(0, 20, (500, 20))
    rates = edits[idx].sum(axis=1) / words[idx].sum(axis=1)
    assert [ci.low, ci.high] == pytest.approx(np.quantile(rates, [0.025, 0.975]).tolist())
    # not the bootstrap of the mean of per-utterance rates
    naive = stats.bootstrap_mean_ci(edits / words, 500, seed=3)
    assert naive.estimate != pytest.approx(ci.estimate)


def test_paired_permutation_test_matches_scipy_exact_and_randomised():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, 8)
    b = a + rng.normal(0.4, 1, 8)
    ref = sps.permutation_test((a, b), _mean_diff, permutation_type="samples", n_resamples=1000, vectorized=True)
    ours = stats.paired_permutation_test(a, b, n_resamples=1000)
    assert ours.exact and ours.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    assert ours.difference == pytest.approx(np.mean(a - b))

    a = rng.normal(0, 1, 40)
    b = a + rng.normal(0.3, 1, 40)
    ref = sps.permutation_test((a, b), _mean_diff, permutation_type="samples", n_resamples=20000,
                               vectorized=True, rng=np.random.default_rng(0))
    ours = stats.paired_permutation_test(a, b, n_resamples=20000, seed=0)
    assert not ours.exact
    assert ours.p_value == pytest.approx(ref.pvalue, abs=0.02)  # different random draws
    assert stats.paired_permutation_test(a, b, n_resamples=20000, seed=0) == ours


def test_compare_systems_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(2)
    base = rng.uniform(1.5, 3.0, 30)
    sys_a = {f"u{i}": {"pesq": float(v)} for i, v in enumerate(base)}
    better = {f"u{i}": {"pesq": float(v + 0.3 + rng.normal(0, 0.05))} for i, v in enumerate(base)}
    noise = {f"u{i}": {"pesq": float(v + rng.normal(0, 0.05))} for i, v in enumerate(base)}
    assert stats.compare_systems(PESQ, "pesq", better, sys_a).p_value < 0.01
    assert stats.compare_systems(PESQ, "pesq", noise, sys_a).p_value > 0.05
    assert stats.compare_systems(PESQ, "pesq", sys_a, sys_a).p_value == 1.0
    # only utterances scored by both are paired
    partial = {k: v for k, v in list(better.items())[:10]}
    assert stats.compare_systems(PESQ, "pesq", partial, sys_a).n == 10
    assert stats.compare_systems(PESQ, "pesq", {}, sys_a) is None
    # Wilcoxon is scipy's
    w = stats.compare_systems(PESQ, "pesq", better, sys_a, test="wilcoxon")
    keys = sorted(sys_a)
    assert w.p_value == pytest.approx(sps.wilcoxon([better[k]["pesq"] for k in keys], [sys_a[k]["pesq"] for k in keys]).pvalue)
    with pytest.raises(ValueError, match="unknown paired test"):
        stats.compare_systems(PESQ, "pesq", better, sys_a, test="t")


def test_paired_test_of_corpus_wer_uses_the_corpus_rate():
    rng = np.random.default_rng(4)
    words = rng.integers(5, 30, 25)

    def rows(edits):
        return {f"u{i}": {"wer": e / w, "wer_edits": int(e), "wer_ref_words": int(w)} for i, (e, w) in enumerate(zip(edits, words))}

    worse_edits = np.minimum(rng.integers(3, 9, 25), words)
    fewer_edits = np.maximum(worse_edits - rng.integers(1, 4, 25), 0)
    result = stats.compare_systems(WhisperWER, "wer", rows(fewer_edits), rows(worse_edits), n_resamples=2000)
    assert result.difference == pytest.approx(fewer_edits.sum() / words.sum() - worse_edits.sum() / words.sum())
    assert result.p_value < 0.01
    with pytest.raises(ValueError, match="corpus-level"):
        stats.compare_systems(WhisperWER, "wer", rows(fewer_edits), rows(worse_edits), test="wilcoxon")
