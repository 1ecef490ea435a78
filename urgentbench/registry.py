"""A small generic plug-in registry with lazy targets, entry points and helpful errors.

Plug-ins are registered by name (plus aliases) either as an object or as a lazy
``"module:attribute"`` string that is imported only when the plug-in is used, so
``import urgentbench`` never pulls in heavy model code. Third-party packages add
plug-ins through an entry-point group (``urgentbench.systems``,
``urgentbench.metrics``). Asking for an unknown name raises :class:`UnknownNameError`
with "did you mean" suggestions and the list of known names.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised when a registry is asked for a name it does not know."""

    def __init__(self, kind: str, name: str, known: list[str], plural: str | None = None):
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        close = difflib.get_close_matches(name, self.known, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(self.known) if self.known else "(none registered)"
        self.message = f"unknown {kind} {name!r}.{hint} Known {plural or kind + 's'}: {listing}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.message


@dataclass
class Entry(Generic[T]):
    """One registered plug-in: its canonical name, aliases and (lazy) target."""

    name: str
    target: T | str
    aliases: tuple[str, ...] = ()
    origin: str = "builtin"

    def load(self) -> T:
        """Return the target, importing it first when it is a ``"module:attr"`` string."""
        if isinstance(self.target, str):
            module_name, _, attr = self.target.partition(":")
            module = importlib.import_module(module_name)
            obj: Any = module
            for part in attr.split("."):
                obj = getattr(obj, part)
            self.target = obj
        return self.target  # type: ignore[return-value]


class Registry(Generic[T]):
    """Name -> plug-in mapping with aliases, lazy loading and entry-point discovery.

    Args:
        kind: What the registry holds, used in messages ("system", "metric").
        entry_point_group: Entry-point group scanned once, on first lookup.
        plural: Plural of ``kind`` in messages (default ``kind + "s"``).
        declared_aliases: Reads the aliases a loaded plug-in declares on itself (a metric
            class's ``aliases``). Plug-ins are then registered by name only and their aliases
            are read when a name is not found, so each alias is written in one place and a
            lookup by canonical name imports nothing more.
    """

    def __init__(
        self,
        kind: str,
        entry_point_group: str | None = None,
        plural: str | None = None,
        declared_aliases: Callable[[T], Iterable[str]] | None = None,
    ):
        self.kind = kind
        self.plural = plural
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}
        self._lock = threading.RLock()
        self._entry_points_loaded = entry_point_group is None
        self._discoverers: list[Callable[[Registry[T]], None]] = []
        #: Discoverers not run since they were added or since the last :meth:`rescan`.
        self._undiscovered: list[Callable[[Registry[T]], None]] = []
        self._discovered_keys: set[str] = set()
        self._declared_aliases = declared_aliases
        #: Keys whose plug-in was loaded to read the aliases it declares.
        self._aliases_read: set[str] = set()

    def register(
        self,
        name: str,
        target: T | str,
        aliases: tuple[str, ...] | list[str] = (),
        origin: str = "builtin",
        override: bool = False,
    ) -> None:
        """Register ``target`` under ``name`` and ``aliases``.

        Raises:
            ValueError: If the name or an alias is taken and ``override`` is false.
        """
        key = name.lower()
        with self._lock:
            taken = [n for n in (key, *[a.lower() for a in aliases]) if n in self._aliases]
            if taken and not override:
                owner = self._entries[self._aliases[taken[0]]]
                raise ValueError(
                    f"{self.kind} name {taken[0]!r} from {origin} is already registered "
                    f"by {owner.origin}"
                )
            entry = Entry(name=name, target=target, aliases=tuple(aliases), origin=origin)
            self._entries[key] = entry
            self._aliases_read.discard(key)
            self._aliases[key] = key
            for alias in aliases:
                self._aliases[alias.lower()] = key

    def add_discoverer(self, discover: Callable[[Registry[T]], None]) -> None:
        """Add a callable that registers plug-ins lazily (e.g. by scanning a folder), run on the next lookup.

        Each discoverer runs once (again after :meth:`rescan`); one added while others run
        (a discoverer importing a package that adds its own) runs in the same lookup.
        """
        with self._lock:
            self._discoverers.append(discover)
            self._undiscovered.append(discover)

    def rescan(self) -> None:
        """Forget what the discoverers found and scan again (e.g. after a search path changed)."""
        with self._lock:
            for key in self._discovered_keys:
                entry = self._entries.pop(key, None)
                if entry is not None:
                    for alias in (key, *[a.lower() for a in entry.aliases]):
                        self._aliases.pop(alias, None)
            self._discovered_keys = set()
            self._undiscovered = list(self._discoverers)

    def _ensure_discovered(self) -> None:
        with self._lock:
            while self._undiscovered:
                discover = self._undiscovered.pop(0)
                before = set(self._entries)
                try:
                    discover(self)
                finally:
                    self._discovered_keys |= set(self._entries) - before
            if not self._entry_points_loaded:
                self._entry_points_loaded = True
                self._load_entry_points()

    def _load_entry_points(self) -> None:
        if self.entry_point_group is None:
            return
        for ep in metadata.entry_points(group=self.entry_point_group):
            if ep.name.lower() in self._aliases:
                logger.warning(
                    "%s %r from entry point %s ignored: name already registered",
                    self.kind,
                    ep.name,
                    ep.value,
                )
                continue
            self.register(ep.name, ep.value, origin=f"entry point {ep.value}")

    def entry(self, name: str) -> Entry[T]:
        """Return the registry entry for ``name`` (case-insensitive, aliases allowed).

        Raises:
            UnknownNameError: If the name is not registered.
        """
        self._ensure_discovered()
        key = self._aliases.get(name.lower())
        if key is None:
            self._read_declared_aliases()
            key = self._aliases.get(name.lower())
        if key is None:
            raise UnknownNameError(self.kind, name, self.names(include_aliases=True), plural=self.plural)
        return self._entries[key]

    def _read_declared_aliases(self) -> None:
        """Load the plug-ins whose declared aliases were not read yet and register those aliases.

        A plug-in that cannot be loaded is skipped (it fails when used by name); an alias
        taken by another plug-in is ignored with a warning.
        """
        if self._declared_aliases is None:
            return
        with self._lock:
            for key, entry in sorted(self._entries.items()):
                if key in self._aliases_read:
                    continue
                self._aliases_read.add(key)
                try:
                    declared = tuple(self._declared_aliases(entry.load()))
                except Exception as exc:  # a broken plug-in must not break lookups of the others
                    logger.debug("%s %s: cannot read its aliases (%s)", self.kind, entry.name, exc)
                    continue
                for alias in declared:
                    owner = self._aliases.setdefault(alias.lower(), key)
                    if owner == key and alias not in entry.aliases:
                        entry.aliases = (*entry.aliases, alias)
                    elif owner != key:
                        logger.warning(
                            "%s alias %r of %s ignored: taken by %s",
                            self.kind,
                            alias,
                            entry.name,
                            self._entries[owner].name,
                        )

    def unregister(self, name: str) -> None:
        """Remove ``name`` (and its aliases); unknown names are ignored (for tests and plug-in reloads)."""
        key = name.lower()
        with self._lock:
            entry = self._entries.pop(key, None)
            self._aliases_read.discard(key)
            if entry is None:
                return
            for alias in [a for a, owner in self._aliases.items() if owner == key]:
                del self._aliases[alias]

    def get(self, name: str) -> T:
        """Return the loaded plug-in for ``name``."""
        return self.entry(name).load()

    def canonical(self, name: str) -> str:
        """Return the canonical name for ``name`` or one of its aliases."""
        return self.entry(name).name

    def names(self, include_aliases: bool = False) -> list[str]:
        """Return the sorted registered names (optionally with aliases)."""
        self._ensure_discovered()
        if include_aliases:
            self._read_declared_aliases()
            return sorted(self._aliases)
        return sorted(e.name for e in self._entries.values())

    def __contains__(self, name: str) -> bool:
        self._ensure_discovered()
        if name.lower() not in self._aliases:
            self._read_declared_aliases()
        return name.lower() in self._aliases

    def __iter__(self) -> Iterator[Entry[T]]:
        self._ensure_discovered()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))
