"""The stored rows an export writes: :func:`collect` gathers them per system configuration.

Values are the stored rows of the suite's current version under the same metric keys
(metric version, options and checkpoints) the leaderboard reads, and the means are the
leaderboard's (:func:`urgentbench.report.summary.summarize`, without the ``--missing
worst`` fill). The writers are :mod:`urgentbench.report.urgent_format` and
:mod:`urgentbench.report.long_table`; :func:`urgentbench.report.export.export` picks one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from urgentbench.pipeline.specs import MetricSpec, ProducerSpec, score_key
from urgentbench.report.publish import stored_systems
from urgentbench.report.summary import SystemSummary, summarize, unique_names
from urgentbench.store import ResultStore, ScoreRow
from urgentbench.suites import Suite


class ExportError(ValueError):
    """Results that cannot be exported as asked (nothing stored, unknown system, ...); one line."""


@dataclass
class SystemResults:
    """The stored rows of one system configuration on a suite, per metric.

    Attributes:
        summary: The system's summary (its means, as the leaderboard computes them).
        name: The name a leaderboard shows for it.
        folder: Its folder name in the ``urgent`` format (file-system safe, unique).
        rows: Metric name -> utterance id -> stored row (applicable utterances only).
        runs: Metric name -> utterance id -> id of the run that wrote the row.
    """

    summary: SystemSummary
    name: str
    folder: str
    rows: dict[str, dict[str, ScoreRow]] = field(default_factory=dict)
    runs: dict[str, dict[str, int]] = field(default_factory=dict)


def select_systems(store: ResultStore, suite: Suite, wanted: Iterable[str] | None = None) -> list[str] | None:
    """Stored system names matching ``wanted`` (a system or display name), None for all.

    Raises:
        ExportError: When nothing is stored for the suite version, or for a name asked for
            (the message lists the stored systems).
    """
    if not store.systems(suite.name, suite.version):
        raise ExportError(
            f"{store.path}: no results stored for {suite.name} v{suite.version}; "
            f"run `urgentbench run --suite {suite.name} ...` first"
        )
    try:
        return stored_systems(store, suite, [w for w in (wanted or []) if w], store.path)
    except ValueError as exc:
        raise ExportError(str(exc)) from None


def collect(
    store: ResultStore, suite: Suite, metrics: list[MetricSpec], systems: Iterable[str] | None = None
) -> list[SystemResults]:
    """Every stored row of the chosen systems (default: all) for ``metrics`` on ``suite``.

    Raises:
        ExportError: When nothing is stored, or a system asked for is not.
    """
    chosen = select_systems(store, suite, systems)
    utterances = suite.utterances()
    summaries = summarize(store, suite, metrics, systems=chosen, utterances=utterances)
    names = unique_names(summaries)
    folders = _folder_names(summaries)
    out = []
    for s in summaries:
        result = SystemResults(summary=s, name=names[id(s)], folder=folders[id(s)])
        producer = ProducerSpec(name=s.system, config_hash=s.config_hash)
        for metric in metrics:
            ids = {u.id for u in utterances if metric.applies_to(u)}
            key = score_key(suite, producer, metric)
            result.rows[metric.name] = {r.utt_id: r for r in store.rows(key) if r.utt_id in ids}
            result.runs[metric.name] = store.row_runs(key)
        out.append(result)
    return out


def _folder_names(summaries: list[SystemSummary]) -> dict[int, str]:
    """``id(summary)`` -> a file-system-safe, unique folder name (the display name; ``-<config hash>`` when shared)."""
    safe = {id(s): _safe_name(s.display_name or s.system) for s in summaries}
    counts: dict[str, int] = {}
    for name in safe.values():
        counts[name] = counts.get(name, 0) + 1
    return {id(s): safe[id(s)] if counts[safe[id(s)]] == 1 else f"{safe[id(s)]}-{s.config_hash}" for s in summaries}


def _safe_name(name: str) -> str:
    """``name`` with every character outside ``[A-Za-z0-9._+-]`` replaced by ``_`` (never empty, ``.`` or ``..``)."""
    out = re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip(".")
    return out or "system"
