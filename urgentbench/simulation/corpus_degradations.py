"""Degradations for the VCTK-based suites: recorded noise, pyroomacoustics RIRs, MaskSR's BWE recipe.

Registered lazily in :data:`urgentbench.simulation.degradations.DEGRADATIONS`:

``noise_file``
    Additive *recorded* noise: a segment of a corpus file (``@demand/TCAR/ch01.wav``)
    starting at ``offset_s``, resampled with soxr (HQ) to the signal's rate, added at
    ``snr_db`` (active-speech power of ``noisy`` over the segment's mean power, as the
    ``noise`` degradation does). The file is wrapped around when the segment runs past
    its end.
``reverb_pra``
    Room impulse response simulated by pyroomacoustics itself (``ShoeBox`` +
    ``compute_rir``, image source model, no ray tracing) from the room geometry, RT60 and
    image-source order stored in the manifest (no RIR files). Deterministic: the
    simulation runs single-threaded with pinned pyroomacoustics constants (see
    :data:`PRA_CONSTANTS`) under a lock. The input gets the full RIR, the target the early
    RIR (direct path + 50 ms), as in ``reverb``.
``bandwidth_limit_poly``
    The MaskSR / NVSR / VoiceFixer band-limitation recipe: order-8 Chebyshev type I
    low-pass (0.1 dB ripple) at ``cutoff_hz``, zero-phase (``sosfiltfilt``), then
    ``scipy.signal.resample_poly`` down to ``2 * cutoff_hz`` and back. It reproduces the
    MaskSR2 demo page's BWE inputs to the 16-bit floor
    (../shared/research/masksr-and-data.md §4.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from urgentbench.simulation.degradation_base import Degradation, DegradationParamError, RenderState
from urgentbench.simulation.degradations import BandwidthLimit
from urgentbench.simulation.noise import add_at_snr, snr_speech_power
from urgentbench.simulation.reverb import PRA_LOCK, Reverb

__all__ = ["PRA_CONSTANTS", "BandwidthLimitPoly", "NoiseFile", "ReverbPRA", "read_noise_segment"]

#: pyroomacoustics constants pinned while a ``reverb_pra`` RIR is computed (restored afterwards).
PRA_CONSTANTS = {
    "num_threads": 1,  # the RIR builder sums in float32; one thread fixes the summation order
    "frac_delay_length": 81,
    "rir_hpf_enable": True,
    "rir_hpf_fc": 10.0,
    "c": 343.0,
}
#: Largest image-source order a manifest may ask for (bounds the cost of one RIR).
MAX_ORDER_LIMIT = 60
#: Extra source samples read on each side of a noise segment before resampling.
SEGMENT_MARGIN = 256


def read_noise_segment(path: str, offset_s: float, n: int, sample_rate: int) -> np.ndarray:
    """``n`` samples at ``sample_rate`` of a (corpus) noise file from ``offset_s`` on, wrapping around.

    Only the needed part of the file (plus a margin for the resampler) is read and
    resampled, so the result does not depend on anything outside it.

    Args:
        path: ``@corpus/relative`` or a file path.
        offset_s: Start in seconds.
        n: Samples wanted at ``sample_rate``.
        sample_rate: Output rate.

    Raises:
        AudioError: For a missing, unreadable, multichannel or silent file.
        CorpusNotPreparedError: For a corpus path whose corpus is not prepared.
    """
    import soundfile as sf

    from urgentbench.audio import AudioError, resample

    if path.startswith("@"):
        from urgentbench.data import resolve_corpus_path

        file = resolve_corpus_path(path)
    else:
        from pathlib import Path

        file = Path(path)
    if not file.is_file():
        raise AudioError(file, "noise file not found")
    try:
        info = sf.info(str(file))
    except Exception as exc:  # libsndfile errors come in several types
        raise AudioError(file, f"not a readable audio file ({exc})") from exc
    if info.channels != 1:
        raise AudioError(file, f"expected mono noise, got {info.channels} channels")
    sr_in, total = int(info.samplerate), int(info.frames)
    need = math.ceil(n * sr_in / sample_rate) + 2 * SEGMENT_MARGIN
    start = round(offset_s * sr_in) - SEGMENT_MARGIN
    first = start % total
    with sf.SoundFile(str(file)) as f:
        if need >= total:  # a file shorter than the segment: tile it
            whole = f.read(dtype="float64", always_2d=True)[:, 0]
            segment = whole[np.arange(start, start + need) % total]
        else:  # one contiguous run, or two when it wraps past the end
            f.seek(int(first))
            segment = f.read(min(need, total - first), dtype="float64", always_2d=True)[:, 0]
            if len(segment) < need:
                f.seek(0)
                rest = f.read(need - len(segment), dtype="float64", always_2d=True)[:, 0]
                segment = np.concatenate([segment, rest])
    if not np.any(segment):
        raise AudioError(file, f"noise segment at {offset_s} s is pure silence")
    if sr_in == sample_rate:
        y = segment
    else:
        y = np.asarray(resample(segment.astype(np.float32), sr_in, sample_rate), dtype=np.float64)
    lead = round(SEGMENT_MARGIN * sample_rate / sr_in)
    y = y[lead : lead + n]
    if len(y) < n:  # resampler rounding at the very end
        y = np.concatenate([y, np.zeros(n - len(y))])
    return y


@dataclass(frozen=True)
class NoiseFile(Degradation):
    """Additive recorded noise from a file segment at a given SNR; only ``noisy`` changes.

    Args:
        path: ``@corpus/relative`` path of the noise file (mono, any rate).
        offset_s: Segment start in the file, in seconds (wraps around at the end).
        snr_db: Active-speech power of ``noisy`` over the segment's mean power, in dB.
    """

    name: ClassVar[str] = "noise_file"

    path: str
    offset_s: float
    snr_db: float

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise DegradationParamError(f"{self.name}: parameter 'path' must be a non-empty string")
        self._number("offset_s", lo=0.0)
        self._number("snr_db", lo=-50.0, hi=80.0)

    def apply(self, state: RenderState) -> RenderState:
        """Add the noise segment scaled to ``snr_db``.

        Raises:
            ValueError: When ``noisy`` is silent (the SNR is undefined).
        """
        speech_power = snr_speech_power(state, self.name)
        noise = read_noise_segment(self.path, self.offset_s, len(state.noisy), state.sample_rate)
        if float(np.mean(noise * noise)) <= 0.0:
            raise ValueError(f"{self.name}: the noise segment of {self.path} at {self.offset_s} s is silent")
        return add_at_snr(state, noise, speech_power, self.snr_db)


@dataclass(frozen=True)
class ReverbPRA(Reverb):
    """Shoebox reverberation with the RIR computed by pyroomacoustics (``compute_rir``).

    The walls get the energy absorption ``pyroomacoustics.inverse_sabine`` gives for
    ``rt60`` in ``room_dims`` (speed of sound 343 m/s); the image source model runs to
    ``max_order`` (stored in the manifest, so the RIR does not depend on defaults);
    no air absorption, no ray tracing, no randomised image sources. The builder's
    fractional-delay filters are 81 taps long and the RIR is high-passed at 10 Hz
    (pyroomacoustics' defaults, pinned). The RIR starts with pyroomacoustics' global delay
    of 40 samples, which the early-RIR target keeps too, so input and target stay aligned.

    Args:
        room_dims: Room size ``[x, y, z]`` in metres.
        rt60: Target reverberation time in seconds (Sabine).
        source: Source position ``[x, y, z]``.
        mic: Microphone position ``[x, y, z]``.
        max_order: Image source order (0 < order <= 60).
    """

    name: ClassVar[str] = "reverb_pra"

    max_order: int

    def __post_init__(self) -> None:
        super().__post_init__()
        order = self.max_order
        if (
            isinstance(order, bool)
            or not isinstance(order, (int, np.integer))
            or not 0 < order <= MAX_ORDER_LIMIT
        ):
            raise DegradationParamError(
                f"{self.name}: parameter 'max_order' must be an integer in 1..{MAX_ORDER_LIMIT}, got {order!r}"
            )
        self._set("max_order", int(order))

    def rir(self, sample_rate: int) -> np.ndarray:
        """The RIR at ``sample_rate`` (float64), computed by pyroomacoustics.

        Raises:
            DegradationParamError: When the RT60 cannot be reached in this room.
        """
        import pyroomacoustics as pra

        e_abs, _ = self.ism_setup()
        with PRA_LOCK:
            saved = {key: pra.constants.get(key) for key in PRA_CONSTANTS}
            try:
                for key, value in PRA_CONSTANTS.items():
                    pra.constants.set(key, value)
                room = pra.ShoeBox(
                    list(self.room_dims),
                    fs=sample_rate,
                    materials=pra.Material(e_abs),
                    max_order=self.max_order,
                    air_absorption=False,
                    ray_tracing=False,
                    use_rand_ism=False,
                )
                room.add_source(list(self.source))
                room.add_microphone(np.array(self.mic, dtype=np.float64).reshape(3, 1))
                room.compute_rir()
                h = np.array(room.rir[0][0], dtype=np.float64)
            finally:
                for key, value in saved.items():
                    pra.constants.set(key, value)
        return h


@dataclass(frozen=True)
class BandwidthLimitPoly(BandwidthLimit):
    """:class:`BandwidthLimit` with ``resample_poly`` to ``2*cutoff_hz`` and back (MaskSR's BWE recipe).

    Args:
        cutoff_hz: Cut-off in Hz, below the Nyquist frequency; ``2 * cutoff_hz`` and the
            signal's rate must have a rational ratio (any cut-off given to 1 mHz works).
    """

    name: ClassVar[str] = "bandwidth_limit_poly"
    resampler: ClassVar[str] = "poly"
