"""A small scored suite for the report tests (leaderboard HTML, tables, regression gate)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from test_runner import FAST_METRICS, make_suite  # noqa: F401  (FAST_METRICS is re-exported for the report tests)


def make_report_suite(root: Path, n: int = 6, name: str = "rep") -> Path:
    """A suite of fixture speech at 16 kHz in two conditions; returns the folder of suites."""
    return make_suite(
        root, n, name, condition=lambda i, n: "quiet" if i < n // 2 else "loud", description="report test suite"
    )


def enhanced_dir(results: Path, suite_key: str, system: str) -> Path:
    """The folder of a plug-in system's stored outputs (one configuration)."""
    folders = sorted((results / "enhanced" / suite_key).glob(f"{system}-*"))
    if len(folders) != 1:
        raise FileNotFoundError(f"expected one stored configuration of {system}, found {folders}")
    return folders[0]


def write_degraded(source: Path, dest: Path, snr_db: float, seed: int = 0) -> Path:
    """Copies of every ``.flac`` in ``source`` with white noise added at ``snr_db``."""
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for path in sorted(source.glob("*.flac")):
        x, sr = sf.read(path, dtype="float32")
        noise = rng.standard_normal(len(x)).astype(np.float32)
        gain = np.sqrt(np.mean(x**2) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
        sf.write(dest / path.name, np.clip(x + gain * noise, -1, 1), sr, subtype="PCM_16")
    return dest
