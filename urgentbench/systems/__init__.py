"""System plug-ins: cards that name a class and its arguments, found lazily and built on demand.

A system is a card (:class:`SystemCard`: description, rate, packages, assets, and
``entry`` + ``args``: which class runs it with which arguments) and a :class:`System`
subclass. Cards come from three places, searched in this order on the first lookup:

* folders on ``$URGENTBENCH_SYSTEMS_PATH`` (``os.pathsep``-separated), each holding
  ``<name>/card.yaml`` and the code its entry names (``file.py:Class``, imported as
  ``urgentbench_systems.<name>.<file>``); they may shadow a built-in system;
* the built-in cards, package data in :data:`CARDS_DIR` (``urgentbench/systems/cards/``),
  whose entries are modules of this package (``urgentbench.systems.demucs:DemucsSystem``);
* the entry-point group ``urgentbench.systems`` of installed packages. An entry point
  names a :class:`SystemCard` or the path of a card file (then listing it imports only
  that module), or a :class:`System` subclass with a ``card`` class attribute. Entry
  points are read only when a name is not found among the cards or when all systems are
  listed; a broken one is logged and skipped.

Reading cards imports no system code: a system's class is imported when it is built
(:meth:`SystemSpec.build`), and the instance is given its card, so one class serves
several cards (``demucs-dns48``/``dns64``/``master64`` differ only in ``args``).
"""

from __future__ import annotations

import logging
import os
import sys
import types
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from urgentbench.assets.registry import declare_pin_modules
from urgentbench.registry import Entry, Registry
from urgentbench.requirements import Availability
from urgentbench.systems.base import CardError, System, SystemCard, availability, config_hash

logger = logging.getLogger(__name__)

#: The built-in cards (package data).
CARDS_DIR = Path(__file__).resolve().parent / "cards"
#: Package under which the code of card folders is imported.
NAMESPACE = "urgentbench_systems"


class SystemSpec:
    """A registered system: its card (readable without importing code), its class on demand.

    Args:
        card: The card, or None when it comes from an entry point not read yet.
        cls: The class when already imported (a plug-in class carrying its card).
        load: For an entry point: returns a :class:`SystemCard`, a card file path or a
            :class:`System` subclass with a ``card`` attribute.
        origin: Where it comes from, for messages.
    """

    def __init__(
        self,
        card: SystemCard | None = None,
        *,
        cls: type[System] | None = None,
        load: Callable[[], Any] | None = None,
        origin: str = "builtin",
    ):
        if card is None and load is None:
            raise ValueError("a SystemSpec needs a card or a way to load one")
        self._card = card
        self._cls = cls
        self._load = load
        self.origin = origin

    @property
    def card(self) -> SystemCard:
        """The system card (reading an entry point's object the first time).

        Raises:
            CardError: When the entry point gives neither a card nor a System class with one.
        """
        if self._card is None:
            assert self._load is not None  # guaranteed by __init__
            obj = self._load()
            if isinstance(obj, SystemCard):
                self._card = obj
            elif isinstance(obj, (str, os.PathLike)):
                self._card = SystemCard.from_yaml(obj)
            elif isinstance(obj, type) and issubclass(obj, System) and isinstance(getattr(obj, "card", None), SystemCard):
                self._card, self._cls = obj.card, obj
            else:
                raise CardError(
                    f"{self.origin}: expected a SystemCard, a card file or a System subclass with a card, "
                    f"got {obj!r}"
                )
        return self._card

    def load_class(self) -> type[System]:
        """Import the class the card's ``entry`` names (the card is not attached to it).

        Raises:
            CardError: When the entry does not name a System subclass.
            ImportError: When its module cannot be imported.
        """
        if self._cls is None:
            card = self.card
            if self._cls is None:
                self._cls = _import_entry(card)
        return self._cls

    def build(self, **options: Any) -> System:
        """A new, not yet set up instance with this card and ``options`` (no availability check).

        Raises:
            ValueError: For an unknown option or a bad value.
        """
        return self.load_class()(card=self.card, **options)

    def availability(self, options: dict | None = None) -> Availability:
        """Whether its packages and assets are present.

        Args:
            options: The system arguments it would run with. When given (and the packages
                are present), the instance says which assets these options need
                (:meth:`System.needed_assets`; e.g. none when a local checkpoint
                replaces the asset). Listings pass nothing and check every card asset.
        """
        if options is None or not availability(self.card, assets=False).ok:
            return availability(self.card)
        return availability(self.card, assets=self.build(**dict(options)).needed_assets())


def _import_entry(card: SystemCard) -> type[System]:
    """Import the class named by ``card.entry`` (a module path, or a file beside the card)."""
    module, _, attr = card.entry.partition(":")
    if module.endswith(".py") or "/" in module:
        folder = card.folder
        if folder is None:
            raise CardError(f"{card.source}: entry {card.entry!r} names a file, but the card has no folder")
        _namespace([folder.parent])
        module = f"{NAMESPACE}.{folder.name}.{module.removesuffix('.py').replace('/', '.')}"
    try:
        cls = Entry(card.name, f"{module}:{attr}").load()
    except AttributeError as exc:
        raise CardError(f"{card.source}: entry {card.entry!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, System)):
        raise CardError(f"{card.source}: entry {card.entry!r} is not a urgentbench System subclass")
    return cls


def system_dirs() -> list[Path]:
    """Folders of ``$URGENTBENCH_SYSTEMS_PATH`` searched for ``<name>/card.yaml``, in priority order."""
    dirs = [Path(p) for p in os.environ.get("URGENTBENCH_SYSTEMS_PATH", "").split(os.pathsep) if p]
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


def _discover_cards(registry: _SystemRegistry) -> None:
    dirs = system_dirs()
    _namespace(dirs)
    paths = [p for d in dirs for p in sorted(d.glob("*/card.yaml"))] + sorted(CARDS_DIR.glob("*.yaml"))
    for card_path in paths:
        try:
            card = SystemCard.from_yaml(card_path)
        except CardError as exc:
            logger.error("skipping system card: %s", exc)
            continue
        if registry.has(card.name):
            logger.warning("system %r in %s shadowed by an earlier one", card.name, card_path)
            continue
        registry.register(card.name, SystemSpec(card), aliases=card.aliases, origin=str(card_path))


class _SystemRegistry(Registry[SystemSpec]):
    """The system registry: entry points are registered by name and read only when needed."""

    def __init__(self) -> None:
        super().__init__("system", entry_point_group="urgentbench.systems")
        self._pending: set[str] = set()

    def has(self, name: str) -> bool:
        """Whether ``name`` is registered so far (no discovery; for discoverers)."""
        return name.lower() in self._aliases

    def _load_entry_points(self) -> None:
        for ep in metadata.entry_points(group="urgentbench.systems"):
            if self.has(ep.name):
                logger.warning("system %r from entry point %s ignored: name taken", ep.name, ep.value)
                continue
            origin = f"entry point {ep.value}"
            self.register(ep.name, SystemSpec(load=ep.load, origin=origin), origin=origin)
            self._pending.add(ep.name.lower())

    def _read_pending(self, keys: list[str]) -> None:
        """Read the cards of entry points (their aliases, their real names); drop broken ones."""
        with self._lock:
            for key in keys:
                if key not in self._pending:
                    continue
                self._pending.discard(key)
                entry = self._entries[key]
                spec = entry.target
                assert isinstance(spec, SystemSpec)
                try:
                    card = spec.card
                except Exception as exc:  # a broken third-party plug-in must not break the CLI
                    logger.error("system %s could not be loaded: %s", spec.origin, exc)
                    self.unregister(key)
                    continue
                self.unregister(key)
                if self.has(card.name):
                    logger.warning("system %r from %s ignored: name taken", card.name, spec.origin)
                    continue
                aliases = [a for a in card.aliases if not self.has(a)]
                self.register(card.name, spec, aliases=aliases, origin=spec.origin)

    def entry(self, name: str) -> Entry[SystemSpec]:
        """The entry for ``name`` (case-insensitive, aliases allowed); entry points read if needed.

        Raises:
            UnknownNameError: If no card, folder or entry point has that name or alias.
        """
        self._ensure_discovered()
        key = self._aliases.get(name.lower())
        if key in self._pending:
            self._read_pending([key])
            key = self._aliases.get(name.lower())
        if key is None and self._pending:
            self._read_pending(sorted(self._pending))
        return super().entry(name)

    def names(self, include_aliases: bool = False) -> list[str]:
        """The sorted system names (optionally with aliases), entry points included."""
        self._ensure_discovered()
        self._read_pending(sorted(self._pending))
        return super().names(include_aliases)

    def __iter__(self) -> Iterator[Entry[SystemSpec]]:
        self._ensure_discovered()
        self._read_pending(sorted(self._pending))
        return super().__iter__()

    def __contains__(self, name: str) -> bool:
        try:
            self.entry(name)
        except KeyError:
            return False
        return True


SYSTEMS: Registry[SystemSpec] = _SystemRegistry()
SYSTEMS.add_discoverer(_discover_cards)  # type: ignore[arg-type]

#: Modules declaring the assets the built-in systems load, each as ``ASSET_PINS``
#: (``(asset, aliases)`` pairs, defined beside the system's code).
ASSET_MODULES = (
    "urgentbench.systems.demucs_assets",
    "urgentbench.systems.voicefixer",
    "urgentbench.systems.masksr.assets",
    "urgentbench.systems.tfgridnet_assets",
    "urgentbench.systems.urgent2026_assets",
    "urgentbench.systems.frcrn_assets",
)

declare_pin_modules(ASSET_MODULES)


def build_system(name: str, **options: Any) -> System:
    """Instantiate system ``name`` with ``options`` (not yet set up).

    Raises:
        UnknownNameError: For an unknown name.
        MissingRequirementError: When its packages or assets are missing.
        ValueError: For an unknown option or a bad value.
    """
    from urgentbench.requirements import MissingRequirementError

    spec = SYSTEMS.get(name)
    avail = spec.availability(dict(options))
    if not avail.ok:
        raise MissingRequirementError("system", spec.card.name, avail)
    return spec.build(**options)


__all__ = ["CARDS_DIR", "SYSTEMS", "System", "SystemCard", "SystemSpec", "build_system", "config_hash"]
