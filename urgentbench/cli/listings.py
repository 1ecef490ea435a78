"""Listing commands: ``ls`` (systems, metrics, suites) and ``protocols ls|show``."""

from __future__ import annotations

import argparse
from typing import Any

from urgentbench.metrics import METRICS
from urgentbench.protocols import PROTOCOLS, get_protocol
from urgentbench.suites import SUITES, Suite, SuiteError
from urgentbench.systems import SYSTEMS


def add_commands(sub: Any) -> None:
    """Add ``ls``, ``doctor`` and ``protocols`` to the command's sub-parsers."""
    p = sub.add_parser("ls", help="list systems, metrics or suites")
    p.add_argument("what", choices=["systems", "metrics", "suites"])
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("doctor", help="what this installation lacks (packages, assets) and the command installing each")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("protocols", help="list the pinned URGENT evaluation protocols or show one")
    protocols_sub = p.add_subparsers(dest="protocols_command", required=True)
    q = protocols_sub.add_parser("ls", help="the known protocols")
    q.set_defaults(func=cmd_protocols_ls)
    q = protocols_sub.add_parser("show", help="metrics, categories, checkpoints and settings of a protocol",
                                 epilog="example: urgentbench protocols show urgent2025")
    q.add_argument("name")
    q.set_defaults(func=cmd_protocols_show)


def cmd_ls(args: argparse.Namespace) -> int:
    """List systems, metrics or suites with availability and a one-line description."""
    rows: list[tuple[str, str, str]] = []
    if args.what == "systems":
        for entry in SYSTEMS:
            spec = entry.load()
            rows.append((spec.card.name, spec.availability().summary(), spec.card.description))
    elif args.what == "metrics":
        for entry in METRICS:
            try:
                cls = entry.load()
            except Exception as exc:  # a broken third-party metric must not break the listing
                rows.append((entry.name, f"cannot be loaded: {exc}", ""))
                continue
            outputs = ", ".join(o.name for o in cls.outputs)
            rows.append((cls.name, cls.availability().summary(), f"[{cls.category}] {cls.description} ({outputs})"))
    else:
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


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print every missing package and asset with the plug-ins needing it and the one command installing it."""
    from urgentbench.doctor import diagnose, report

    print(report(diagnose()), end="")
    return 0


def cmd_protocols_ls(args: argparse.Namespace) -> int:
    """List the pinned evaluation protocols."""
    for entry in PROTOCOLS:
        protocol = entry.load()
        print(f"{protocol.name}: {protocol.title}")
    return 0


def cmd_protocols_show(args: argparse.Namespace) -> int:
    """Print a protocol: metrics with pinned options, categories, checkpoints, resampler, normaliser."""
    print(get_protocol(args.name).describe())
    return 0
