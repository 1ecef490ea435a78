"""``store check`` and ``store recover``: the results store's integrity and its repair."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from urgentbench.cli.args import plural
from urgentbench.layout import store_path
from urgentbench.store import StoreError, recover_command
from urgentbench.store_maintenance import check_store, recover_store


def add_commands(sub: Any) -> None:
    """Add the ``store`` command group."""
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


def _store_path(args: argparse.Namespace) -> Path:
    db = store_path(args.results_dir)
    if not db.is_file():
        raise StoreError(f"{db}: no results store here (is --results-dir right?)")
    return db


def cmd_store_check(args: argparse.Namespace) -> int:
    """Integrity-check the results store and count its rows; exit 1 when it is damaged."""
    db = _store_path(args)
    report = check_store(db)
    counts = report.counts
    if report.ok:
        assert counts is not None  # an intact file is readable
        rows = sum(c[5] for c in counts.scores)
        failed = sum(c[6] for c in counts.scores)
        print(f"{db}: ok (PRAGMA integrity_check); {plural(rows, 'score row')} ({failed:,} failed), "
              f"{plural(counts.runs, 'run')}, {plural(counts.systems, 'system')}")
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
    db = _store_path(args)
    report = recover_store(db, force=args.force)
    if report.healthy:
        print(f"{db}: not damaged (PRAGMA integrity_check: ok); nothing done (--force rebuilds it anyway)")
        return 0
    recovered = ", ".join(f"{name} {plural(n, 'row')}" for name, n in report.recovered.items())
    unreadable = sum(report.unreadable.values())
    details = [f"{plural(unreadable, 'row')} unreadable"]
    if unreadable:
        details[0] += " (" + ", ".join(f"{name} {n:,}" for name, n in report.unreadable.items() if n) + ")"
    if report.orphaned:
        details.append(f"{report.orphaned:,} of the rows read from pages cut off from their table")
    details.append(f"{report.damaged_pages:,} of {report.pages:,} pages unreadable")
    print(f"{db}: recovered {recovered}; {'; '.join(details)}")
    print(f"the damaged file is kept as {report.kept} (never deleted)")
    return 0
