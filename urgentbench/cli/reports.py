"""Report commands: ``leaderboard``, ``table`` and ``export`` (the work is in :mod:`urgentbench.report`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from urgentbench.cli.args import NON_NEGATIVE, plural, split_list
from urgentbench.layout import store_path
from urgentbench.pipeline.errors import RunError
from urgentbench.pipeline.resolve import resolve_metrics
from urgentbench.report import publish
from urgentbench.report.export import export
from urgentbench.report.render import to_markdown
from urgentbench.report.summary import summarize
from urgentbench.report.tables import build_table, render, resolve_outputs
from urgentbench.store import ResultStore
from urgentbench.suites import get_suite
from urgentbench.validation import cli_fraction

logger = logging.getLogger("urgentbench")


def add_commands(sub: Any) -> None:
    """Add ``leaderboard``, ``table`` and ``export``."""
    p = sub.add_parser("leaderboard", help="rank stored systems and write leaderboards/<suite>/")
    p.add_argument("--suite", required=True)
    p.add_argument("--systems", help="only these systems (comma-separated)")
    p.add_argument("--metrics", help="metrics to show (default: the suite's)")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--output-dir", default="leaderboards")
    p.add_argument("--tie", choices=["dense", "min"], default="dense", help="tie method (default dense, as the rules)")
    p.add_argument("--missing", choices=["unranked", "worst"], default=None,
                   help="a system's missing or unusable outputs: unranked (default: the system is listed, not "
                        "ranked) or worst (each missing value takes the worst value of the other systems on "
                        "that utterance, then the system is ranked); see README \"Failure policy\"")
    p.add_argument("--allow-partial", action="store_true",
                   help="also rank systems with missing values or utterances not scored: another name for "
                        "--missing worst")
    p.add_argument("--protocol", help="rank the categories and metrics of an URGENT edition (urgent2024|2025|2026)")
    p.add_argument("--by", metavar="TAG", help="also print per-group tables by utterance tags, comma-separated "
                   "(condition, snr_bin, rt60_bin, clip_threshold, cutoff_hz, sample_rate, speaker, ...)")
    p.add_argument("--format", default="md,csv,json",
                   help="comma-separated: md, csv, json, html (default md,csv,json); html is one static page "
                        "with charts, breakdowns (--by, default: the suite's conditions) and audio/")
    p.add_argument("--audio-utterances", type=NON_NEGATIVE, default=3, metavar="N",
                   help="utterances in the HTML page's audio section (default 3; 0: none)")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("table", help="a paper table (LaTeX or Markdown) of chosen systems and metrics",
                       epilog="example: urgentbench table --suite demo --systems noisy,deepfilternet3 "
                              "--metrics dnsmos_ovrl,pesq,wer --format latex --ci --reference noisy")
    p.add_argument("--suite", required=True)
    p.add_argument("--systems", help="rows, in this order (default: every stored system)")
    p.add_argument("--metrics", help="columns: metric outputs (pesq, dnsmos_ovrl) or metric names "
                   "(all their outputs); default: the suite's ranked outputs")
    p.add_argument("--format", choices=["latex", "markdown"], default="markdown")
    p.add_argument("--ci", action="store_true", help="add ± half the width of the 95%% bootstrap interval")
    p.add_argument("--reference", metavar="SYSTEM", help="mark values that differ significantly from this system")
    p.add_argument("--test", choices=["permutation", "wilcoxon"], default="permutation",
                   help="paired test for --reference (default: permutation; wilcoxon for mean outputs only)")
    p.add_argument("--alpha", type=cli_fraction, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--digits", type=NON_NEGATIVE, default=3)
    p.add_argument("--missing", choices=["unranked", "worst"], default="unranked",
                   help="a system's missing or unusable outputs: unranked (default: values shown with a note, "
                        "never marked best) or worst (filled with the worst value of the other rows, as "
                        "leaderboard --missing worst)")
    p.add_argument("--results-dir", default="results")
    p.add_argument("-o", "--output", metavar="FILE", help="write the table to FILE (default: print it)")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("export", help="write stored results as URGENT's evaluation_metrics files, CSV or Parquet",
                       epilog="example: urgentbench export --suite demo --format urgent --output exports/demo")
    p.add_argument("--suite", required=True)
    p.add_argument("--format", required=True, choices=["urgent", "csv", "parquet"],
                   help="urgent: <system>/score/<group>/<METRIC>.scp and RESULTS.txt as the official scripts write "
                        "them; csv/parquet: one row per utterance x system x metric output with provenance")
    p.add_argument("--systems", help="comma-separated systems (stored or display names; default: all stored)")
    p.add_argument("--metrics", help="metrics to export (default: the protocol's, else the suite's)")
    p.add_argument("--protocol", help="the metrics and options of an URGENT edition (as for leaderboard)")
    p.add_argument("--output", metavar="DIR", help="destination folder (default: exports/<suite>/<format>)")
    p.add_argument("--results-dir", default="results")
    p.set_defaults(func=cmd_export)


def _missing_policy(args: argparse.Namespace) -> str:
    """``--missing`` (``--allow-partial`` is another name for ``--missing worst``)."""
    allow_partial = getattr(args, "allow_partial", False)
    if allow_partial and args.missing == "unranked":
        raise ValueError("--allow-partial ranks systems with missing values (it means --missing worst); "
                         "it contradicts --missing unranked")
    return args.missing or ("worst" if allow_partial else "unranked")


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Rank every system stored for a suite and write Markdown, CSV and JSON (and HTML, breakdowns)."""
    suite = get_suite(args.suite)
    metrics = resolve_metrics(split_list(args.metrics), suite, skip_unavailable=True, protocol=args.protocol)
    categories = publish.protocol_categories(args.protocol)
    db = store_path(args.results_dir)
    if not db.exists():
        raise RunError(f"{db}: no results yet; run `urgentbench run --suite {suite.name} ...` first")
    formats = publish.check_formats(split_list(args.format) or ["md", "csv", "json"])
    missing = _missing_policy(args)
    with ResultStore(db) as store:
        report = publish.leaderboard_report(
            store, suite, metrics, systems=publish.stored_systems(store, suite, split_list(args.systems), db),
            by=split_list(args.by), html="html" in formats, tie=args.tie, missing=missing,
            protocol=args.protocol, categories=categories,
        )
    out_dir = Path(args.output_dir) / suite.name
    paths = publish.write_leaderboard_report(report, suite, out_dir, formats, args.results_dir, args.audio_utterances)
    print(to_markdown(report.leaderboard))
    for breakdown in report.breakdowns:
        print(report.breakdown_markdown(breakdown))
    logger.info("wrote %s", ", ".join(str(p) for p in paths))
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    """Print (or write) a LaTeX or Markdown table of chosen systems and metric outputs."""
    suite = get_suite(args.suite)
    names = split_list(args.metrics) or [o for outs in suite.categories.values() for o in outs]
    columns = resolve_outputs(names, publish.candidate_metric_classes(suite))
    metric_names = list(dict.fromkeys(cls.name for _, cls in columns))
    specs = resolve_metrics(metric_names, suite, skip_unavailable=True)
    missing = [n for n in metric_names if n not in {s.name for s in specs}]
    if missing:
        raise RunError(f"metric(s) {', '.join(missing)} are unavailable here (see `urgentbench ls metrics`)")
    db = store_path(args.results_dir)
    if not db.exists():
        raise RunError(f"{db}: no results yet; run `urgentbench run --suite {suite.name} ...` first")
    with ResultStore(db) as store:
        summaries = summarize(store, suite, specs, systems=None)
    rows = publish.select_systems(summaries, split_list(args.systems), suite)
    table = build_table(suite, rows, columns, show_ci=args.ci, reference=publish.resolve_reference(args.reference, rows),
                        test=args.test, alpha=args.alpha, digits=args.digits, missing=args.missing, metrics=specs)
    text = render(table, args.format)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
        logger.info("wrote %s", args.output)
    else:
        print(text, end="")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write a suite's stored results as URGENT's evaluation_metrics files, CSV or Parquet."""
    suite = get_suite(args.suite)
    metrics = resolve_metrics(split_list(args.metrics), suite, skip_unavailable=True, protocol=args.protocol)
    db = store_path(args.results_dir)
    if not db.exists():
        raise RunError(f"{db}: no results yet; run `urgentbench run --suite {suite.name} ...` first")
    output = Path(args.output) if args.output else Path("exports") / suite.name / args.format
    with ResultStore(db) as store:
        paths = export(store, suite, metrics, args.format, output, systems=split_list(args.systems),
                       protocol=args.protocol)
    print(f"wrote {plural(len(paths), 'file')} of {suite.name} v{suite.version} ({args.format}) under {output}")
    return 0
