"""Shared fixtures: real (synthesised) speech committed under tests/fixtures."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"

TRANSCRIPTS = {
    "a": "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.",
    "b": "It's easy to tell the depth of a well. These days a chicken leg is a rare dish.",
}


def load_speech(name: str, sample_rate: int) -> np.ndarray:
    """Fixture speech ``name`` ("a" or "b") resampled with soxr to ``sample_rate``."""
    from urgentbench.audio import read_audio, resample

    x, sr = read_audio(FIXTURES / f"speech_{name}_22k.flac")
    return resample(x, sr, sample_rate)


def white_noise_mix(clean: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """Clean speech plus white noise at ``snr_db`` over the whole clip (fixed seed)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(clean)).astype(np.float32)
    gain = np.sqrt(np.mean(clean**2) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    return (clean + gain * noise).astype(np.float32)


@pytest.fixture(scope="session")
def speech16() -> np.ndarray:
    """Speech a at 16 kHz."""
    return load_speech("a", 16000)


@pytest.fixture(scope="session")
def speech44() -> np.ndarray:
    """Speech a at 44.1 kHz."""
    return load_speech("a", 44100)


#: The asset cache the tests started with (``make install`` fetches the pinned upstream-code
#: assets there), read before any test points ``URGENTBENCH_CACHE`` at a folder of its own.
_DEFAULT_ASSETS = None


def _default_assets() -> Path:
    global _DEFAULT_ASSETS
    if _DEFAULT_ASSETS is None:
        from urgentbench.assets.pins import cache_dir

        _DEFAULT_ASSETS = cache_dir() / "assets"
    return _DEFAULT_ASSETS


#: Upstream code pinned as assets (urgentbench.assets.code): code, not weights, so a test
#: that starts from an empty cache still has it.
CODE_ASSETS = ("nisqa-code", "resemblyzer-0.1.4", "denoiser-0.1.5", "espnet-202511")


def seed_code_assets(cache: Path) -> None:
    """Link the pinned upstream-code assets of the default cache into ``cache``'s assets folder.

    Fails the test (never skips) when one is absent: ``make install`` fetches them.
    """
    target = Path(cache) / "assets"
    target.mkdir(parents=True, exist_ok=True)
    for name in CODE_ASSETS:
        source = _default_assets() / name
        if not source.is_dir():
            pytest.fail(f"{source} not found: run `urgentbench assets fetch {name}` (make install does)")
        link = target / name
        if not link.exists():
            link.symlink_to(source, target_is_directory=True)


_default_assets()  # resolved at collection, before any test changes the environment


@functools.cache
def demo_pair(index: int, fs: int) -> tuple[np.ndarray, np.ndarray]:
    """(clean reference, noisy input) of demo utterance ``index`` rendered and resampled to ``fs``, float32."""
    from urgentbench.audio import resample
    from urgentbench.simulation.render import render_utterance
    from urgentbench.suites import get_suite

    suite = get_suite("demo")
    utt = suite.utterances()[index]
    rendered = render_utterance(utt, suite.folder)
    ref, noisy = rendered.reference, rendered.noisy
    if fs != utt.sample_rate:
        ref, noisy = resample(ref, utt.sample_rate, fs), resample(noisy, utt.sample_rate, fs)
    return ref.astype(np.float32), noisy.astype(np.float32)
