"""What needs each asset: the "needed by" column of ``urgentbench assets ls``.

The listing layer above the asset mechanics and the plug-in registries: it reads each
asset's own ``used_by``, every metric's :meth:`~urgentbench.metrics.Metric.assets` and every
system card's ``assets``. The asset mechanics never look upwards.
"""

from __future__ import annotations

import logging

from urgentbench.assets.registry import ASSETS
from urgentbench.metrics import METRICS
from urgentbench.systems import SYSTEMS

logger = logging.getLogger(__name__)


def needed_by() -> dict[str, list[str]]:
    """What needs each asset: the assets' own ``used_by`` plus every metric and system declaring it.

    Plug-ins that cannot be loaded are skipped (listings never fail because of one).

    Returns:
        Asset name -> sorted list like ``["metric nisqa", "system foo"]``.
    """
    users: dict[str, set[str]] = {e.name: set(e.load().used_by) for e in ASSETS}

    def note(asset_name: str, user: str) -> None:
        try:
            canonical = ASSETS.canonical(asset_name)
        except KeyError:
            return
        users.setdefault(canonical, set()).add(user)

    for entry in METRICS:
        try:
            declared = entry.load().assets()
        except Exception as exc:  # a broken third-party metric must not break the listing
            logger.debug("metric %s: cannot list its assets (%s)", entry.name, exc)
            continue
        for asset in declared:
            note(getattr(asset, "name", str(asset)), f"metric {entry.name}")
    for entry in SYSTEMS:
        try:
            declared = entry.load().card.assets
        except Exception as exc:  # same for systems
            logger.debug("system %s: cannot list its assets (%s)", entry.name, exc)
            continue
        for asset_name in declared:
            note(asset_name, f"system {entry.name}")
    return {name: sorted(found) for name, found in users.items()}
