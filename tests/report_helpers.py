"""A small scored suite for the report tests (leaderboard HTML, tables, regression gate)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from urgentbench.manifest import Utterance, write_manifest

from conftest import FIXTURES, TRANSCRIPTS

FAST_METRICS = "pesq,estoi,sdr,si_sdr,lsd"


def make_report_suite(root: Path, n: int = 6, name: str = "rep") -> Path:
    """A suite of fixture speech at 16 kHz in two conditions; returns the folder of suites."""
    folder = root / "suites" / name
    utts = []
    for i in range(n):
        speaker = "ab"[i % 2]
        utts.append(
            Utterance(
                id=f"{name}_{i:03d}",
                sample_rate=16000,
                clean=str(FIXTURES / f"speech_{speaker}_22k.flac"),
                text=TRANSCRIPTS[speaker],
                speaker=speaker,
                seed=i,
                degradations=[],
                tags={"condition": "quiet" if i < n // 2 else "loud"},
            )
        )
    sha = write_manifest(folder / "manifest.jsonl", utts)
    card = {
        "name": name,
        "version": "1",
        "description": "report test suite",
        "sample_rate": 16000,
        "manifest": "manifest.jsonl",
        "manifest_sha256": sha,
        "metrics": FAST_METRICS.split(","),
        "categories": {"intrusive": ["pesq", "estoi", "sdr", "lsd"]},
    }
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    return folder.parent


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
