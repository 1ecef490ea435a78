"""What a run records about itself: code version, environment, suite, systems and metrics with their model hashes."""

from __future__ import annotations

import logging
import platform
import sys
from typing import Any

import urgentbench
from urgentbench.pipeline.specs import MetricSpec, ProducerSpec
from urgentbench.protocols import get_protocol
from urgentbench.provenance import git_commit, package_versions
from urgentbench.suites import Suite
from urgentbench.systems import SYSTEMS

#: One logger for the pipeline: users see "urgentbench.pipeline" whichever stage speaks.
logger = logging.getLogger(__package__)


def collect_provenance(
    suite: Suite, producers: list[ProducerSpec], metrics: list[MetricSpec], protocol: str | None = None
) -> dict[str, Any]:
    """Everything needed to tell whether two results are comparable.

    Args:
        suite: The suite.
        producers: Systems and output folders.
        metrics: Metric specs; each entry records the sha256 of every checkpoint it loads.
        protocol: Name of the evaluation protocol the run follows (``--protocol``), if any.
    """
    systems = []
    for p in producers:
        entry: dict[str, Any] = {"name": p.name, "config_hash": p.config_hash, "options": dict(p.options)}
        if p.is_directory:
            entry["outputs"] = p.directory
        elif p.is_callable:
            entry["callable"] = dict(p.metadata).get("callable")
        else:
            try:
                entry.update(SYSTEMS.get(p.name).build(**dict(p.options)).provenance())
            except Exception as exc:  # provenance must never stop a run
                logger.warning("could not collect provenance of system %s: %s", p.name, exc)
                entry["error"] = str(exc)
        systems.append(entry)
    metric_entries = []
    for m in metrics:
        try:
            prov = m.build().provenance()
        except Exception as exc:  # provenance must never stop a run
            logger.warning("could not collect provenance of metric %s: %s", m.name, exc)
            prov = {"error": str(exc)}
        try:
            models = m.cls.model_hashes({**m.cls.default_options(), **dict(m.options)})
        except Exception as exc:  # provenance must never stop a run
            models = {"error": str(exc)}
        metric_entries.append({"name": m.name, "options_hash": m.options_hash, "models": models, **prov})
    return {
        "urgentbench": urgentbench.__version__,
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "suite": {
            "name": suite.name,
            "version": suite.version,
            "manifest_sha256": suite.manifest_sha256,
        },
        "systems": systems,
        "metrics": metric_entries,
        "protocol": _protocol_entry(protocol),
    }


def _protocol_entry(name: str | None) -> dict[str, Any] | None:
    if not name:
        return None
    protocol = get_protocol(name)
    return {"name": protocol.name, "assets": protocol.assets(), "not_computed": [r.output for r in protocol.missing()]}
