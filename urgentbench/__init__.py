"""urgentbench: an evaluation benchmark for speech enhancement and restoration (URGENT style)."""

from __future__ import annotations

__version__ = "0.1.0"
