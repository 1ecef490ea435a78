"""Which metrics a run computes: names (or a protocol's pinned set) resolved to specs, checked up front."""

from __future__ import annotations

import logging

from urgentbench.metrics import METRICS
from urgentbench.pipeline.errors import RunError
from urgentbench.pipeline.options import RunOptions
from urgentbench.pipeline.specs import MetricSpec
from urgentbench.protocols import get_protocol
from urgentbench.suites import Suite

#: One logger for the pipeline: users see "urgentbench.pipeline" whichever stage speaks.
logger = logging.getLogger(__package__)


def resolve_metrics(
    names: list[str] | None,
    suite: Suite,
    skip_unavailable: bool = False,
    protocol: str | None = None,
    skipped: list[str] | None = None,
) -> list[MetricSpec]:
    """Turn metric names (default: the protocol's, else the suite's) into specs, checking availability up front.

    Args:
        names: Metric names; with a protocol, a subset of its metrics (they keep its options).
        suite: The suite whose metric list is the default.
        skip_unavailable: Skip unavailable metrics with a warning instead of failing.
        protocol: An evaluation protocol (``urgent2025``) that pins metrics and their options.
            Without ``names``, its unavailable metrics are skipped (a protocol is run as far as
            this machine allows); named metrics must be available.
        skipped: When given, receives one line per skipped metric: its name, why, and the
            command that enables it (protocol metrics with no implementation included).

    Raises:
        UnknownNameError: For an unknown metric or protocol.
        RunError: When a metric is unavailable (unless ``skip_unavailable``), or not part of
            the protocol.
    """
    specs: list[MetricSpec] = []
    problems = []
    pinned: dict[str, MetricSpec] = {}
    if protocol:
        edition = get_protocol(protocol)
        pinned = {s.name: s for s in edition.metric_specs()}
        if names:
            outside = [n for n in names if METRICS.get(n).name not in pinned]
            if outside:
                raise RunError(f"metric(s) {', '.join(outside)} are not part of protocol {protocol}")
        else:
            skip_unavailable = True
            if skipped is not None:
                for ref in edition.missing():
                    skipped.append(f"{ref.output}: not implemented here ({ref.deviation or ref.official})")
    for name in names or (list(pinned) if protocol else suite.metrics):
        cls = METRICS.get(name)
        spec = pinned.get(cls.name, MetricSpec(cls.name))
        if spec in specs:
            continue
        avail = cls.availability(dict(spec.options))
        if not avail.ok:
            if skip_unavailable:
                logger.warning("skipping metric %s: %s", cls.name, avail.summary())
                if skipped is not None:
                    skipped.append(f"{cls.name}: {avail.summary()}")
                continue
            problems.append(f"metric {cls.name!r} is unavailable: {avail.summary()}")
            continue
        specs.append(spec)
    if problems:
        raise RunError("\n".join(problems))
    return specs


def metrics_for(suite: Suite, options: RunOptions, skipped: list[str] | None = None) -> list[MetricSpec]:
    """The metrics ``options`` ask for on ``suite``: its names, protocol and ``skip_unavailable``.

    See :func:`resolve_metrics` (``skipped`` receives one line per metric left out).
    """
    return resolve_metrics(options.metric_names, suite, options.skip_unavailable, options.protocol, skipped)
