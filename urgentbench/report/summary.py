"""System summaries: a system's stored results on a suite, aggregated per metric.

:func:`summarize` reads the store; :func:`fill_worst` applies the ``--missing worst`` policy
(module :mod:`urgentbench.report.leaderboard` describes both policies);
:func:`system_intervals` and :func:`paired_p_values` add the statistics of
:mod:`urgentbench.report.stats`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from urgentbench.manifest import Utterance
from urgentbench.report import stats
from urgentbench.runner import MetricSpec, ProducerSpec, score_key
from urgentbench.store import PARTICIPANT, ResultStore
from urgentbench.suites import Suite

#: Missing-value policies of :func:`~urgentbench.report.leaderboard.build_leaderboard`.
UNRANKED = "unranked"
WORST = "worst"
MISSING_POLICIES = (UNRANKED, WORST)


@dataclass
class SystemSummary:
    """System-level values of one system configuration on one suite version."""

    system: str
    config_hash: str
    display_name: str
    metadata: dict[str, Any]
    values: dict[str, float | None] = field(default_factory=dict)
    n_valid: dict[str, int] = field(default_factory=dict)
    #: metric -> stored failures of every kind, and one example (``utt: reason``)
    failures: dict[str, int] = field(default_factory=dict)
    failure_examples: dict[str, str] = field(default_factory=dict)
    scored: dict[str, int] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)
    #: metric -> why stored scores were not used (other options, version or checkpoints)
    stale: dict[str, str] = field(default_factory=dict)
    #: metric -> failures that are the participant's (no usable output), and one example
    participant_failures: dict[str, int] = field(default_factory=dict)
    participant_examples: dict[str, str] = field(default_factory=dict)
    #: metric -> failures of the metric on a valid output (left out of URGENT's nan-mean), one example
    metric_failures: dict[str, int] = field(default_factory=dict)
    metric_failure_examples: dict[str, str] = field(default_factory=dict)
    #: metric -> values filled with the worst value of the other systems (``missing="worst"``)
    filled: dict[str, int] = field(default_factory=dict)
    #: utterances applicable to at least one metric
    n_applicable: int = 0
    #: metric name -> utterance id -> stored result dict (successful rows only); for statistics
    per_utterance: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict, repr=False, compare=False)
    #: metric name -> applicable utterance ids without a value by the participant's failure
    participant_ids: dict[str, set[str]] = field(default_factory=dict, repr=False, compare=False)
    #: metric name -> applicable utterance ids without any stored row
    unscored_ids: dict[str, set[str]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def complete(self) -> bool:
        """True when every applicable utterance has a value or a metric failure for every metric.

        A participant's failure (missing or unusable output) and an utterance never scored
        both leave the system incomplete: leaving out outputs is never a free pass.
        """
        return all(
            self.scored.get(m, 0) - self.participant_failures.get(m, 0) >= n for m, n in self.expected.items()
        )

    def shortfall(self) -> str:
        """Why the system is not complete, in one line (empty when it is)."""
        if self.complete:
            return ""
        n = self.n_applicable or max(self.expected.values(), default=0)
        parts = []
        bad = set().union(*self.participant_ids.values()) if self.participant_ids else set()
        n_bad = len(bad) or max(self.participant_failures.values(), default=0)
        if n_bad:
            example = next((e for e in self.participant_examples.values() if e), "")
            parts.append(
                f"{n_bad} of {n} outputs missing or unusable (the system's failure)"
                + (f", e.g. {example}" if example else "")
            )
        unscored = {
            m: len(self.unscored_ids[m]) if m in self.unscored_ids
            else expected - self.scored.get(m, 0)
            for m, expected in self.expected.items()
        }
        unscored = {m: k for m, k in unscored.items() if k > 0}
        if unscored:
            parts.append("not scored on " + ", ".join(f"{m} {k}/{self.expected[m]}" for m, k in unscored.items()))
        return "; ".join(parts)


def summarize(
    store: ResultStore,
    suite: Suite,
    metrics: list[MetricSpec],
    systems: list[str] | None = None,
    utterances: list[Utterance] | None = None,
) -> list[SystemSummary]:
    """Aggregate every stored system configuration of ``suite``.

    Args:
        store: The results store.
        suite: The suite (its current version's rows only).
        metrics: Metrics to aggregate.
        systems: Only these system names (default: all stored).
        utterances: Only these utterances (default: the whole manifest), for breakdowns.
    """
    utterances = suite.utterances() if utterances is None else utterances
    applicable = {m.name: {u.id for u in utterances if m.applies_to(u)} for m in metrics}
    n_applicable = len(set().union(*applicable.values())) if applicable else 0
    out = []
    for info in store.systems(suite.name, suite.version):
        if systems and info["system"] not in systems:
            continue
        producer = ProducerSpec(name=info["system"], config_hash=info["config_hash"])
        summary = SystemSummary(info["system"], info["config_hash"], info["display_name"], info["metadata"])
        summary.n_applicable = n_applicable
        for metric in metrics:
            cls = metric.cls
            key = score_key(suite, producer, metric)
            ids = applicable[metric.name]
            rows = [r for r in store.rows(key) if r.utt_id in ids]
            summary.expected[metric.name] = len(ids)
            summary.scored[metric.name] = len(rows)
            summary.unscored_ids[metric.name] = ids - {r.utt_id for r in rows}
            if len(rows) < summary.expected[metric.name]:
                others = store.other_configs(key)
                if others:
                    version, config, n = others[0]
                    summary.stale[metric.name] = (
                        f"{n} score(s) of {metric.name} were made with other options, metric version or "
                        f"model checkpoints (version {version}, config {config[:12]}, now version "
                        f"{key.metric_version}, config {key.metric_config[:12]}); they are not mixed in: "
                        f"score the system again"
                    )
            failed = [r for r in rows if r.error]
            summary.failures[metric.name] = len(failed)
            if failed:
                summary.failure_examples[metric.name] = f"{failed[0].utt_id}: {failed[0].error}"
            theirs = [r for r in failed if r.failure == PARTICIPANT]
            metric_failed = [r for r in failed if r.failure != PARTICIPANT]
            summary.participant_ids[metric.name] = {r.utt_id for r in theirs}
            summary.participant_failures[metric.name] = len(theirs)
            if theirs:
                summary.participant_examples[metric.name] = f"{theirs[0].utt_id}: {theirs[0].error}"
            summary.metric_failures[metric.name] = len(metric_failed)
            if metric_failed:
                summary.metric_failure_examples[metric.name] = f"{metric_failed[0].utt_id}: {metric_failed[0].error}"
            results = [r.result for r in rows if r.result is not None]
            summary.per_utterance[metric.name] = {r.utt_id: r.result for r in rows if r.result is not None}
            for output in cls.outputs:
                summary.values[output.name] = cls.aggregate(output.name, results)
                summary.n_valid[output.name] = sum(1 for r in results if r.get(output.name) is not None)
        out.append(summary)
    return out


def _valid(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _worst_row(cls: Any, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The worst value of every output of a metric among ``rows`` (one utterance, other systems).

    For a mean output the row gets that value; for a corpus-level output (WER, CER) the
    row of the worst per-utterance value is taken whole (its edit and length counts
    included), so the metric's corpus aggregate counts it as that worst transcript.
    """
    names = {o.name for o in cls.outputs}
    out: dict[str, Any] = {}
    for output in cls.outputs:
        candidates = [r for r in rows if _valid(r.get(output.name))]
        if not candidates:
            continue
        pick = (min if output.higher_is_better else max)(candidates, key=lambda r: float(r[output.name]))
        if output.aggregate != "mean":
            out.update({k: v for k, v in pick.items() if k not in names})
        out[output.name] = pick[output.name]
    return out or None


def fill_worst(summaries: list[SystemSummary], metrics: list[MetricSpec]) -> list[SystemSummary]:
    """Copies of ``summaries`` whose missing values take the worst value of the other systems.

    Every applicable utterance a system has no value for by its own failure (or that was
    never scored) gets, per metric output, the worst value among the *other* summaries'
    stored values on that utterance (:func:`_worst_row`); an utterance no other system has
    a value for stays missing. Metric failures on valid outputs are left alone (URGENT's
    nan-mean). System values are recomputed with the metric's own aggregate, and the
    statistics (intervals, paired tests) use the filled rows too. ``filled`` counts the
    values filled per metric.
    """
    stored = [{m.name: dict(s.per_utterance.get(m.name, {})) for m in metrics} for s in summaries]
    out = []
    for i, s in enumerate(summaries):
        filled_summary = dataclasses.replace(
            s, values=dict(s.values), per_utterance=dict(s.per_utterance), filled={}
        )
        for metric in metrics:
            cls = metric.cls
            owed = s.participant_ids.get(metric.name, set()) | s.unscored_ids.get(metric.name, set())
            if not owed:
                continue
            rows = dict(stored[i][metric.name])
            n = 0
            for utt_id in sorted(owed):
                others = [stored[j][metric.name][utt_id] for j in range(len(summaries))
                          if j != i and utt_id in stored[j][metric.name]]
                worst = _worst_row(cls, others)
                if worst is not None:
                    rows[utt_id] = worst
                    n += 1
            # utterance order, as stored rows come: identical outputs give bit-identical means
            rows = dict(sorted(rows.items()))
            filled_summary.per_utterance[metric.name] = rows
            filled_summary.filled[metric.name] = n
            for output in cls.outputs:
                filled_summary.values[output.name] = cls.aggregate(output.name, list(rows.values()))
        out.append(filled_summary)
    return out


def system_intervals(
    summary: SystemSummary, metrics: list[MetricSpec], n_resamples: int = stats.N_RESAMPLES, seed: int = stats.SEED
) -> dict[str, list[float] | None]:
    """Output -> ``[low, high]`` 95 % bootstrap interval of the system value (None when undefined)."""
    out: dict[str, list[float] | None] = {}
    for metric in metrics:
        rows = list(summary.per_utterance.get(metric.name, {}).values())
        for output in metric.cls.outputs:
            interval = stats.output_ci(metric.cls, output.name, rows, n_resamples, seed=seed)
            out[output.name] = None if interval is None else interval.as_list()
    return out


def paired_p_values(
    a: SystemSummary,
    b: SystemSummary,
    metrics: list[MetricSpec],
    n_resamples: int = stats.N_RESAMPLES,
    seed: int = stats.SEED,
    test: str = "permutation",
) -> dict[str, float | None]:
    """Output -> p-value of the paired test of system ``a`` against ``b`` (None when nothing is paired)."""
    out: dict[str, float | None] = {}
    for metric in metrics:
        rows_a = a.per_utterance.get(metric.name, {})
        rows_b = b.per_utterance.get(metric.name, {})
        for output in metric.cls.outputs:
            result = stats.compare_systems(metric.cls, output.name, rows_a, rows_b, test, n_resamples, seed)
            out[output.name] = None if result is None else result.p_value
    return out


def unique_names(summaries: list[SystemSummary]) -> dict[int, str]:
    """``id(summary)`` -> the name shown for it: the display name, with ``[config hash]`` when shared."""
    counts: dict[str, int] = {}
    for s in summaries:
        counts[s.display_name] = counts.get(s.display_name, 0) + 1
    return {id(s): s.display_name if counts[s.display_name] == 1 else f"{s.display_name} [{s.config_hash}]" for s in summaries}


def by_display_name(summaries: list[SystemSummary]) -> dict[str, SystemSummary]:
    """Summaries by the name a leaderboard shows for them (:func:`unique_names`), in the same order."""
    names = unique_names(summaries)
    return {names[id(s)]: s for s in summaries}


def summaries_as_dicts(summaries: list[SystemSummary]) -> list[dict[str, Any]]:
    """Plain-dict form of summaries (for JSON output)."""
    out = []
    for s in summaries:
        d = asdict(s)
        d.pop("per_utterance", None)
        out.append(d)
    return out
