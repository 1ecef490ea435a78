"""The enhancement-system protocol and the system card.

A system turns a degraded waveform into an enhanced one at its native sample rate:
``enhance(waveform, sample_rate) -> (waveform, sample_rate)``. The runner resamples the
input to :attr:`SystemCard.sample_rate` and the output back to the suite's rate, so a
wrapper only has to handle its own rate. The output must be exactly as long as the
input (time-aligned); the runner rejects anything else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import yaml

from urgentbench.requirements import Availability, PackageRequirement, check_requirements


class CardError(ValueError):
    """A system card that is missing fields or has wrong values."""


@dataclass
class SystemCard:
    """What a system is and what it needs; read from ``systems/<name>/card.yaml``."""

    name: str
    description: str
    sample_rate: int
    entry: str
    aliases: list[str] = field(default_factory=list)
    paper: str = ""
    code: str = ""
    licence: str = ""
    packages: list[PackageRequirement] = field(default_factory=list)
    assets: list[str] = field(default_factory=list)
    #: Algorithmic latency in milliseconds as a streaming system (frame buffering plus
    #: look-ahead and overlap-add delay); None when not stated.
    algorithmic_latency_ms: float | None = None
    #: Number of trained parameters, or a short text ("n/a" for DSP); None when not stated.
    parameters: int | str | None = None
    folder: str | None = None

    @classmethod
    def from_yaml(cls, path: str | Path) -> SystemCard:
        """Read and validate a card file.

        Raises:
            CardError: With the file name and the problem.
        """
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise CardError(f"{path}: cannot read system card ({exc})") from exc
        if not isinstance(data, dict):
            raise CardError(f"{path}: a system card must be a YAML mapping")
        missing = [k for k in ("name", "description", "sample_rate", "entry") if k not in data]
        if missing:
            raise CardError(f"{path}: missing field(s) {', '.join(missing)}")
        known = set(cls.__dataclass_fields__) - {"folder"}
        unknown = set(data) - known
        if unknown:
            raise CardError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
        if not isinstance(data["sample_rate"], int) or data["sample_rate"] <= 0:
            raise CardError(f"{path}: sample_rate must be a positive integer")
        latency = data.get("algorithmic_latency_ms")
        if latency is not None and (
            isinstance(latency, bool) or not isinstance(latency, (int, float)) or latency < 0
        ):
            raise CardError(f"{path}: algorithmic_latency_ms must be a non-negative number")
        params = data.get("parameters")
        if params is not None and (
            isinstance(params, bool)
            or not isinstance(params, (int, str))
            or (isinstance(params, int) and params < 0)
        ):
            raise CardError(f"{path}: parameters must be a non-negative integer or a text such as 'n/a'")
        packages = []
        for item in data.get("packages") or []:
            if not isinstance(item, dict) or set(item) != {"module", "install"}:
                raise CardError(f"{path}: each package needs exactly 'module' and 'install'")
            packages.append(PackageRequirement(**item))
        data["packages"] = packages
        data["aliases"] = list(data.get("aliases") or [])
        data["assets"] = list(data.get("assets") or [])
        return cls(**data, folder=str(path.parent))

    def to_dict(self) -> dict[str, Any]:
        """Serialisable form (for provenance)."""
        d = asdict(self)
        d.pop("folder")
        return d


class System:
    """Base class of enhancement systems.

    Subclasses implement :meth:`enhance` (and :meth:`setup` to load models). The loader
    attaches the parsed card as the ``card`` class attribute.

    Args:
        **options: System arguments (``--system-args k=v``); part of the config hash.
    """

    card: ClassVar[SystemCard]

    #: True for a system that works at whatever rate it is given (the ``noisy`` identity):
    #: the runner then hands it the input at its own rate and skips resampling in both
    #: directions, so the output is bit-exact where the system is. The card's
    #: ``sample_rate`` is then only nominal. Default False: the runner resamples to
    #: ``card.sample_rate`` and back.
    native_rate_follows_input: ClassVar[bool] = False

    def __init__(self, **options: Any):
        unknown = set(options) - set(self.default_options())
        if unknown:
            raise ValueError(
                f"system {self.card.name!r} got unknown option(s) {sorted(unknown)}; "
                f"known: {sorted(self.default_options())}"
            )
        self.options = {**self.default_options(), **options}

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """Arguments the system accepts, with defaults."""
        return {}

    @property
    def sample_rate(self) -> int:
        """The native rate the system works at."""
        return self.card.sample_rate

    @classmethod
    def needed_assets(cls, options: dict[str, Any]) -> list[str]:
        """The card's assets that a run with ``options`` needs (default: all of them)."""
        return list(cls.card.assets)

    def setup(self) -> None:
        """Load models; called once per worker before the first ``enhance``."""

    def enhance(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Enhance one mono float32 waveform given at :attr:`sample_rate`."""
        raise NotImplementedError

    def provenance(self) -> dict[str, Any]:
        """Card, options and the installed versions of the card's packages (subclasses add model hashes)."""
        from importlib import metadata

        from urgentbench.provenance import package_versions

        by_module = metadata.packages_distributions()
        dists = sorted({d for req in self.card.packages for d in by_module.get(req.module, [req.module])})
        return {"card": self.card.to_dict(), "options": self.options, "packages": package_versions(tuple(dists))}

    def config_hash(self) -> str:
        """A short hash of what changes outputs: the system name, version-relevant options."""
        return config_hash({"system": self.card.name, "options": self.options})


def config_hash(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj``, first 12 hex digits."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def availability(card: SystemCard, assets: bool | list[str] = True) -> Availability:
    """Check a card's packages and assets.

    Args:
        card: The system card.
        assets: True: all the card's assets; False: none (packages only); a list: those.
    """
    from urgentbench.assets import get_asset

    names = card.assets if assets is True else (assets or [])
    return check_requirements(card.packages, [get_asset(a) for a in names])
