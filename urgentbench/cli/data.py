"""Data commands: ``simulate``, ``data prepare|score-published|ls|build-suite`` and ``suite import``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from urgentbench.audio import write_flac
from urgentbench.cli.args import POSITIVE
from urgentbench.cli.options import add_run_options, run_options
from urgentbench.data import prepared_corpora
from urgentbench.data.corpora import CORPORA
from urgentbench.data.import_cli import add_prepare_options, add_suite_parser, prepare_kwargs
from urgentbench.data.vctk_suites import SUITE_NAMES, build_suite
from urgentbench.pipeline.prepare import load_inputs
from urgentbench.suites import get_suite

logger = logging.getLogger("urgentbench")


def add_commands(sub: Any) -> None:
    """Add ``simulate``, the ``data`` command group and ``suite``."""
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
    add_prepare_options(q)
    q.set_defaults(func=cmd_data_prepare)
    add_suite_parser(sub)
    q = data_sub.add_parser("score-published", help="score a corpus's published system outputs",
                            epilog="example: urgentbench data score-published masksr2-demo --condition gsr")
    q.add_argument("corpus")
    q.add_argument("--condition", default="all", help="sub-suite condition (default: all)")
    add_run_options(q, "score-published")
    q.set_defaults(func=cmd_data_score_published)
    q = data_sub.add_parser("ls", help="list corpora, whether they are prepared, and their licences")
    q.set_defaults(func=cmd_data_ls)
    q = data_sub.add_parser("build-suite", help="build a VCTK-based suite's manifest (or a corpus's suites)",
                            epilog="example: urgentbench data prepare vctk && urgentbench data build-suite bwe-4k")
    q.add_argument("suite", help="gsr, bwe-1k, bwe-2k, bwe-4k, bwe-8k, declip-0.1, declip-0.25 or all; or a corpus "
                                 "name, for every suite of its own (masksr2-demo)")
    q.add_argument("--out", metavar="DIR", help="folder of suite folders (default: the project's data_manifests)")
    q.set_defaults(func=cmd_data_build_suite)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Render a suite's noisy inputs (and references) to FLAC files for outside systems."""
    from tqdm import tqdm

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
    corpus = CORPORA.get(args.corpus)()
    source = Path(args.source).expanduser() if args.source else None
    dest = Path(args.dest).expanduser() if args.dest else None

    root = corpus.prepare(source, dest=dest, progress=not args.quiet, **prepare_kwargs(corpus, args))
    print(f"{corpus.name}: verified and recorded at {root}")
    return 0


def cmd_data_score_published(args: argparse.Namespace) -> int:
    """Score the outputs a corpus publishes (the MaskSR2 demo page's systems) on its sub-suites."""
    options = run_options(args)
    corpus = CORPORA.get(args.corpus)()
    reports = corpus.score_published(args.condition, options)
    print(f"scored; rank them with: urgentbench leaderboard --suite {corpus.name}/<condition> "
          f"--results-dir {options.results_dir}")
    problems = sum(len(report.errors) for report in reports.values())
    if problems:
        logger.warning("%d problems recorded as missing values", problems)
    return 1 if (options.fail_on_missing and problems) else 0


def cmd_data_ls(args: argparse.Namespace) -> int:
    """List the known corpora: prepared or not (and where), licence, description."""
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
