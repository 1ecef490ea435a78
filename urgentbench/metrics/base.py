"""The metric plug-in protocol: metadata as class attributes, ``setup`` once, ``compute`` per utterance.

A metric may report several outputs (DNSMOS reports SIG, BAK, OVRL and P.808); each
output carries its own direction and aggregation. The runner hands ``compute`` the
enhanced and reference waveforms already resampled (once, shared by all metrics) to
the metric's working rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from urgentbench.requirements import Availability, PackageRequirement, check_requirements

#: URGENT's metric categories, in leaderboard order.
CATEGORIES = ("non-intrusive", "intrusive", "downstream-independent", "downstream")


class MetricError(RuntimeError):
    """A metric could not be computed for one utterance; the message is the recorded reason."""


@dataclass(frozen=True)
class BatchItem:
    """One utterance handed to :meth:`Metric.compute_batch`: the arguments of :meth:`Metric.compute`."""

    estimate: np.ndarray
    reference: np.ndarray | None
    sample_rate: int
    transcript: str | None = None


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Group item indices into batches of similar length (sorted by length, then chunked).

    Args:
        lengths: Length of each item (samples, frames or windows).
        batch_size: Most items per batch (at least 1).

    Returns:
        Lists of indices into ``lengths``; every index appears exactly once.

    Raises:
        ValueError: When ``batch_size`` is not a positive integer.
    """
    from urgentbench.validation import require_int

    batch_size = require_int(batch_size, "batch_size")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[k : k + batch_size] for k in range(0, len(order), batch_size)]


@dataclass(frozen=True)
class Output:
    """One number a metric reports per utterance.

    Args:
        name: Column name (``"pesq"``, ``"dnsmos_ovrl"``).
        higher_is_better: Ranking direction.
        description: One line for leaderboards.
        aggregate: ``"mean"`` (nan-mean over utterances) or ``"corpus"`` (the metric's
            :meth:`Metric.aggregate` combines per-utterance statistics, e.g. WER).
    """

    name: str
    higher_is_better: bool
    description: str
    aggregate: str = "mean"


class Metric:
    """Base class of all metrics.

    Subclasses set the class attributes below and implement :meth:`compute`; heavy
    imports and model loading belong in :meth:`setup`, never at module level.
    """

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    category: ClassVar[str]
    needs_reference: ClassVar[bool] = True
    needs_transcript: ClassVar[bool] = False
    #: Rate the metric works at; ``None`` means the suite's native rate.
    sample_rate: ClassVar[int | None] = None
    version: ClassVar[str] = "1"
    outputs: ClassVar[tuple[Output, ...]]
    packages: ClassVar[tuple[PackageRequirement, ...]] = ()
    reference_implementation: ClassVar[str] = ""
    #: Distribution names whose installed versions go into :meth:`provenance`.
    distributions: ClassVar[tuple[str, ...]] = ()
    #: Most utterances :meth:`compute_batch` runs through the model at once; 1 means the
    #: metric has no batched backend (the default :meth:`compute_batch` loops over
    #: :meth:`compute`). Not an option: it never changes the numbers (within 1e-6).
    batch_size: ClassVar[int] = 1
    #: True when part of the work depends on the reference alone (:meth:`reference_state`), so
    #: the runner computes it once per utterance and reuses it for every system.
    reference_state_cacheable: ClassVar[bool] = False

    def __init__(self, **options: Any):
        unknown = set(options) - set(self.default_options())
        if unknown:
            raise ValueError(
                f"metric {self.name!r} got unknown option(s) {sorted(unknown)}; "
                f"known: {sorted(self.default_options())}"
            )
        self.options = {**self.default_options(), **options}

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """Options the metric accepts, with their defaults (part of the result key)."""
        return {}

    @classmethod
    def hashed_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The complete ``options`` as they enter the options hash (default: all of them).

        :class:`~urgentbench.metrics.model.ModelMetric` leaves out ``device="cpu"``.
        """
        return dict(options)

    @classmethod
    def availability(cls, options: dict[str, Any] | None = None) -> Availability:
        """Whether the packages, and the assets these options (default: the defaults) load, are present."""
        assets = cls.assets_for({**cls.default_options(), **(options or {})})
        return check_requirements(list(cls.packages), list(assets))

    @classmethod
    def assets(cls) -> Sequence[Any]:
        """Model assets the metric needs (objects with ``problem()`` and ``sha256``)."""
        return ()

    @classmethod
    def assets_for(cls, options: dict[str, Any]) -> Sequence[Any]:
        """The assets the metric loads with these (complete) options; default :meth:`assets`.

        Metrics whose checkpoint depends on an option (``model=...``) override this.
        """
        return cls.assets()

    @classmethod
    def model_hashes(cls, options: dict[str, Any]) -> dict[str, str]:
        """Asset name -> sha256 of the checkpoint that these options load, as installed here.

        Part of the results key (:attr:`urgentbench.runner.MetricSpec.options_hash`), so scores
        made with different checkpoints are stored apart and never ranked together. For an
        asset with unpinned files, the digest recorded when it was installed is used.
        """
        out = {}
        for asset in cls.assets_for(options):
            digest = asset.effective_sha256() if hasattr(asset, "effective_sha256") else asset.sha256
            out[asset.name] = digest
        return out

    @classmethod
    def model_files(cls, options: dict[str, Any]) -> dict[str, str]:
        """Model file or asset name -> sha256 of what these options load, for reports.

        Default :meth:`model_hashes`. Metrics whose models ship in a package and are checked
        against fixed digests at set-up (DNSMOS) list those digests here, so a leaderboard
        names every checkpoint behind its numbers.
        """
        return cls.model_hashes(options)

    @classmethod
    def output(cls, name: str) -> Output:
        """Return the output spec called ``name``."""
        for out in cls.outputs:
            if out.name == name:
                return out
        raise KeyError(f"metric {cls.name!r} has no output {name!r}")

    def working_rate(self, native_rate: int) -> int:
        """The sample rate ``compute`` receives for audio whose native rate is ``native_rate``."""
        return self.sample_rate or native_rate

    def setup(self) -> None:
        """Load models; called once per worker process before the first ``compute``."""

    def import_packages(self) -> None:
        """Import the declared packages now (a worker does it at set-up, so that import time is not kernel time).

        Raises:
            ImportError: For a package that does not import (``compute`` reports it with its install hint).
        """
        import importlib

        for package in self.packages:
            importlib.import_module(package.module)

    def provenance(self) -> dict[str, Any]:
        """Versions and hashes that identify what produced the numbers."""
        from urgentbench.provenance import package_versions

        return {
            "version": self.version,
            "options": self.options,
            "packages": package_versions(self.distributions),
        }

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Score one utterance.

        Metrics that cache reference state (:attr:`reference_state_cacheable`) need not
        implement it: the default is :meth:`compute_with_state` given the reference's
        :meth:`reference_state`, so both paths run the same code.

        Returns:
            A dict with a value (float, or None when undefined) for every output, plus
            optional per-utterance extras (JSON-serialisable) used by corpus aggregation.

        Raises:
            MetricError: When the utterance cannot be scored; the message is recorded.
        """
        if not self.reference_state_cacheable:
            raise NotImplementedError
        state = self.reference_state(reference, sample_rate)  # type: ignore[arg-type]  # it checks for None
        return self.compute_with_state(estimate, reference, state, sample_rate, transcript=transcript)

    def reference_state(self, reference: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """What :meth:`compute_with_state` needs from the reference alone.

        For metrics that set :attr:`reference_state_cacheable`; arrays only, so that it
        round-trips exactly through an ``.npz`` file.

        Raises:
            MetricError: When the reference cannot be analysed (recorded as the reason).
        """
        raise NotImplementedError(f"{self.name} has no reference state")

    def compute_with_state(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        state: dict[str, np.ndarray],
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`compute` given the reference's :meth:`reference_state` (computed earlier).

        The default :meth:`compute` of a metric that caches reference state is
        ``compute_with_state(estimate, reference, reference_state(reference), ...)``, so both
        paths run the same code and give identical values.
        """
        raise NotImplementedError(f"{self.name} has no reference state")

    def compute_batch(self, items: Sequence[BatchItem]) -> list[dict[str, Any] | Exception]:
        """Score several utterances; the result for each equals what :meth:`compute` gives it.

        The default calls :meth:`compute` once per item. Metrics with a batched backend
        override it (length-bucketed batches of at most :attr:`batch_size` utterances).

        Returns:
            One entry per item, in order: the dict :meth:`compute` returns, or the exception
            it raises for that item (:class:`MetricError` for a recorded reason). One bad
            utterance never fails the others.
        """
        out: list[dict[str, Any] | Exception] = []
        for item in items:
            try:
                out.append(self.compute(item.estimate, item.reference, item.sample_rate, transcript=item.transcript))
            except Exception as exc:  # recorded per item by the caller
                out.append(exc)
        return out

    def compute_batch_from_references(self, items: Sequence[BatchItem]) -> list[dict[str, Any] | Exception]:
        """:meth:`compute_batch` through the reference state, for a batched :meth:`compute_batch_with_state`.

        Each reference is analysed alone (:meth:`reference_state`), then the items whose
        reference could be analysed go through :meth:`compute_batch_with_state` together; an
        item whose reference fails gets that :class:`MetricError` as its result.
        """
        out: list[dict[str, Any] | Exception | None] = [None] * len(items)
        ready: list[int] = []
        states: list[dict[str, np.ndarray]] = []
        for i, item in enumerate(items):
            try:
                states.append(self.reference_state(item.reference, item.sample_rate))  # type: ignore[arg-type]
                ready.append(i)
            except MetricError as exc:
                out[i] = exc
        for i, result in zip(ready, self.compute_batch_with_state([items[i] for i in ready], states)):
            out[i] = result
        return out  # type: ignore[return-value]

    def compute_batch_with_state(
        self, items: Sequence[BatchItem], states: Sequence[dict[str, np.ndarray]]
    ) -> list[dict[str, Any] | Exception]:
        """:meth:`compute_batch` given each item's :meth:`reference_state` (computed earlier, usually cached).

        The default calls :meth:`compute_with_state` once per item; a metric with a batched
        backend overrides it to run the estimates through its model together.

        Returns:
            One entry per item, in order: what :meth:`compute_with_state` returns for it, or
            the exception it raises.
        """
        out: list[dict[str, Any] | Exception] = []
        for item, state in zip(items, states):
            try:
                out.append(
                    self.compute_with_state(item.estimate, item.reference, state, item.sample_rate,
                                            transcript=item.transcript)
                )
            except Exception as exc:  # recorded per item by the caller
                out.append(exc)
        return out

    @classmethod
    def aggregate(cls, output: str, rows: list[dict[str, Any]]) -> float | None:
        """Combine per-utterance results into the system value of ``output``.

        The default is URGENT's nan-mean over utterances that have a value.
        """
        values = [r[output] for r in rows if r.get(output) is not None and not _isnan(r[output])]
        if not values:
            return None
        return float(np.mean(values))


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)
