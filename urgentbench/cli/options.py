"""The shared run/score options of the command line, added to each parser from :class:`RunOptions`'s fields.

``run``, ``score``, ``check`` and ``data score-published`` get the same flags, made by
:func:`add_run_options` from the fields of :class:`~urgentbench.pipeline.options.RunOptions`
(name, help, type); :func:`run_options` builds the one options object of a command:
the flags given, over ``--config FILE``, over the defaults. A new scoring option is a new
field of that dataclass; it then exists on every one of these commands.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys

from urgentbench.pipeline.options import RunOptions
from urgentbench.validation import cli_int


def flag_of(f: dataclasses.Field) -> str:
    """The command-line flag of a :class:`RunOptions` field (``--no-x`` for a flag that turns a default on off)."""
    if f.metadata["flag"]:
        return f.metadata["flag"]
    negated = f.metadata["kind"] == "bool" and f.default is True
    return ("--no-" if negated else "--") + f.name.replace("_", "-")


def add_run_options(parser: argparse.ArgumentParser, command: str) -> None:
    """Add ``--config`` and a flag for every :class:`RunOptions` field that ``command`` takes.

    Flags default to "not given" (:data:`argparse.SUPPRESS`), so that :func:`run_options`
    can let a config file fill in what the command line leaves out.
    """
    parser.add_argument(
        "--config", metavar="FILE", default=None,
        help="YAML file of these options, by field name (batch_size: 8, metrics: [pesq, estoi], ...); "
        "options given on the command line win",
    )
    for f in dataclasses.fields(RunOptions):
        meta = f.metadata
        if command not in meta["commands"]:
            continue
        text = meta["help_for"].get(command, meta["help"])
        if meta["kind"] == "bool":
            action = "store_false" if f.default is True else "store_true"
            parser.add_argument(flag_of(f), dest=f.name, action=action, default=argparse.SUPPRESS, help=text)
        else:
            kind = cli_int(meta["minimum"]) if meta["kind"] == "int" else str
            parser.add_argument(flag_of(f), dest=f.name, type=kind, default=argparse.SUPPRESS,
                                metavar=meta["metavar"], help=text)


def run_options(args: argparse.Namespace) -> RunOptions:
    """The options of a command: flags given > ``--config`` file > the command line's defaults.

    ``-q`` turns the progress bars off; the command line is recorded for provenance.

    Raises:
        ConfigError: For a bad config file (one line naming it).
        RunError: For a bad value (a malformed ``--scheduler``).
    """
    fields = dataclasses.fields(RunOptions)
    given = {f.name: getattr(args, f.name) for f in fields if f.metadata["commands"] and hasattr(args, f.name)}
    if getattr(args, "quiet", False):
        given["progress"] = False
    given["command"] = "urgentbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    defaults = {f.name: f.metadata["cli_default"]() for f in fields if f.metadata["cli_default"]}
    return RunOptions.merged(given, getattr(args, "config", None), defaults)
