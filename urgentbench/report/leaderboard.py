"""Aggregate stored results per system and write URGENT-style leaderboards (Markdown, CSV, JSON).

Failure policy (README "Failure policy"). A stored failure is either the participant's (no
usable output: missing, unreadable, wrong length or rate, NaN, silent, the system crashed)
or the metric's (it failed on a valid output). Metric failures keep URGENT's nan-mean and
are counted on the leaderboard. A participant's failure is never a free pass:

- ``missing="unranked"`` (default): a system is ranked only when every applicable utterance
  has a value or a metric failure for every metric; otherwise it is listed as not ranked,
  with how many outputs were missing or unusable.
- ``missing="worst"`` (``--missing worst``; ``--allow-partial`` is another name for it):
  every missing value (a participant's failure, or an utterance not scored) takes the worst
  value of that metric output among the other systems on the leaderboard for that
  utterance (for corpus-level WER/CER: the whole utterance result with the most edits, so
  the fill adds that transcript's edits to the corpus rate); then the system is ranked.
  An utterance no other system has a value for stays missing (left out of the mean).

Either way a partial copy of a system's outputs never ranks above the same outputs
submitted in full.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import urgentbench
from urgentbench.metrics import CATEGORIES
from urgentbench.protocols import get_protocol
from urgentbench.ranking import rank_systems
from urgentbench.report import stats
from urgentbench.report.render import (
    csv_text,
    provenance_notes,
    to_csv,
    to_json,
    to_markdown,
    write_leaderboard,
)
from urgentbench.report.schema import Leaderboard, LeaderboardRow, NotRanked, Statistics
from urgentbench.report.summary import (
    MISSING_POLICIES,
    UNRANKED,
    WORST,
    SystemSummary,
    by_display_name,
    fill_worst,
    paired_p_values,
    summaries_as_dicts,
    summarize,
    system_intervals,
    unique_names,
)
from urgentbench.runner import MetricSpec
from urgentbench.suites import Suite

__all__ = [
    "MISSING_POLICIES", "UNRANKED", "WORST", "Leaderboard", "LeaderboardRow", "NotRanked", "SystemSummary",
    "build_leaderboard", "by_display_name", "csv_text", "fill_worst", "paired_p_values", "provenance_notes",
    "summaries_as_dicts", "summarize", "system_intervals", "table_columns", "to_csv", "to_json", "to_markdown",
    "unique_names", "write_leaderboard",
]

logger = logging.getLogger(__name__)


def _directions(metrics: list[MetricSpec]) -> tuple[dict[str, bool], dict[str, str]]:
    directions, descriptions = {}, {}
    for m in metrics:
        for o in m.cls.outputs:
            directions[o.name] = o.higher_is_better
            descriptions[o.name] = o.description
    return directions, descriptions


def build_leaderboard(
    suite: Suite,
    summaries: list[SystemSummary],
    metrics: list[MetricSpec],
    tie: str = "dense",
    allow_partial: bool = False,
    n_resamples: int = stats.N_RESAMPLES,
    seed: int = stats.SEED,
    categories: dict[str, list[str]] | None = None,
    protocol: str | None = None,
    packages: dict[str, list[str]] | None = None,
    missing: str = UNRANKED,
    n_utterances: int | None = None,
) -> Leaderboard:
    """Rank complete systems with URGENT's rule and return the :class:`~urgentbench.report.schema.Leaderboard`.

    ``missing`` is the policy for a participant's failures (missing or unusable outputs)
    and utterances never scored (module docstring): ``"unranked"`` (default) lists such a
    system under ``incomplete`` with the reason and does not rank it; ``"worst"`` fills each
    missing value with the worst value of the other systems on that utterance and ranks it
    (``allow_partial`` means ``"worst"``; the policy is recorded as ``missing_policy`` when
    it is not the default). Metric failures on valid outputs keep URGENT's nan-mean and are
    counted per system (``failures``). Every value carries its 95 % bootstrap interval (``ci``), and every system but the
    first its paired-test p-values against the first (``p_vs_first``); see
    :mod:`urgentbench.report.stats`.

    ``categories`` (category -> ranked outputs) overrides the suite card's, e.g. with a
    protocol's (``protocol`` names it in the result). ``packages`` (package -> versions,
    :meth:`urgentbench.store.ResultStore.package_versions`) is recorded, and a package with
    more than one version is flagged. ``n_utterances`` is the number of utterances the
    summaries cover when they cover fewer than the whole manifest.
    """
    if allow_partial:
        missing = WORST
    if missing not in MISSING_POLICIES:
        raise ValueError(f"unknown missing-value policy {missing!r}; use one of {', '.join(MISSING_POLICIES)}")
    if missing == WORST:
        summaries = fill_worst(summaries, metrics)
    directions, descriptions = _directions(metrics)
    chosen = suite.categories if categories is None else categories
    categories = {c: [o for o in outs if o in directions] for c, outs in chosen.items()}
    categories = {c: outs for c, outs in categories.items() if outs}
    order = {c: i for i, c in enumerate(CATEGORIES)}
    categories = dict(sorted(categories.items(), key=lambda kv: order.get(kv[0], len(order))))
    ranked_outputs = [o for outs in categories.values() for o in outs]
    extra_outputs = [o for o in directions if o not in ranked_outputs]

    names = unique_names(summaries)
    eligible = [s for s in summaries if s.complete or missing == WORST]
    incomplete = [s for s in summaries if not (s.complete or missing == WORST)]
    for s in incomplete:
        logger.warning("%s is not ranked: %s", names[id(s)], s.shortfall())
    for s in summaries:
        for reason in s.stale.values():
            logger.warning("%s: %s", names[id(s)], reason)
    ranking = rank_systems(
        {names[id(s)]: s.values for s in eligible}, directions, categories, tie
    ) if eligible and categories else None
    rows = []
    for s in eligible:
        name = names[id(s)]
        rows.append(
            LeaderboardRow(
                system=name,
                config_hash=s.config_hash,
                metadata=s.metadata,
                overall=ranking.overall[name] if ranking else None,
                categories=ranking.category_scores[name] if ranking else {},
                values=s.values,
                ranks=ranking.ranks[name] if ranking else {},
                n_valid=s.n_valid,
                # metric failures on valid outputs (nan-mean); a participant's are below when any
                failures={m.name: _metric_failures(s, m.name) for m in metrics},
                failure_examples=_metric_failure_examples(s),
                ci=system_intervals(s, metrics, n_resamples, seed),
                **_filled_fields(s),
            )
        )
    # a tie lists the system with fewer filled (worst-value) utterances first, then by name
    rows.sort(key=lambda r: (r.overall if r.overall is not None else float("inf"), r.n_filled, r.system))
    by_name = {names[id(s)]: s for s in eligible}
    rows[1:] = [
        dataclasses.replace(
            row, p_vs_first=paired_p_values(by_name[row.system], by_name[rows[0].system], metrics, n_resamples, seed)
        )
        for row in rows[1:]
    ]
    return Leaderboard(
        suite=suite.name,
        suite_version=suite.version,
        manifest_sha256=suite.manifest_sha256,
        n_utterances=len(suite.utterances()) if n_utterances is None else n_utterances,
        tie_method=tie,
        protocol=protocol,
        categories=categories,
        other_metrics=extra_outputs,
        higher_is_better=directions,
        descriptions=descriptions,
        metric_versions={m.name: m.cls.version for m in metrics},
        metric_models={
            m.name: m.cls.model_files({**m.cls.default_options(), **dict(m.options)}) for m in metrics
        },
        not_computed=_not_computed(protocol, ranked_outputs),
        packages=packages or {},
        mixed_packages={name: v for name, v in (packages or {}).items() if len(v) > 1},
        urgentbench=urgentbench.__version__,
        statistics=Statistics(**stats.describe(n_resamples, seed), paired_reference=rows[0].system if rows else None),
        rows=rows,
        incomplete=[
            NotRanked(
                system=names[id(s)], scored=s.scored, expected=s.expected, stale=s.stale,
                reason=s.shortfall(), **_filled_fields(s),
            )
            for s in incomplete
        ],
        # recorded only when not the default, so default leaderboards stay as they were
        missing_policy=missing if missing != UNRANKED else None,
    )


def _metric_failures(s: SystemSummary, metric: str) -> int:
    """Failures of ``metric`` on valid outputs (the metric's, not the participant's)."""
    if metric in s.metric_failures:
        return s.metric_failures[metric]
    return s.failures.get(metric, 0) - s.participant_failures.get(metric, 0)


def _metric_failure_examples(s: SystemSummary) -> dict[str, str]:
    if s.metric_failures:
        return dict(s.metric_failure_examples)
    return {m: e for m, e in s.failure_examples.items() if not s.participant_failures.get(m)}


def _filled_fields(s: SystemSummary) -> dict[str, Any]:
    """The participant's failures, utterances not scored and filled values, only when there are any."""
    unscored = {m: len(ids) for m, ids in s.unscored_ids.items() if ids}
    if not (any(s.participant_failures.values()) or unscored or any(s.filled.values())):
        return {}
    out: dict[str, Any] = {
        "participant_failures": {m: n for m, n in s.participant_failures.items() if n},
        "participant_examples": dict(s.participant_examples),
        "not_scored": unscored,
    }
    if s.filled:
        out["filled"] = {m: n for m, n in s.filled.items() if n}
    return out


def _not_computed(protocol: str | None, present: list[str]) -> list[str]:
    """Outputs the protocol ranks that have no values in this leaderboard."""
    if not protocol:
        return []
    edition = get_protocol(protocol)
    return [r.output for refs in edition.categories.values() for r in refs if r.output not in present]


def table_columns(lb: Leaderboard) -> list[tuple[str, str, str]]:
    """(group, output, header) for every value column, ranked categories first (:meth:`Leaderboard.columns`)."""
    return lb.columns()
