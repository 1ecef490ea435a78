"""Scoring commands: ``run``, ``score``, ``check`` (the regression gate) and ``enhance``.

``run``, ``score`` and ``check`` take the shared run options (:mod:`urgentbench.cli.options`):
each builds one :class:`~urgentbench.pipeline.options.RunOptions` and passes it whole.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from urgentbench import check
from urgentbench.api import prepare_scoring
from urgentbench.cli.args import split_list
from urgentbench.cli.options import add_run_options, run_options
from urgentbench.enhance import enhance_files
from urgentbench.layout import store_path
from urgentbench.pipeline.errors import RunError
from urgentbench.pipeline.options import RunOptions
from urgentbench.pipeline.resolve import resolve_metrics
from urgentbench.pipeline.results import RunReport, metric_seconds, results_line, timing_line
from urgentbench.pipeline.specs import MetricSpec, ProducerSpec, system_producer
from urgentbench.report.summary import summarize
from urgentbench.runner import run
from urgentbench.store import ResultStore
from urgentbench.submission import score_submission
from urgentbench.suites import Suite, get_suite
from urgentbench.validation import parse_kv

logger = logging.getLogger("urgentbench")


def add_commands(sub: Any) -> None:
    """Add ``run``, ``score``, ``enhance`` and ``check``."""
    p = sub.add_parser("run", help="enhance a suite with systems and score them",
                       epilog="example: urgentbench run --system noisy,deepfilternet3 --suite demo --jobs 2")
    p.add_argument("--system", required=True, help="comma-separated system names")
    p.add_argument("--system-args", help="k=v,... options of the system")
    p.add_argument("--suite", required=True, help="suite name (see `urgentbench ls suites`)")
    add_run_options(p, "run")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("score", help="score outside outputs (a folder of <id>.flac or a submission zip)",
                       epilog="example: urgentbench score --suite demo --outputs out/ --name my-team")
    p.add_argument("--outputs", required=True,
                   help="folder of <utterance id>.flac files, or an URGENT submission zip (README.yaml + enhanced/)")
    p.add_argument("--name", help="name shown on the leaderboard (default: the team in README.yaml)")
    p.add_argument("--suite", required=True, help="suite name (see `urgentbench ls suites`)")
    add_run_options(p, "score")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("enhance", help="run a system on your own files, outside any suite",
                       epilog="example: urgentbench enhance --system deepfilternet3 --input noisy/ --output enhanced/")
    p.add_argument("--system", required=True)
    p.add_argument("--system-args", help="k=v,... options of the system")
    p.add_argument("--input", required=True, help="an audio file or a folder of .wav/.flac files")
    p.add_argument("--output", required=True, help="output folder (same relative names, as 16-bit FLAC)")
    p.set_defaults(func=cmd_enhance)

    p = sub.add_parser("check", help="regression gate: compare a system with a baseline file; exit 1 on regression",
                       epilog="example: urgentbench check --suite demo --system deepfilternet3 --baseline "
                              "baseline.json --max-drop dnsmos_ovrl=0.05 --max-rise wer=0.01")
    p.add_argument("--suite", required=True)
    p.add_argument("--system", required=True, help="the system (plug-in name, or the name outputs were scored as)")
    p.add_argument("--baseline", required=True, metavar="FILE",
                   help="baseline JSON (from --write-baseline) or a leaderboard.json holding the system")
    p.add_argument("--write-baseline", action="store_true", help="write FILE from the current results and exit 0")
    p.add_argument("--max-drop", action="append", metavar="OUT=D", help="largest allowed decrease, e.g. pesq=0.05 "
                   "(repeat or comma-separate)")
    p.add_argument("--max-rise", action="append", metavar="OUT=R", help="largest allowed increase, e.g. wer=0.01")
    p.add_argument("--ci", action="store_true", help="gate every output by the baseline's 95%% bootstrap interval")
    p.add_argument("--markdown", metavar="FILE",
                   help="also append the comparison as Markdown to FILE (e.g. \"$GITHUB_STEP_SUMMARY\")")
    p.add_argument("--run", action="store_true", help="run the system plug-in first (computes what is missing)")
    p.add_argument("--outputs", metavar="DIR", help="score this folder of <id>.flac (or a submission zip) as the system first")
    p.add_argument("--system-args", help="k=v,... options of the system (with --run)")
    p.add_argument("--config-hash", help="which stored configuration of the system, when there are several")
    add_run_options(p, "check")
    p.set_defaults(func=cmd_check)


def setup_scoring(suite_name: str, options: RunOptions) -> tuple[Suite, list[MetricSpec], list[str]]:
    """The suite (verified, corpora prepared) and its metrics, before any work; and the metrics left out.

    Returns:
        ``(suite, metrics, skipped)``: ``skipped`` has one line per metric not computed (why,
        and the command that enables it), listed again after the run where the reader looks.
    """
    return prepare_scoring(suite_name, options)


def print_summary(suite: Suite, producers: list[ProducerSpec], metrics: list[MetricSpec], options: RunOptions) -> None:
    """The scored producers' values per metric output, with failure counts and an example of each."""
    with ResultStore(store_path(options.results_dir)) as store:
        summaries = summarize(store, suite, metrics, systems=[p.name for p in producers])
    wanted = {(p.name, p.config_hash) for p in producers}
    summaries = [s for s in summaries if (s.system, s.config_hash) in wanted]
    outputs = [(o.name, o.higher_is_better) for m in metrics for o in m.cls.outputs]
    width = max([len(s.display_name) for s in summaries] + [6]) + 2
    print()
    print(f"{'system':<{width}}" + "".join(f"{n + (' ↑' if hib else ' ↓'):>14}" for n, hib in outputs))
    for s in summaries:
        cells = "".join(f"{'—' if s.values.get(n) is None else f'{s.values[n]:.3f}':>14}" for n, _ in outputs)
        print(f"{s.display_name:<{width}}{cells}")
        for metric, n in s.failures.items():
            if n:
                print(f"{'':<{width}}{metric}: {n} failed, e.g. {s.failure_examples[metric]}")


def finish(
    options: RunOptions, suite: Suite, producers: list[ProducerSpec], metrics: list[MetricSpec], report: RunReport,
    skipped: list[str],
) -> int:
    """Print what a run stored (values, time per metric, where the results are) and say how it ended.

    Returns:
        2 for a metric that could not be set up, 1 for missing values with ``fail_on_missing``, else 0.
    """
    logger.info(
        "run %d: %d utterance jobs, %d rows written, %.1f s", report.run_id, report.jobs, report.rows_written, report.seconds
    )
    print_summary(suite, producers, metrics, options)
    with ResultStore(store_path(options.results_dir)) as store:
        print(timing_line(metric_seconds(store, suite, producers, metrics, report.run_id)))
    if skipped:
        print(f"\nnot computed ({len(skipped)}):")
        for line in skipped:
            print(f"  {line}")
    if report.errors:
        logger.warning("%d problems recorded as missing values (see the summary above)", len(report.errors))
    for message in report.setup_failures.values():  # run-level: nothing was stored for these metrics
        print(f"urgentbench: error: {message}; nothing was stored for it, rerun after the fix", file=sys.stderr)
    print(results_line(options.results_dir, suite.name, options.protocol))
    if report.setup_failures:
        return 2
    return 1 if (options.fail_on_missing and report.errors) else 0


def cmd_run(args: argparse.Namespace) -> int:
    """Enhance a suite with one or more systems and score the outputs."""
    options = run_options(args)
    names = split_list(args.system) or []
    system_options = parse_kv(args.system_args)
    if len(names) > 1 and system_options:
        raise ValueError("--system-args applies to a single --system")
    # resolve every system and the suite before any work starts
    producers = [system_producer(n, system_options) for n in names]
    suite, metrics, skipped = setup_scoring(args.suite, options)
    report = run(suite, producers, metrics, options)
    return finish(options, suite, producers, metrics, report, skipped)


def cmd_score(args: argparse.Namespace) -> int:
    """Score outside outputs: a folder of ``<utterance id>.flac`` files or an URGENT submission zip."""
    options = run_options(args)
    suite, metrics, skipped = setup_scoring(args.suite, options)
    scored = score_submission(args.outputs, suite, args.name, metrics, options)
    for warning in scored.warnings:
        logger.warning("%s", warning)
    return finish(options, suite, [scored.producer], metrics, scored.report, skipped)


def cmd_enhance(args: argparse.Namespace) -> int:
    """Run a system on the user's own audio files (a file or a folder, searched recursively)."""
    report = enhance_files(args.system, args.input, args.output, parse_kv(args.system_args), progress=not args.quiet)
    print(f"{report.written} file(s) written to {args.output}, {len(report.failed)} failed")
    for line in report.failed:
        print(f"  {line}")
    return 1 if report.failed else 0


def cmd_check(args: argparse.Namespace) -> int:
    """Compare a system's results with a baseline file; exit 1 on a regression."""
    options = run_options(args)
    config = args.config_hash
    limit = options.limit
    baseline = None
    if not args.write_baseline:  # a baseline that cannot be used is refused before anything is scored
        baseline = check.load_baseline(args.baseline, args.system)
        check.check_suite(baseline, get_suite(args.suite), args.baseline, limit=limit)
    if args.run or args.outputs:
        if args.run and args.outputs:
            raise ValueError("--run and --outputs exclude each other")
        suite, metrics, _ = setup_scoring(args.suite, options)
        if args.run:
            producer = system_producer(args.system, parse_kv(args.system_args))
            scoring = run(suite, [producer], metrics, options)
        else:
            submission = score_submission(args.outputs, suite, args.system, metrics, options)
            producer, scoring = submission.producer, submission.report
        config = producer.config_hash
    else:
        suite = get_suite(args.suite)
        metrics = resolve_metrics(options.metric_names, suite, skip_unavailable=True, protocol=options.protocol)
        scoring = None
    db = store_path(options.results_dir)
    if not db.exists():
        raise RunError(f"{db}: no results yet; run `urgentbench run --suite {suite.name} ...` or pass --run")
    with ResultStore(db) as store:
        summary = check.current_summary(store, suite, metrics, args.system, config, limit=limit)
    current = check.baseline_from_summary(suite, summary, metrics, limit=limit)
    if baseline is None:
        path = check.write_baseline(current, args.baseline)
        print(f"wrote baseline of {args.system} on {suite.name} v{suite.version} to {path}")
        return 0
    max_drop = {k: v for item in args.max_drop or [] for k, v in parse_kv(item).items()}
    max_rise = {k: v for item in args.max_rise or [] for k, v in parse_kv(item).items()}
    report = check.compare(baseline, current, max_drop, max_rise, use_ci=args.ci, baseline_path=str(args.baseline))
    print(check.format_report(report), end="")
    if args.markdown:
        check.append_markdown(report, args.markdown, suite.version)
    if scoring is not None and scoring.errors:
        logger.warning("%d problems recorded as missing values while scoring", len(scoring.errors))
        if options.fail_on_missing:
            return 1
    return 0 if report.passed else 1
