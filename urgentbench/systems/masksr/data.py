"""Training pairs simulated on the fly with urgentbench's own degradation pipeline.

Each example takes a random segment of a random clean file (resampled with soxr to
44.1 kHz) and degrades it with the project's degradations
(:mod:`urgentbench.simulation.degradations`), in URGENT's order:

1. ``reverb`` (probability ``p_reverb``): a shoebox room from the image source method;
   the input gets the full RIR, the *target* the early part (direct path + 50 ms), as in
   the benchmark's suites;
2. additive noise (``p_noise``) at an SNR drawn from ``snr_db``, measured against the
   active-speech power exactly as the pipeline's ``noise`` degradation does: a random
   segment of a file from the noise folder, or, without a noise folder, the pipeline's
   generated noise types;
3. ``clipping`` (``p_clipping``) and ``bandwidth_limit`` (``p_bandwidth``).

Input and target are then scaled together to a random peak level (``peak_db``). Each
example also carries the target resampled to 16 kHz (the HuBERT teacher's rate).

Random streams are seeded from (seed, rank, data-loader worker, starting step), so runs
are reproducible, ranks and workers never draw the same examples, and a resumed run does
not replay the examples of the steps it already took.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np
import torch

from urgentbench.systems.masksr.configs import SimulationConfig

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


def list_audio(folder: str | Path | None) -> list[Path]:
    """Audio files under ``folder`` (recursively, sorted); empty for None.

    Raises:
        FileNotFoundError: When the folder does not exist.
        ValueError: When it holds no audio file.
    """
    if folder is None:
        return []
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found")
    return files


def _read_segment(path: Path, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``n``-sample segment of ``path`` at ``sample_rate`` (zero-padded when shorter)."""
    import soundfile as sf

    from urgentbench.audio import resample

    info = sf.info(str(path))
    native = int(round(n * info.samplerate / sample_rate)) + 64
    start = int(rng.integers(0, max(1, info.frames - native + 1)))
    x, sr = sf.read(str(path), start=start, frames=native, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    x = np.asarray(resample(np.ascontiguousarray(x), sr, sample_rate), dtype=np.float64)[:n]
    if len(x) < n:
        x = np.concatenate([x, np.zeros(n - len(x))])
    return x


class PairSimulator:
    """Draws (degraded, target, target at 16 kHz) examples from clean and noise files.

    Args:
        clean_files: Clean speech files.
        noise_files: Noise files (empty: the pipeline's generated noise).
        cfg: Degradation probabilities and ranges.
        n_samples: Segment length at ``sample_rate``.
        sample_rate: Model rate (44.1 kHz).
        teacher_rate: Rate of the teacher copy of the target (16 kHz).
    """

    def __init__(self, clean_files: list[Path], noise_files: list[Path], cfg: SimulationConfig,
                 n_samples: int, sample_rate: int = 44100, teacher_rate: int = 16000):
        if not clean_files:
            raise ValueError("no clean speech files to train on")
        self.clean_files = list(clean_files)
        self.noise_files = list(noise_files)
        self.cfg = cfg
        self.n = n_samples
        self.sr = sample_rate
        self.teacher_rate = teacher_rate

    def _reverb(self, rng: np.random.Generator):
        from urgentbench.simulation.degradations import DegradationParamError, Reverb

        c = self.cfg
        for _ in range(20):  # rejection sampling of reachable RT60s and source-mic distances
            dims = [float(rng.uniform(*c.room_x)), float(rng.uniform(*c.room_y)), float(rng.uniform(*c.room_z))]
            pos = [[float(rng.uniform(0.3, d - 0.3)) for d in dims[:2]] + [float(rng.uniform(1.0, min(1.9, dims[2] - 0.2)))]
                   for _ in range(2)]
            dist = math.dist(pos[0], pos[1])
            if not c.mic_distance[0] <= dist <= c.mic_distance[1]:
                continue
            try:
                reverb = Reverb(room_dims=dims, rt60=float(rng.uniform(*c.rt60)), source=pos[0], mic=pos[1])
                reverb.ism_setup()
            except DegradationParamError:
                continue
            return reverb
        return None

    def _add_noise(self, state, rng: np.random.Generator):
        from urgentbench.simulation.degradations import NOISE_TYPES, Noise, active_speech_power

        snr = float(rng.uniform(*self.cfg.snr_db))
        if not self.noise_files:
            noise = Noise(snr_db=snr, type=str(rng.choice(NOISE_TYPES)), seed=int(rng.integers(0, 2**31 - 1)))
            return noise.apply(state)
        noise = _read_segment(self.noise_files[int(rng.integers(len(self.noise_files)))], self.n, self.sr, rng)
        speech_power = active_speech_power(state.noisy, self.sr)
        noise_power = float(np.mean(noise * noise))
        if speech_power <= 0 or noise_power <= 0:
            return state
        gain = math.sqrt(speech_power / (noise_power * 10.0 ** (snr / 10.0)))
        return dataclasses.replace(state, noisy=state.noisy + gain * noise)

    def example(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One example: ``noisy`` and ``target`` (float32, ``n_samples``) and ``target16`` (16 kHz)."""
        from urgentbench.audio import fit_length, resample
        from urgentbench.simulation.degradations import (
            BandwidthLimit,
            Clipping,
            RenderState,
            active_speech_power,
        )

        c = self.cfg
        for _ in range(10):  # skip silent segments
            clean = _read_segment(self.clean_files[int(rng.integers(len(self.clean_files)))], self.n, self.sr, rng)
            if active_speech_power(clean, self.sr) > 1e-8:
                break
        state = RenderState.from_clean(clean, self.sr)
        if rng.random() < c.p_reverb:
            reverb = self._reverb(rng)
            if reverb is not None:
                state = reverb.apply(state)
        if rng.random() < c.p_noise and active_speech_power(state.noisy, self.sr) > 0:
            state = self._add_noise(state, rng)
        if rng.random() < c.p_clipping and np.abs(state.noisy).max() > 0:
            state = Clipping(threshold=float(rng.uniform(*c.clip_threshold))).apply(state)
        if rng.random() < c.p_bandwidth:
            cutoffs = [f for f in c.cutoff_hz if f < self.sr / 2]
            if cutoffs:
                state = BandwidthLimit(cutoff_hz=float(rng.choice(cutoffs))).apply(state)
        peak = max(float(np.abs(state.noisy).max()), float(np.abs(state.target).max()), 1e-8)
        gain = 10.0 ** (float(rng.uniform(*c.peak_db)) / 20.0) / peak
        noisy = (state.noisy * gain).astype(np.float32)
        target = (state.target * gain).astype(np.float32)
        n16 = int(round(self.n * self.teacher_rate / self.sr))
        target16 = fit_length(np.asarray(resample(target, self.sr, self.teacher_rate), dtype=np.float32), n16)
        return {"noisy": noisy, "target": target, "target16": target16}


class SimulatedStream(torch.utils.data.IterableDataset):
    """An endless stream of :class:`PairSimulator` examples, seeded per (seed, rank, worker, start step)."""

    def __init__(self, simulator: PairSimulator, seed: int, rank: int, start_step: int):
        super().__init__()
        self.simulator = simulator
        self.seed, self.rank, self.start_step = seed, rank, start_step

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        rng = np.random.default_rng([self.seed, self.rank, worker, self.start_step])
        while True:
            yield self.simulator.example(rng)
