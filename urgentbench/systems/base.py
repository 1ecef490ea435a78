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
    """What a system is, which class runs it with which arguments, and what it needs.

    Built-in cards are package data (``urgentbench/systems/cards/<name>.yaml``); a folder
    on ``$URGENTBENCH_SYSTEMS_PATH`` holds ``<name>/card.yaml`` and its code. ``entry`` is
    ``package.module:Class`` (imported when the system is built) or, in a folder,
    ``file.py:Class`` relative to the card. ``args`` are keyword arguments the card gives
    the class (e.g. ``{model: dns48}``), so one class serves several cards.
    """

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
    #: Keyword arguments the card gives its class (the class's ``card_arguments``).
    args: dict[str, Any] = field(default_factory=dict)
    #: The card file it was read from (None for a card built in code); not part of :meth:`to_dict`.
    path: str | None = None

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
        known = set(cls.__dataclass_fields__) - {"path"}
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
        if not isinstance(data["entry"], str) or ":" not in data["entry"]:
            raise CardError(f"{path}: entry must be 'package.module:Class' (or 'file.py:Class' in a folder)")
        args = data.get("args") or {}
        if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
            raise CardError(f"{path}: args must be a mapping of argument names to values")
        data["args"] = dict(args)
        data["aliases"] = list(data.get("aliases") or [])
        data["assets"] = list(data.get("assets") or [])
        return cls(**data, path=str(path))

    @property
    def folder(self) -> Path | None:
        """The folder of the card file (where ``file.py:Class`` entries are looked up)."""
        return Path(self.path).parent if self.path else None

    @property
    def source(self) -> str:
        """Where the card comes from, for messages: its file, else its name."""
        return self.path or f"system card {self.name!r}"

    def to_dict(self) -> dict[str, Any]:
        """Serialisable form (for provenance)."""
        d = asdict(self)
        d.pop("path")
        return d


class System:
    """Base class of enhancement systems.

    Subclasses implement :meth:`enhance` (and :meth:`setup` to load models). The registry
    builds every instance with its card (:meth:`SystemSpec.build
    <urgentbench.systems.SystemSpec.build>`), so one class serves several cards; a class
    may instead carry a ``card`` class attribute of its own (third-party plug-ins).

    Args:
        card: The system card (default: the class's own ``card`` attribute).
        **options: System arguments (``--system-args k=v``): the class's
            :meth:`default_options`, or one of its :attr:`card_arguments` to override the
            card's value. Part of the config hash.

    Raises:
        CardError: When the card's ``args`` do not fit the class.
        ValueError: For an unknown option.
    """

    #: Names of the arguments a card gives the class (its ``args:``), e.g. ``("model",)``.
    #: All are required; a user option of the same name overrides the card's value.
    card_arguments: ClassVar[tuple[str, ...]] = ()

    #: True for a system that works at whatever rate it is given (the ``noisy`` identity):
    #: the runner then hands it the input at its own rate and skips resampling in both
    #: directions, so the output is bit-exact where the system is. The card's
    #: ``sample_rate`` is then only nominal. Default False: the runner resamples to
    #: ``card.sample_rate`` and back.
    native_rate_follows_input: ClassVar[bool] = False

    card: SystemCard

    def __init__(self, card: SystemCard | None = None, **options: Any):
        if card is None:
            card = getattr(type(self), "card", None)
            if not isinstance(card, SystemCard):
                raise TypeError(
                    f"{type(self).__name__} needs its system card: build it with "
                    "urgentbench.systems.build_system(name) or pass card=SystemCard(...)"
                )
        self.card = card
        allowed = set(self.card_arguments)
        wrong = sorted(set(card.args) - allowed)
        if wrong:
            raise CardError(
                f"{card.source}: args {wrong} are not arguments of {type(self).__name__} "
                f"(it takes {sorted(allowed) or 'none'})"
            )
        defaults = self.default_options()
        unknown = set(options) - set(defaults) - allowed
        if unknown:
            raise ValueError(
                f"system {card.name!r} got unknown option(s) {sorted(unknown)}; "
                f"known: {sorted(set(defaults) | allowed)}"
            )
        #: The card's arguments with the user's overrides: what the class runs with.
        self.args: dict[str, Any] = {**card.args, **{k: v for k, v in options.items() if k in allowed}}
        missing = sorted(allowed - set(self.args))
        if missing:
            raise CardError(f"{card.source}: {type(self).__name__} needs args {missing}")
        # An option equal to the card's own argument changes nothing, so it is not recorded
        # (and the config hash stays the card's).
        kept = {k: v for k, v in options.items() if not (k in card.args and card.args[k] == v)}
        #: Options as given (the defaults plus ``--system-args``), without the card's arguments.
        self.options: dict[str, Any] = {**defaults, **kept}

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """Arguments the system accepts, with defaults."""
        return {}

    @property
    def sample_rate(self) -> int:
        """The native rate the system works at."""
        return self.card.sample_rate

    def needed_assets(self) -> list[str]:
        """The assets a run with these options needs (default: all the card's)."""
        return list(self.card.assets)

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
        """A short hash of what changes outputs: the system name and its options.

        The card's own ``args`` are part of the system's identity (its name) and are not
        hashed; a user option overriding one of them is (it is in :attr:`options`).
        """
        return config_hash({"system": self.card.name, "options": self.options})


def mono_waveform(
    waveform: np.ndarray,
    sample_rate: int,
    rate: int | None,
    label: str,
    dtype: Any = np.float32,
    allow_empty: bool = False,
) -> np.ndarray:
    """``waveform`` as a mono array of ``dtype``, after the checks every :meth:`System.enhance` makes.

    Args:
        waveform: The input.
        sample_rate: Its rate in Hz.
        rate: The only rate the system runs at (None: any).
        label: The system's name in the message (``"DEMUCS"``).
        dtype: The array type the system works in.
        allow_empty: Accept an empty waveform.

    Raises:
        ValueError: ``"<label> runs at <rate> Hz, got <sample_rate> Hz"``, or ``"expected a
            non-empty mono waveform, got shape <shape>"``.
    """
    if rate is not None and sample_rate != rate:
        raise ValueError(f"{label} runs at {rate} Hz, got {sample_rate} Hz")
    x = np.asarray(waveform, dtype=dtype)
    if x.ndim != 1 or (x.size == 0 and not allow_empty):
        raise ValueError(f"expected a {'' if allow_empty else 'non-empty '}mono waveform, got shape {x.shape}")
    return x


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
