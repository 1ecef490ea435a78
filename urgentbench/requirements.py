"""Declared requirements of plug-ins (packages and model assets) and availability checks.

Every system and metric declares what it needs. Checking availability never imports
the package (``importlib.util.find_spec`` only), so ``urgentbench ls`` stays fast and
never shows a traceback; a missing requirement is reported with the exact command
that fixes it.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PackageRequirement:
    """A Python package a plug-in imports.

    Args:
        module: The importable module name (``"pesq"``, ``"faster_whisper"``).
        install: The exact shell command that installs it on a fresh machine.
    """

    module: str
    install: str

    def is_available(self) -> bool:
        """Return True when the module can be imported (without importing it)."""
        if sys.modules.get(self.module) is not None:
            # imported already; find_spec would raise for a package that replaced its module
            # object and left no __spec__ (humanfriendly's deprecation proxy, which ESPnet imports)
            return True
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False

    def problem(self) -> str | None:
        """Describe what is missing, or None when the package is present."""
        if self.is_available():
            return None
        return f"package '{self.module}' is not installed; fix: {self.install}"


def pip(*specs: str, no_deps: bool = False) -> str:
    """Build a pip install command for ``specs``."""
    flag = "--no-deps " if no_deps else ""
    quoted = " ".join(f"'{s}'" if any(c in s for c in "<>=[") else s for s in specs)
    return f"pip install {flag}{quoted}"


@dataclass
class Availability:
    """Whether a plug-in can run here, and if not, why and how to fix it."""

    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is missing."""
        return not self.problems

    def summary(self) -> str:
        """One line: ``available`` or the problems joined with ``; ``."""
        return "available" if self.ok else "; ".join(self.problems)


def check_requirements(packages: list[PackageRequirement], assets: list[object] = ()) -> Availability:
    """Check packages and assets (objects with a ``problem()`` method) for availability.

    A problem reported twice (upstream code declared as a package and loaded as an asset,
    as ESPnet's wheel for the OWSM metrics) is listed once.
    """
    problems = [p for p in (req.problem() for req in packages) if p]
    problems += [p for p in (asset.problem() for asset in assets) if p]  # type: ignore[attr-defined]
    return Availability(list(dict.fromkeys(problems)))


class MissingRequirementError(RuntimeError):
    """Raised when a plug-in is used although one of its requirements is missing."""

    def __init__(self, kind: str, name: str, availability: Availability):
        self.availability = availability
        super().__init__(f"{kind} {name!r} is unavailable: {availability.summary()}")
