"""Aggregate stored results per system and write URGENT-style leaderboards (Markdown, CSV, JSON)."""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import urgentbench
from urgentbench.metrics import CATEGORIES
from urgentbench.ranking import rank_systems
from urgentbench.report import stats
from urgentbench.runner import MetricSpec, ProducerSpec, score_key
from urgentbench.manifest import Utterance
from urgentbench.store import ResultStore
from urgentbench.suites import Suite

logger = logging.getLogger(__name__)


@dataclass
class SystemSummary:
    """System-level values of one system configuration on one suite version."""

    system: str
    config_hash: str
    display_name: str
    metadata: dict[str, Any]
    values: dict[str, float | None] = field(default_factory=dict)
    n_valid: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    failure_examples: dict[str, str] = field(default_factory=dict)
    scored: dict[str, int] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)
    #: metric -> why stored scores were not used (other options, version or checkpoints)
    stale: dict[str, str] = field(default_factory=dict)
    #: metric name -> utterance id -> stored result dict (successful rows only); for statistics
    per_utterance: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def complete(self) -> bool:
        """True when every metric has a row (value or error) for every applicable utterance."""
        return all(self.scored.get(m, 0) >= n for m, n in self.expected.items())


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
    ids = {u.id for u in utterances}
    out = []
    for info in store.systems(suite.name, suite.version):
        if systems and info["system"] not in systems:
            continue
        producer = ProducerSpec(name=info["system"], config_hash=info["config_hash"])
        summary = SystemSummary(info["system"], info["config_hash"], info["display_name"], info["metadata"])
        for metric in metrics:
            cls = metric.cls
            key = score_key(suite, producer, metric)
            rows = [r for r in store.rows(key) if r.utt_id in ids]
            summary.expected[metric.name] = sum(metric.applies_to(u) for u in utterances)
            summary.scored[metric.name] = len(rows)
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
            results = [r.result for r in rows if r.result is not None]
            summary.per_utterance[metric.name] = {r.utt_id: r.result for r in rows if r.result is not None}
            for output in cls.outputs:
                summary.values[output.name] = cls.aggregate(output.name, results)
                summary.n_valid[output.name] = sum(1 for r in results if r.get(output.name) is not None)
        out.append(summary)
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
) -> dict[str, Any]:
    """Rank complete systems with URGENT's rule and return the leaderboard as a dict.

    Systems that have not been scored on every utterance are listed under ``incomplete``
    and not ranked (their means would not be comparable), unless ``allow_partial``.
    Every value carries its 95 % bootstrap interval (``ci``), and every system but the
    first its paired-test p-values against the first (``p_vs_first``); see
    :mod:`urgentbench.report.stats`.

    ``categories`` (category -> ranked outputs) overrides the suite card's, e.g. with a
    protocol's (``protocol`` names it in the result). ``packages`` (package -> versions,
    :meth:`urgentbench.store.ResultStore.package_versions`) is recorded, and a package with
    more than one version is flagged.
    """
    directions, descriptions = _directions(metrics)
    chosen = suite.categories if categories is None else categories
    categories = {c: [o for o in outs if o in directions] for c, outs in chosen.items()}
    categories = {c: outs for c, outs in categories.items() if outs}
    order = {c: i for i, c in enumerate(CATEGORIES)}
    categories = dict(sorted(categories.items(), key=lambda kv: order.get(kv[0], len(order))))
    ranked_outputs = [o for outs in categories.values() for o in outs]
    extra_outputs = [o for o in directions if o not in ranked_outputs]

    names = _unique_names(summaries)
    eligible = [s for s in summaries if s.complete or allow_partial]
    incomplete = [s for s in summaries if not (s.complete or allow_partial)]
    for s in incomplete:
        logger.warning(
            "%s is not ranked: scored on %s of the suite's utterances",
            names[id(s)],
            ", ".join(f"{m} {s.scored.get(m, 0)}/{n}" for m, n in s.expected.items()),
        )
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
                "failures": s.failures,
                "failure_examples": s.failure_examples,
                "ci": system_intervals(s, metrics, n_resamples, seed),
            }
        )
    rows.sort(key=lambda r: (r["overall"] if r["overall"] is not None else float("inf"), r["system"]))
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
            {"system": names[id(s)], "scored": s.scored, "expected": s.expected, "stale": s.stale}
            for s in incomplete
        ],
    }


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
        cells = [str(i), row["system"]]
        for group, output, _ in cols:
            rank = row["ranks"].get(output) if group != "not ranked" else None
            cells.append(_fmt(row["values"].get(output)) + _rank(rank))
        cells += [_fmt(row["categories"].get(c), 2) for c in lb["categories"]]
        cells.append(f"**{_fmt(row['overall'], 3)}**")
        lines.append("| " + " | ".join(cells) + " |")
    failures = [
        f"- {row['system']}: {m} failed on {n} utterance(s), e.g. {row['failure_examples'].get(m, '')}"
        for row in lb["rows"]
        for m, n in row["failures"].items()
        if n
    ]
    if failures:
        lines += ["", "Missing values (failures are excluded from means, never counted as 0):", *failures]
    if lb["incomplete"]:
        lines += ["", "Not ranked (incomplete): " + ", ".join(r["system"] for r in lb["incomplete"])]
        lines += [f"- {r['system']}: {reason}" for r in lb["incomplete"] for reason in r.get("stale", {}).values()]
    return "\n".join(lines) + "\n"


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
        line: list[Any] = [i, row["system"], row["config_hash"]]
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
