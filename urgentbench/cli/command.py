"""Command-line interface: a thin layer over the library.

Examples::

    urgentbench ls systems
    urgentbench run --system noisy,deepfilternet3 --suite demo --jobs 2
    urgentbench run --system noisy --suite demo --config scoring.yaml --batch-size 8
    urgentbench score --suite demo --outputs my_outputs/ --name my-team
    urgentbench leaderboard --suite demo
    urgentbench data prepare dns2020 --from ~/DNS-Challenge
"""

from __future__ import annotations

import argparse
import logging
import sys

from urgentbench.assets import AssetError
from urgentbench.audio import AudioError
from urgentbench.cli import assets, data, listings, reports, scoring, store
from urgentbench.data import CorpusNotPreparedError
from urgentbench.data.base import CorpusError
from urgentbench.manifest import ManifestError
from urgentbench.pipeline.errors import RunError
from urgentbench.registry import UnknownNameError
from urgentbench.requirements import MissingRequirementError
from urgentbench.store import StoreError
from urgentbench.suites import SuiteError
from urgentbench.systems.base import CardError
from urgentbench.systems.masksr import cli as masksr_cli  # light: torch is imported only when training

QUIET_HELP = "no progress bar, warnings only (the summary and the final lines are still printed)"
VERBOSE_HELP = "debug logging (and the traceback of an error)"

#: Errors that are the user's to fix: one line on stderr, exit status 2 (``-v`` shows the traceback).
USER_ERRORS = (
    UnknownNameError, CorpusNotPreparedError, CorpusError, MissingRequirementError, RunError,
    SuiteError, ManifestError, CardError, AudioError, FileNotFoundError, ValueError, StoreError, AssetError,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``urgentbench`` command (each command group adds its own)."""
    parser = argparse.ArgumentParser(prog="urgentbench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    listings.add_commands(sub)
    scoring.add_commands(sub)
    p = sub.add_parser("train", help="train MaskSR / MaskSR2 on data simulated on the fly (DDP via torchrun)",
                       epilog=masksr_cli.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    masksr_cli.add_arguments(p)
    p.set_defaults(func=masksr_cli.cmd_train)
    reports.add_commands(sub)
    store.add_commands(sub)
    data.add_commands(sub)
    assets.add_commands(sub)
    add_log_flags(sub)
    return parser


def add_log_flags(sub: argparse._SubParsersAction) -> None:
    """Give every sub-command (nested ones included) ``-q``/``--quiet`` and ``-v``/``--verbose``.

    Both positions work (``urgentbench -q run ...`` and ``urgentbench run ... -q``): a
    flag after the sub-command sets the same value, and one left out keeps the first's.
    """
    for command in dict.fromkeys(sub.choices.values()):  # aliases share a parser
        own = {option for action in command._actions for option in action.option_strings}
        if not own & {"-q", "--quiet"}:
            command.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=QUIET_HELP)
        if not own & {"-v", "--verbose"}:
            command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                add_log_flags(action)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``urgentbench`` console script."""
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        if args.verbose:
            raise
        print(f"urgentbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("urgentbench: interrupted; completed results are kept, rerun to resume", file=sys.stderr)
        return 130
