"""From the results store to report files: the work of ``urgentbench leaderboard`` and ``urgentbench table``.

:func:`leaderboard_report` reads the store once (summaries, package versions and the
per-condition breakdowns); :func:`write_leaderboard_report` writes ``leaderboard.md``,
``.csv``, ``.json``, ``.html`` (with its ``audio/``) and ``breakdown_<tag>.md``. For paper
tables, :func:`candidate_metric_classes`, :func:`select_systems` and
:func:`resolve_reference` turn the command's names into what
:func:`urgentbench.report.tables.build_table` takes.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from urgentbench.manifest import Utterance
from urgentbench.metrics import METRICS
from urgentbench.protocols import get_protocol
from urgentbench.report import html as html_page
from urgentbench.report.breakdown import Breakdown, breakdowns
from urgentbench.report.escape import one_line
from urgentbench.report.leaderboard import build_leaderboard
from urgentbench.report.render import write_leaderboard
from urgentbench.report.schema import Leaderboard
from urgentbench.report.summary import UNRANKED, SystemSummary, by_display_name, summarize
from urgentbench.runner import MetricSpec
from urgentbench.store import ResultStore
from urgentbench.suites import Suite

logger = logging.getLogger(__name__)

#: Formats of ``urgentbench leaderboard --format``.
LEADERBOARD_FORMATS = ("md", "csv", "json", "html")


def check_formats(formats: list[str]) -> list[str]:
    """``formats`` when every one is a leaderboard format.

    Raises:
        ValueError: Naming the unknown formats, in one line.
    """
    unknown = sorted(set(formats) - set(LEADERBOARD_FORMATS))
    if unknown:
        raise ValueError(f"--format: unknown format(s) {', '.join(unknown)}; use {', '.join(LEADERBOARD_FORMATS)}")
    return formats


def protocol_categories(protocol: str | None) -> dict[str, list[str]] | None:
    """The categories a protocol ranks (None without one); outputs it ranks that urgentbench cannot compute are logged."""
    if not protocol:
        return None
    edition = get_protocol(protocol)
    for ref in edition.missing():
        logger.warning("%s ranks %s, which urgentbench cannot compute: %s", edition.name, ref.output, ref.deviation)
    return edition.ranked_outputs()


def stored_systems(store: ResultStore, suite: Suite, wanted: list[str] | None, db: Path) -> list[str] | None:
    """``--systems`` as stored system names (a display name also matches); None when none are wanted.

    Raises:
        ValueError: For a name with nothing stored, in one line listing the stored systems.
    """
    if not wanted:
        return None
    stored = store.systems(suite.name, suite.version)
    found, unknown = [], []
    for name in wanted:
        match = [info["system"] for info in stored if name in (info["system"], info["display_name"])]
        found += match
        if not match:
            unknown.append(name)
    if unknown:
        names = ", ".join(sorted({one_line(info["system"]) for info in stored})) or "none"
        raise ValueError(
            f"--systems: nothing stored for {', '.join(repr(n) for n in unknown)} on {suite.name} "
            f"v{suite.version} in {db}; stored systems: {names}"
        )
    return list(dict.fromkeys(found))


@dataclass
class LeaderboardReport:
    """A leaderboard with what its files need besides it."""

    leaderboard: Leaderboard
    #: Every system summary, not ranked ones included (where their audio is, for the page)
    summaries: list[SystemSummary]
    metrics: list[MetricSpec]
    #: Breakdowns asked for (``--by``), each written as ``breakdown_<tag>.md``
    breakdowns: list[Breakdown] = field(default_factory=list)
    #: Breakdowns shown on the HTML page (those asked for, else the suite's default tags)
    page_breakdowns: list[Breakdown] = field(default_factory=list)

    def breakdown_markdown(self, breakdown: Breakdown) -> str:
        """The Markdown table of a breakdown, every output of the leaderboard's metrics as a column."""
        outputs = [(o.name, o.higher_is_better) for m in self.metrics for o in m.cls.outputs]
        return breakdown.markdown(outputs)


def leaderboard_report(
    store: ResultStore,
    suite: Suite,
    metrics: list[MetricSpec],
    *,
    systems: list[str] | None = None,
    by: list[str] | None = None,
    html: bool = False,
    tie: str = "dense",
    missing: str = UNRANKED,
    protocol: str | None = None,
    categories: dict[str, list[str]] | None = None,
    configs: Collection[tuple[str, str]] | None = None,
    utterances: list[Utterance] | None = None,
) -> LeaderboardReport:
    """Summarize every stored system of ``suite`` and rank them.

    Args:
        store: The results store.
        suite: The suite.
        metrics: Metrics to aggregate.
        systems: Only these stored system names (default: all).
        by: Tags to break the results down by (:mod:`urgentbench.report.breakdown`).
        html: Also collect the page's breakdowns (``by``, else :func:`~urgentbench.report.html.default_tags`).
        tie: Tie method of the ranks.
        missing: Missing-value policy (:data:`~urgentbench.report.summary.MISSING_POLICIES`).
        protocol: The protocol ranked by (recorded), with its ``categories``.
        categories: Category -> ranked outputs (default: the suite card's).
        configs: Only these ``(system, config hash)`` configurations (default: every
            configuration of the systems).
        utterances: Rank on these utterances only (default: the whole manifest; the
            leaderboard's ``n_utterances`` counts them). Breakdowns always use the whole manifest.

    Raises:
        ValueError: For a tag in ``by`` that no utterance has, or an unknown policy.
    """
    summaries = summarize(store, suite, metrics, systems=systems, utterances=utterances)
    if configs is not None:
        summaries = [s for s in summaries if (s.system, s.config_hash) in set(configs)]
    packages = store.package_versions(suite.name, suite.version, [(s.system, s.config_hash) for s in summaries])
    asked = breakdowns(store, suite, metrics, by, systems) if by else []
    page = []
    if html:
        page = asked or breakdowns(store, suite, metrics, html_page.default_tags(suite), systems, skip_unknown=True)
    lb = build_leaderboard(
        suite, summaries, metrics, tie=tie, missing=missing, categories=categories, protocol=protocol, packages=packages,
        n_utterances=None if utterances is None else len(utterances),
    )
    return LeaderboardReport(lb, summaries, metrics, asked, page)


def write_leaderboard_report(
    report: LeaderboardReport,
    suite: Suite,
    out_dir: str | Path,
    formats: list[str],
    results_dir: str | Path,
    audio_utterances: int = 3,
) -> list[Path]:
    """Write the leaderboard in ``formats`` and a ``breakdown_<tag>.md`` per breakdown into ``out_dir``.

    The HTML page gets ``audio_utterances`` utterances to listen to (0: none), read from
    ``results_dir``.
    """
    out_dir = Path(out_dir)
    lb = report.leaderboard
    paths = write_leaderboard(lb, out_dir, formats)
    if "html" in formats:
        audio = html_page.prepare_audio(
            suite, [r.system for r in lb.rows + lb.incomplete], by_display_name(report.summaries), results_dir,
            out_dir, n_utterances=audio_utterances,
        ) if audio_utterances > 0 else []
        paths.append(html_page.write_html(lb, out_dir, report.page_breakdowns, audio))
    for breakdown in report.breakdowns:
        path = out_dir / f"breakdown_{breakdown.tag}.md"
        path.write_text(report.breakdown_markdown(breakdown), encoding="utf-8")
        paths.append(path)
    return paths


def candidate_metric_classes(suite: Suite) -> list[Any]:
    """The suite's metric classes first, then every other registered metric that loads."""
    classes = [METRICS.get(n) for n in suite.metrics]
    for entry in METRICS:
        try:
            cls = entry.load()
        except Exception:  # a broken third-party metric cannot provide columns
            continue
        if cls not in classes:
            classes.append(cls)
    return classes


def select_systems(summaries: list[SystemSummary], wanted: list[str] | None, suite: Suite) -> dict[str, SystemSummary]:
    """Shown name -> summary of the wanted systems (a shown or stored name matches), in the order asked; all without ``wanted``.

    Raises:
        ValueError: For a name with nothing stored, listing the stored names.
    """
    by_name = by_display_name(summaries)
    if not wanted:
        return by_name
    rows: dict[str, SystemSummary] = {}
    for name in wanted:
        match = [n for n, s in by_name.items() if name in (n, s.system)]
        if not match:
            stored = ", ".join(one_line(n) for n in by_name) or "none"
            raise ValueError(f"no stored results of {name!r} on {suite.name}; stored: {stored}")
        rows.update({n: by_name[n] for n in match})
    return rows


def resolve_reference(reference: str | None, rows: dict[str, SystemSummary]) -> str | None:
    """The shown name of a reference system given by shown or stored name (as given when it matches none or several)."""
    if reference is not None and reference not in rows:
        alias = [n for n, s in rows.items() if s.system == reference]
        return alias[0] if len(alias) == 1 else reference
    return reference
