"""The degradation base class, its registry and the state a chain of degradations passes along.

A manifest stores every degradation of an utterance as a :class:`~urgentbench.manifest.DegradationSpec`
(a registered name plus JSON parameters). :func:`build_degradation` turns a spec into a
frozen dataclass whose :meth:`Degradation.apply` maps one :class:`RenderState` to the next.
The built-in degradations are registered by :mod:`urgentbench.simulation.degradations`.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from urgentbench.manifest import DegradationSpec
from urgentbench.registry import Registry

__all__ = ["DEGRADATIONS", "Degradation", "DegradationParamError", "RenderState", "build_degradation",
           "register_degradation"]


class DegradationParamError(ValueError):
    """Parameters of a degradation that are missing, unknown or out of range; names the degradation."""


@dataclass(frozen=True)
class RenderState:
    """The two signals a degradation chain works on.

    Args:
        noisy: The degraded input being built (float64, mono).
        target: What the reference becomes (e.g. speech convolved with the early RIR).
        sample_rate: Rate of both signals in Hz.
    """

    noisy: np.ndarray
    target: np.ndarray
    sample_rate: int

    @classmethod
    def from_clean(cls, clean: np.ndarray, sample_rate: int) -> RenderState:
        """Start a chain from clean speech: ``noisy`` and ``target`` are both copies of it."""
        x = np.array(clean, dtype=np.float64, copy=True)
        return cls(noisy=x, target=x.copy(), sample_rate=int(sample_rate))


#: Degradation name -> class.
DEGRADATIONS: Registry[type[Degradation]] = Registry("degradation")

D = TypeVar("D", bound="type[Degradation]")


def register_degradation(name: str) -> Callable[[D], D]:
    """Class decorator: register a :class:`Degradation` subclass under ``name``.

    Args:
        name: The name used in manifests (``DegradationSpec.name``).
    """

    def decorate(cls: D) -> D:
        cls.name = name
        DEGRADATIONS.register(name, cls, origin=f"{cls.__module__}.{cls.__qualname__}")
        return cls

    return decorate


@dataclass(frozen=True)
class Degradation(abc.ABC):
    """Base class: a frozen dataclass whose fields are the manifest parameters.

    Subclasses validate and normalise their fields in ``__post_init__`` (raising
    :class:`DegradationParamError`) and implement :meth:`apply`.
    """

    name: ClassVar[str] = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Degradation:
        """Build from a manifest's parameter mapping.

        Raises:
            DegradationParamError: For unknown, missing or invalid parameters.
        """
        if not isinstance(params, Mapping):
            raise DegradationParamError(
                f"{cls.name}: parameters must be a mapping, got {type(params).__name__}"
            )
        fields = {f.name: f for f in dataclasses.fields(cls)}
        required = [
            n for n, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        unknown = sorted(set(params) - set(fields))
        missing = [n for n in required if n not in params]
        problems = []
        if unknown:
            problems.append(f"unknown parameter(s) {', '.join(map(repr, unknown))}")
        if missing:
            problems.append(f"missing parameter(s) {', '.join(map(repr, missing))}")
        if problems:
            raise DegradationParamError(
                f"{cls.name}: {'; '.join(problems)} (expected: {', '.join(fields)})"
            )
        return cls(**dict(params))

    def to_params(self) -> dict[str, Any]:
        """JSON-ready parameters (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_spec(self) -> DegradationSpec:
        """The manifest form of this degradation."""
        return DegradationSpec(name=self.name, params=self.to_params())

    @abc.abstractmethod
    def apply(self, state: RenderState) -> RenderState:
        """Return the degraded state (the input state is not modified)."""

    # -- validation helpers used by subclasses ---------------------------------------
    def _set(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)

    def _number(self, key: str, *, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> float:
        value = getattr(self, key)
        if not _is_number(value):
            raise DegradationParamError(f"{self.name}: parameter {key!r} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise DegradationParamError(f"{self.name}: parameter {key!r} must be finite, got {value!r}")
        if lo is not None and (value < lo or (lo_open and value == lo)):
            bound = ">" if lo_open else ">="
            raise DegradationParamError(f"{self.name}: parameter {key!r} must be {bound} {lo}, got {value}")
        if hi is not None and (value > hi or (hi_open and value == hi)):
            bound = "<" if hi_open else "<="
            raise DegradationParamError(f"{self.name}: parameter {key!r} must be {bound} {hi}, got {value}")
        self._set(key, value)
        return value

    def _vector3(self, key: str) -> tuple[float, float, float]:
        value = getattr(self, key)
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 3:
            raise DegradationParamError(
                f"{self.name}: parameter {key!r} must be a list of 3 numbers, got {value!r}"
            )
        out = []
        for v in value:
            if not _is_number(v) or not math.isfinite(v):
                raise DegradationParamError(
                    f"{self.name}: parameter {key!r} must be a list of 3 finite numbers, got {value!r}"
                )
            out.append(float(v))
        vec = (out[0], out[1], out[2])
        self._set(key, vec)
        return vec


def _is_number(value: Any) -> bool:
    """True for int/float (numpy included), False for bool and everything else."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def build_degradation(spec: DegradationSpec | Mapping[str, Any]) -> Degradation:
    """Build the degradation a manifest spec describes.

    Args:
        spec: A :class:`DegradationSpec` or its dict form.

    Raises:
        UnknownNameError: For an unregistered degradation name.
        DegradationParamError: For bad parameters.
    """
    if not isinstance(spec, DegradationSpec):
        spec = DegradationSpec.from_dict(dict(spec))
    cls = DEGRADATIONS.get(spec.name)
    return cls.from_params(spec.params)
