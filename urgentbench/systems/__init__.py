"""System plug-ins: found in ``systems/<name>/card.yaml`` folders and the ``urgentbench.systems`` entry points.

Folders are searched in the project's own ``systems/`` directory and in every directory
of ``$URGENTBENCH_SYSTEMS_PATH`` (``os.pathsep``-separated). A system folder's code is
imported as the package ``urgentbench_systems.<folder>`` only when the system is used.
"""

from __future__ import annotations

import logging
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from urgentbench.registry import Registry
from urgentbench.requirements import Availability
from urgentbench.systems.base import CardError, System, SystemCard, availability, config_hash

logger = logging.getLogger(__name__)

PROJECT_SYSTEMS_DIR = Path(__file__).resolve().parents[2] / "systems"
NAMESPACE = "urgentbench_systems"


@dataclass
class SystemSpec:
    """A registered system: its card (readable without importing code) and its class."""

    card: SystemCard
    cls: type[System] | None = None
    target: str | None = None

    def availability(self, options: dict | None = None) -> Availability:
        """Whether its packages and assets are present.

        Args:
            options: The system arguments it would run with. When given (and the packages
                are present), the class says which of the card's assets these options
                need (:meth:`System.needed_assets`; e.g. none when a local checkpoint
                replaces the asset). Listings pass nothing and check every card asset.
        """
        if options is None or not availability(self.card, assets=False).ok:
            return availability(self.card)
        needed = self.load_class().needed_assets(dict(options))
        return availability(self.card, assets=needed)

    def load_class(self) -> type[System]:
        """Import the system's code and return its class, with the card attached."""
        if self.cls is None:
            from urgentbench.registry import Entry

            cls = Entry(self.card.name, self.target or "").load()
            if not (isinstance(cls, type) and issubclass(cls, System)):
                raise CardError(f"{self.target} is not a urgentbench System subclass")
            cls.card = self.card
            self.cls = cls
        return self.cls


def system_dirs() -> list[Path]:
    """Directories searched for system folders, in priority order."""
    dirs = [Path(p) for p in os.environ.get("URGENTBENCH_SYSTEMS_PATH", "").split(os.pathsep) if p]
    dirs.append(PROJECT_SYSTEMS_DIR)
    return [d for d in dirs if d.is_dir()]


def _namespace(dirs: list[Path]) -> None:
    module = sys.modules.get(NAMESPACE)
    if module is None:
        module = types.ModuleType(NAMESPACE)
        module.__path__ = []  # type: ignore[attr-defined]
        sys.modules[NAMESPACE] = module
    for d in dirs:
        if str(d) not in module.__path__:  # type: ignore[attr-defined]
            module.__path__.append(str(d))  # type: ignore[attr-defined]


def _discover_folders(registry: Registry[SystemSpec]) -> None:
    dirs = system_dirs()
    _namespace(dirs)
    for directory in dirs:
        for card_path in sorted(directory.glob("*/card.yaml")):
            try:
                card = SystemCard.from_yaml(card_path)
            except CardError as exc:
                logger.error("skipping system folder: %s", exc)
                continue
            module, _, attr = card.entry.partition(":")
            module = module.removesuffix(".py").replace("/", ".")
            target = f"{NAMESPACE}.{card_path.parent.name}.{module}:{attr}"
            if card.name.lower() in registry:
                logger.warning("system %r in %s shadowed by an earlier one", card.name, card_path)
                continue
            registry.register(
                card.name, SystemSpec(card, target=target), aliases=card.aliases, origin=str(card_path)
            )


class _SystemRegistry(Registry[SystemSpec]):
    def _load_entry_points(self) -> None:
        from importlib import metadata

        for ep in metadata.entry_points(group="urgentbench.systems"):
            try:
                cls = ep.load()
                card = cls.card
            except Exception as exc:  # a broken third-party plug-in must not break the CLI
                logger.error("system entry point %s could not be loaded: %s", ep.value, exc)
                continue
            if card.name.lower() in self:
                logger.warning("system %r from entry point %s ignored: name taken", card.name, ep.value)
                continue
            self.register(card.name, SystemSpec(card, cls=cls), aliases=card.aliases, origin=ep.value)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._aliases


SYSTEMS: Registry[SystemSpec] = _SystemRegistry("system", entry_point_group="urgentbench.systems")
SYSTEMS.add_discoverer(_discover_folders)


def build_system(name: str, **options: object) -> System:
    """Instantiate system ``name`` with ``options`` (not yet set up).

    Raises:
        UnknownNameError: For an unknown name.
        MissingRequirementError: When its packages or assets are missing.
    """
    from urgentbench.requirements import MissingRequirementError

    spec = SYSTEMS.get(name)
    avail = spec.availability(dict(options))
    if not avail.ok:
        raise MissingRequirementError("system", spec.card.name, avail)
    return spec.load_class()(**options)


__all__ = ["SYSTEMS", "System", "SystemCard", "SystemSpec", "build_system", "config_hash"]
