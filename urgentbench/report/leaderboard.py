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

import csv
import dataclasses
import io
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import urgentbench
from urgentbench.metrics import CATEGORIES
from urgentbench.ranking import rank_systems
from urgentbench.report import stats
from urgentbench.report.tables import markdown_escape
from urgentbench.runner import MetricSpec, ProducerSpec, score_key
from urgentbench.manifest import Utterance
from urgentbench.store import PARTICIPANT, ResultStore
from urgentbench.suites import Suite

logger = logging.getLogger(__name__)

#: Missing-value policies of :func:`build_leaderboard` (see the module docstring).
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
) -> dict[str, Any]:
    """Rank complete systems with URGENT's rule and return the leaderboard as a dict.

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
    more than one version is flagged.
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

    names = _unique_names(summaries)
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
            {
                "system": name,
                "config_hash": s.config_hash,
                "metadata": s.metadata,
                "overall": ranking.overall[name] if ranking else None,
                "categories": ranking.category_scores[name] if ranking else {},
                "values": s.values,
                "ranks": ranking.ranks[name] if ranking else {},
                "n_valid": s.n_valid,
                # metric failures on valid outputs (nan-mean); a participant's are below when any
                "failures": {m.name: _metric_failures(s, m.name) for m in metrics},
                "failure_examples": _metric_failure_examples(s),
                "ci": system_intervals(s, metrics, n_resamples, seed),
                **_filled_fields(s),
            }
        )
    # a tie lists the system with fewer filled (worst-value) utterances first, then by name
    rows.sort(key=lambda r: (
        r["overall"] if r["overall"] is not None else float("inf"), sum(r.get("filled", {}).values()), r["system"]
    ))
    by_name = {names[id(s)]: s for s in eligible}
    for row in rows[1:]:
        row["p_vs_first"] = paired_p_values(by_name[row["system"]], by_name[rows[0]["system"]], metrics, n_resamples, seed)
    return {
        "suite": suite.name,
        "suite_version": suite.version,
        "manifest_sha256": suite.manifest_sha256,
        "n_utterances": len(suite.utterances()),
        "tie_method": tie,
        "protocol": protocol,
        "categories": categories,
        "other_metrics": extra_outputs,
        "higher_is_better": directions,
        "descriptions": descriptions,
        "metric_versions": {m.name: m.cls.version for m in metrics},
        "metric_models": {
            m.name: m.cls.model_files({**m.cls.default_options(), **dict(m.options)}) for m in metrics
        },
        "not_computed": _not_computed(protocol, ranked_outputs),
        "packages": packages or {},
        "mixed_packages": {name: v for name, v in (packages or {}).items() if len(v) > 1},
        "urgentbench": urgentbench.__version__,
        "statistics": {**stats.describe(n_resamples, seed), "paired_reference": rows[0]["system"] if rows else None},
        "rows": rows,
        "incomplete": [
            {
                "system": names[id(s)], "scored": s.scored, "expected": s.expected, "stale": s.stale,
                "reason": s.shortfall(), **_filled_fields(s),
            }
            for s in incomplete
        ],
        # recorded only when not the default, so default leaderboards stay as they were
        **({"missing_policy": missing} if missing != UNRANKED else {}),
    }


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


def _unique_names(summaries: list[SystemSummary]) -> dict[int, str]:
    counts: dict[str, int] = {}
    for s in summaries:
        counts[s.display_name] = counts.get(s.display_name, 0) + 1
    return {id(s): s.display_name if counts[s.display_name] == 1 else f"{s.display_name} [{s.config_hash}]" for s in summaries}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _rank(r: float | None) -> str:
    if r is None:
        return ""
    return f" ({int(r)})" if float(r).is_integer() else f" ({r:.1f})"


def table_columns(lb: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(group, output, header) for every value column, ranked categories first."""
    cols = []
    for category, outputs in lb["categories"].items():
        for o in outputs:
            cols.append((category, o, f"{o} {'↑' if lb['higher_is_better'][o] else '↓'}"))
    for o in lb["other_metrics"]:
        cols.append(("not ranked", o, f"{o} {'↑' if lb['higher_is_better'][o] else '↓'}"))
    return cols


def _not_computed(protocol: str | None, present: list[str]) -> list[str]:
    """Outputs the protocol ranks that have no values in this leaderboard."""
    if not protocol:
        return []
    from urgentbench.protocols import get_protocol

    edition = get_protocol(protocol)
    return [r.output for refs in edition.categories.values() for r in refs if r.output not in present]


def provenance_notes(lb: dict[str, Any], code: str = "`", strong: str = "**") -> list[str]:
    """Protocol, checkpoints, absent protocol metrics and mixed package versions, one note each.

    ``code`` and ``strong`` wrap names and warnings (Markdown by default; HTML callers pass
    empty strings and escape the text themselves).
    """
    notes = []
    if lb.get("protocol"):
        notes.append(f"Protocol: {code}{lb['protocol']}{code} ({code}urgentbench protocols show {lb['protocol']}{code}).")
        if lb.get("not_computed"):
            notes.append(
                "Ranked by the protocol but without values here (left out of the categories): "
                + ", ".join(lb["not_computed"]) + "."
            )
    models = [
        f"{metric}: {name} {code}{digest[:16]}…{code}" if digest else f"{metric}: {name} (no digest)"
        for metric, files in lb.get("metric_models", {}).items()
        for name, digest in files.items()
    ]
    if models:
        notes.append("Model checkpoints (sha256): " + "; ".join(models) + ".")
    mixed = lb.get("mixed_packages") or {}
    if mixed:
        notes.append(
            f"{strong}Mixed package versions{strong}: these values were computed with "
            + "; ".join(f"{name} {', '.join(v)}" for name, v in mixed.items())
            + " (rescore with one environment to compare like with like)."
        )
    return notes


def to_markdown(lb: dict[str, Any]) -> str:
    """The leaderboard as a Markdown table: ``value (rank)`` cells, grouped by category."""
    cols = table_columns(lb)
    header = ["#", "system"] + [f"{h}<br>*{g}*" for g, _, h in cols] + [f"{c}<br>*score*" for c in lb["categories"]] + ["overall ↓"]
    lines = [
        f"# Leaderboard: {lb['suite']} v{lb['suite_version']}",
        "",
        f"{lb['n_utterances']} utterances · manifest sha256 `{lb['manifest_sha256'][:16]}…` · "
        f"ties: {lb['tie_method']} · urgentbench {lb['urgentbench']}",
        "",
        *[line for note in provenance_notes(lb) for line in (note, "")],
        "Cells show `system mean (rank)`; a category score is the mean of its metrics' ranks and "
        "the overall score the mean of the category scores (lower is better).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * len(header)) + "|",
    ]
    for i, row in enumerate(lb["rows"], 1):
        cells = [str(i), markdown_escape(row["system"])]
        for group, output, _ in cols:
            rank = row["ranks"].get(output) if group != "not ranked" else None
            cells.append(_fmt(row["values"].get(output)) + _rank(rank))
        cells += [_fmt(row["categories"].get(c), 2) for c in lb["categories"]]
        cells.append(f"**{_fmt(row['overall'], 3)}**")
        lines.append("| " + " | ".join(cells) + " |")
    esc = markdown_escape
    failures = [
        f"- {esc(row['system'])}: {esc(m)} failed on {n} utterance(s), e.g. {esc(row['failure_examples'].get(m, ''))}"
        for row in lb["rows"]
        for m, n in row["failures"].items()
        if n
    ]
    if failures:
        lines += ["", "Missing values (failures are excluded from means, never counted as 0):", *failures]
    if lb.get("missing_policy") == WORST:
        lines += [
            "",
            "Missing outputs (`--missing worst`): a value a system lacks by its own failure (output missing, "
            "unusable or silent) or never scored takes the worst value of the other systems on that utterance.",
        ]
        for row in lb["rows"]:
            filled = row.get("filled") or {}
            if filled or row.get("participant_failures"):
                lines.append(
                    f"- {esc(row['system'])}: "
                    + (", ".join(f"{esc(m)} {n}" for m, n in filled.items()) or "no")
                    + " value(s) filled"
                    + "".join(f"; {esc(m)}: {esc(e)}" for m, e in list(row.get("participant_examples", {}).items())[:1])
                )
    if lb["incomplete"]:
        lines += ["", "Not ranked (incomplete): " + ", ".join(esc(r["system"]) for r in lb["incomplete"])]
        lines += [f"- {esc(r['system'])}: {esc(r['reason'])}" for r in lb["incomplete"] if r.get("reason")]
        lines += [
            f"- {esc(r['system'])}: {esc(reason)}" for r in lb["incomplete"] for reason in r.get("stale", {}).values()
        ]
    return "\n".join(lines) + "\n"


def csv_text(text: str) -> str:
    """A text cell that a spreadsheet will not run as a formula (a leading ``'`` before ``= + - @``)."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(lb: dict[str, Any]) -> str:
    """One row per system: values, ranks, category scores, overall."""
    cols = table_columns(lb)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["position", "system", "config_hash"]
    for group, o, _ in cols:
        header.append(o)
        if group != "not ranked":
            header.append(f"{o}_rank")
    header += [f"score_{c}" for c in lb["categories"]] + ["overall"]
    writer.writerow(header)
    for i, row in enumerate(lb["rows"], 1):
        line: list[Any] = [i, csv_text(row["system"]), csv_text(row["config_hash"])]
        for group, o, _ in cols:
            v = row["values"].get(o)
            line.append("" if v is None else f"{v:.6g}")
            if group != "not ranked":
                line.append(row["ranks"].get(o, ""))
        line += [f"{row['categories'][c]:.4f}" if c in row["categories"] else "" for c in lb["categories"]]
        line.append("" if row["overall"] is None else f"{row['overall']:.4f}")
        writer.writerow(line)
    return buf.getvalue()


def write_leaderboard(
    lb: dict[str, Any], out_dir: str | Path, formats: tuple[str, ...] | list[str] = ("md", "csv", "json")
) -> list[Path]:
    """Write ``leaderboard.md``, ``.csv`` and/or ``.json`` (those in ``formats``) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = {
        "md": lambda: to_markdown(lb),
        "csv": lambda: to_csv(lb),
        "json": lambda: json.dumps(lb, indent=2, sort_keys=False, ensure_ascii=False) + "\n",
    }
    paths = []
    for fmt, render in writers.items():
        if fmt in formats:
            path = out_dir / f"leaderboard.{fmt}"
            path.write_text(render(), encoding="utf-8")
            paths.append(path)
    return paths


def summaries_as_dicts(summaries: list[SystemSummary]) -> list[dict[str, Any]]:
    """Plain-dict form of summaries (for JSON output)."""
    out = []
    for s in summaries:
        d = asdict(s)
        d.pop("per_utterance", None)
        out.append(d)
    return out
