"""Command-line pieces of issue 17: ``urgentbench suite import`` and the extra options of ``data prepare``.

Kept apart from the main CLI module so that it only has to call :func:`add_suite_parser`
and :func:`prepare_kwargs`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_prepare_options", "add_suite_parser", "cmd_suite_import", "prepare_kwargs"]

_IMPORT_EPILOG = """examples:
  urgentbench suite import mytest --noisy data/test/wav.scp --ref data/test/spk1.scp --text data/test/text \\
      --utt2lang data/test/utt2lang --utt2fs data/test/utt2fs
  urgentbench suite import mypairs --noisy recordings/noisy --ref recordings/clean
  urgentbench suite import hfset --hf owner/dataset:config:test --noisy-column noisy --ref-column clean \\
      --text-column text
then: urgentbench run --suite mytest --system noisy"""


def add_prepare_options(parser: argparse.ArgumentParser) -> None:
    """``--revision`` and ``--out`` of ``data prepare`` (for the corpora that write suites)."""
    parser.add_argument("--revision", metavar="SHA",
                        help="hub dataset revision (branch, tag or commit) to load (urgent2024, urgent2026-validation)")
    parser.add_argument("--out", metavar="DIR",
                        help="folder the suites of the official URGENT sets are written to (default: the first "
                             "folder of $URGENTBENCH_SUITES_PATH, else the project's data_manifests)")


def prepare_kwargs(corpus: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of ``corpus.prepare`` for ``--revision`` / ``--out``.

    Raises:
        ValueError: For ``--revision`` with a corpus that is not loaded from a hub, or
            ``--out`` with one that writes no suites.
    """
    kwargs: dict[str, Any] = {}
    revision, out = getattr(args, "revision", None), getattr(args, "out", None)
    if revision:
        if not getattr(corpus, "supports_revision", False):
            raise ValueError(f"corpus {corpus.name!r} is not loaded from a hub; --revision does not apply")
        kwargs["revision"] = revision
    if out:
        from urgentbench.data.urgent_official import URGENT2024, URGENT2025, URGENT2026Validation

        if not isinstance(corpus, (URGENT2024, URGENT2025, URGENT2026Validation)):
            raise ValueError(f"corpus {corpus.name!r} writes no suites; --out does not apply")
        kwargs["out_dir"] = Path(out).expanduser()
    return kwargs


def add_suite_parser(sub: Any) -> None:
    """The ``suite`` command group (``suite import``)."""
    p = sub.add_parser("suite", help="make a suite from your own test data")
    suite_sub = p.add_subparsers(dest="suite_command", required=True)
    q = suite_sub.add_parser(
        "import",
        help="a Kaldi/ESPnet data folder, a noisy/clean folder pair or a Hugging Face dataset as a suite",
        epilog=_IMPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("name", help="suite name (letters, digits, . _ + -; one / for a group)")
    q.add_argument("--noisy", metavar="PATH", help="wav.scp (Kaldi) or a folder of noisy files (folder pair)")
    q.add_argument("--ref", metavar="PATH", help="spk1.scp (Kaldi) or the folder of clean files (folder pair)")
    q.add_argument("--text", metavar="FILE", help="Kaldi text: <id> <transcript> (<not-available> for none)")
    q.add_argument("--utt2lang", metavar="FILE", help="<id> <language> (ISO 639 code, e.g. eng, deu)")
    q.add_argument("--utt2fs", metavar="FILE", help="<id> <rate in Hz>, checked against the files")
    q.add_argument("--hf", metavar="REPO[:CONFIG:SPLIT]",
                   help="a Hugging Face dataset (hub id or local copy) instead of --noisy")
    q.add_argument("--revision", metavar="SHA", help="hub revision for --hf (default: the default branch's commit)")
    q.add_argument("--noisy-column", metavar="C", help="--hf: the noisy audio column")
    q.add_argument("--ref-column", metavar="C", help="--hf: the clean audio column")
    q.add_argument("--text-column", metavar="C", help="--hf: the transcript column")
    q.add_argument("--language-column", metavar="C", help="--hf: the language column")
    q.add_argument("--id-column", metavar="C", help="--hf: the utterance id column (default: the row number)")
    q.add_argument("--description", default="", help="for the card (default: a summary of the content)")
    q.add_argument("--licence", default="", help="for the card")
    q.add_argument("--out", metavar="DIR", help="folder of suite folders (default: the first folder of "
                                                "$URGENTBENCH_SUITES_PATH, else the project's data_manifests)")
    q.add_argument("--data-dir", metavar="DIR",
                   help="--hf: where the audio is written (default: $URGENTBENCH_DATA/imports/<name>)")
    q.set_defaults(func=cmd_suite_import)


def cmd_suite_import(args: argparse.Namespace) -> int:
    """Import a test set as a suite (see :func:`urgentbench.data.kaldi_import.import_suite`)."""
    from urgentbench.data.hf_loader import parse_hf_spec
    from urgentbench.data.kaldi_import import ColumnMapping, import_suite

    hf = mapping = None
    if args.hf:
        if not args.noisy_column:
            raise ValueError("--hf needs --noisy-column (and usually --ref-column, --text-column)")
        hf = parse_hf_spec(args.hf, args.revision)
        mapping = ColumnMapping(noisy=args.noisy_column, ref=args.ref_column, text=args.text_column,
                                language=args.language_column, id=args.id_column)
    elif any(getattr(args, k) for k in ("noisy_column", "ref_column", "text_column", "language_column", "id_column")):
        raise ValueError("--noisy-column, --ref-column, --text-column, --language-column and --id-column go with --hf")
    folder = import_suite(
        args.name,
        noisy=args.noisy,
        ref=args.ref,
        text=args.text,
        utt2lang=args.utt2lang,
        utt2fs=args.utt2fs,
        hf=hf,
        mapping=mapping,
        out_dir=args.out,
        data_dir=args.data_dir,
        description=args.description,
        licence=args.licence,
        command=f"urgentbench suite import {args.name}",
    )
    print(f"{args.name}: wrote {folder / 'manifest.jsonl'} and card.yaml; score it with: "
          f"urgentbench run --suite {args.name} --system noisy")
    return 0
