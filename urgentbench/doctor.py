"""What this installation lacks, per package or asset, with the one command that installs each.

``pip install urgentbench`` gives the core (intrusive metrics, DNSMOS, simulation, suites,
reports); every other metric and system declares the packages and assets it needs
(:mod:`urgentbench.requirements`, :mod:`urgentbench.assets`). :func:`diagnose` asks every
registered metric (default options) and system for what is missing and merges the answers:
one entry per missing package or asset, the plug-ins that need it, and one command. Nothing
is imported to find out (packages are looked up with ``importlib.util.find_spec``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

#: The one line that installs every optional package (torch first: any other torch spec pulls a CUDA build).
INSTALL_ALL = "pip install torch==2.13.0 && pip install 'urgentbench[all]'"


@dataclass
class Missing:
    """A package or asset that some metric or system needs and that is absent (or corrupt) here.

    Args:
        kind: ``"package"`` or ``"asset"``.
        name: The import name of the package, or the asset name.
        fix: The one command that installs it.
        needed_by: ``"metric wer"``, ``"system deepfilternet3"``..., sorted.
        detail: Why, for an asset (missing or corrupt, and where).
    """

    kind: str
    name: str
    fix: str
    needed_by: list[str] = field(default_factory=list)
    detail: str = ""


def _better_fix(current: str, candidate: str) -> str:
    """Of two install commands for the same thing, the pinned one (``==``), else the first seen."""
    if "==" in candidate and "==" not in current:
        return candidate
    return current


def _note(found: dict[tuple[str, str], Missing], kind: str, name: str, fix: str, user: str, detail: str = "") -> None:
    key = (kind, name)
    entry = found.get(key)
    if entry is None:
        found[key] = Missing(kind, name, fix, [user], detail)
        return
    entry.fix = _better_fix(entry.fix, fix)
    if user not in entry.needed_by:
        entry.needed_by.append(user)


def _check(found: dict[tuple[str, str], Missing], user: str, packages: list, assets: list) -> None:
    """Record the missing ones among a plug-in's packages (requirements or pinned code) and assets."""
    for req in packages:
        code_asset = getattr(req, "asset", None)
        if code_asset is not None:  # upstream code pinned as an asset (urgentbench.assets.PackageCode)
            problem = req.problem()
            if problem:
                _note(found, "asset", code_asset, req.install, user, problem.split("; fix:")[0])
        elif not req.is_available():
            _note(found, "package", req.module, req.install, user)
    for asset in assets:
        problem = asset.problem(deep=False)
        if problem:
            _note(found, "asset", asset.name, asset.fix_commands()[0], user, problem.split("; fix:")[0])


def diagnose() -> list[Missing]:
    """Everything that some registered metric or system lacks here, packages first, each with its command.

    Metrics are checked with their default options; a metric or system that cannot even be
    loaded (a broken plug-in) is logged and skipped.
    """
    from urgentbench.metrics import METRICS
    from urgentbench.systems import SYSTEMS

    found: dict[tuple[str, str], Missing] = {}
    for entry in METRICS:
        try:
            cls = entry.load()
            assets = list(cls.assets_for(cls.default_options()))
        except Exception as exc:  # noqa: BLE001 - one broken plug-in must not hide the others
            logger.warning("metric %s cannot be loaded: %s", entry.name, exc)
            continue
        _check(found, f"metric {cls.name}", list(cls.packages), assets)
    for entry in SYSTEMS:
        try:
            card = entry.load().card
            from urgentbench.assets import get_asset

            assets = [get_asset(name) for name in card.assets]
        except Exception as exc:  # noqa: BLE001
            logger.warning("system %s cannot be loaded: %s", entry.name, exc)
            continue
        _check(found, f"system {card.name}", list(card.packages), assets)
    for item in found.values():
        item.needed_by.sort()
    return sorted(found.values(), key=lambda m: (m.kind != "package", m.name.lower()))


def report(missing: list[Missing]) -> str:
    """The text ``urgentbench doctor`` prints: one block per missing thing, then the install-all line."""
    if not missing:
        return "Everything every registered metric and system needs is installed.\n"
    packages = [m for m in missing if m.kind == "package"]
    assets = [m for m in missing if m.kind == "asset"]
    lines = []
    if packages:
        lines.append(f"Missing packages ({len(packages)}):")
        for m in packages:
            lines += [f"  {m.name}", f"    install: {m.fix}", f"    needed by: {', '.join(m.needed_by)}"]
        lines += ["", f"  All optional packages at once: {INSTALL_ALL}", ""]
    if assets:
        lines.append(f"Missing assets ({len(assets)}; model files and pinned upstream code, fetched explicitly):")
        for m in assets:
            lines += [f"  {m.name}", f"    install: {m.fix}", f"    needed by: {', '.join(m.needed_by)}"]
            if m.detail:
                lines.append(f"    state: {m.detail}")
    return "\n".join(lines) + "\n"
