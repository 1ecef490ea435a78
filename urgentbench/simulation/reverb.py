"""The ``reverb`` degradation: a shoebox room impulse response from the image source method.

pyroomacoustics gives the geometry (image positions and amplitudes, no ray tracing); the
impulse response is summed here in float64 in a fixed order (pyroomacoustics' own builder
accumulates in float32 over a machine-dependent number of threads). The input gets the
full RIR; the target gets the early RIR (direct path + 50 ms), both keep the propagation delay.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass

import numpy as np

from urgentbench.simulation.degradation_base import (
    Degradation,
    DegradationParamError,
    RenderState,
    register_degradation,
)

__all__ = [
    "DIRECT_PATH_FRACTION", "EARLY_RIR_S", "FRACTIONAL_DELAY_TAPS", "ISM_MAX_ORDER", "ISM_ORDER_FRACTION",
    "PRA_LOCK", "RIR_HIGHPASS_HZ", "SPEED_OF_SOUND", "Reverb",
]

#: Length of the early part of the RIR after the direct path (URGENT: 50 ms).
EARLY_RIR_S = 0.05
#: The direct path starts at the first sample with ``|h| >= DIRECT_PATH_FRACTION * max|h|``.
DIRECT_PATH_FRACTION = 0.1
#: Speed of sound (m/s) used for the image sources' delays.
SPEED_OF_SOUND = 343.0
#: Image source order actually used: this fraction of the order pyroomacoustics'
#: ``inverse_sabine`` asks for (which covers the full RT60, i.e. 60 dB of decay) ...
ISM_ORDER_FRACTION = 0.6
#: ... and never more than this. 0.6 covers about 36 dB of decay; the missing tail
#: holds well under 0.1 % of the RIR energy and keeps rendering under half a second.
ISM_MAX_ORDER = 60
#: Taps of the windowed-sinc fractional-delay filter of each image source (odd).
FRACTIONAL_DELAY_TAPS = 81
#: The summed RIR goes through a causal 2nd-order Butterworth high-pass at this frequency:
#: without it, the sum of the (all positive) image sources has a large DC component.
RIR_HIGHPASS_HZ = 20.0


#: Held around every use of pyroomacoustics (its room builder and process-wide constants), here and
#: in :mod:`urgentbench.simulation.corpus_degradations`, so threads never interleave there.
PRA_LOCK = threading.Lock()


@register_degradation("reverb")
@dataclass(frozen=True)
class Reverb(Degradation):
    """Shoebox-room reverberation from the image source method (no ray tracing).

    ``pyroomacoustics.inverse_sabine`` turns ``rt60`` and ``room_dims`` into the wall
    energy absorption and an image source order; the order is reduced to
    :data:`ISM_ORDER_FRACTION` of it (at most :data:`ISM_MAX_ORDER`) to bound the cost.
    pyroomacoustics computes the image sources (positions and wall damping); the RIR
    is then summed here in float64, each image a windowed-sinc fractional delay with
    amplitude ``damping / (4 * pi * distance)``, and high-passed at 20 Hz (causal) to
    remove the DC the all-positive image sum builds up.

    ``noisy`` is convolved with the full RIR, ``target`` with the early RIR: everything
    up to ``start + 50 ms``, where ``start`` is the first sample with
    ``|h| >= 0.1 * max|h|`` (the direct path). Both keep the propagation delay and the
    original length.

    Args:
        room_dims: Room size ``[x, y, z]`` in metres.
        rt60: Target reverberation time in seconds.
        source: Source position ``[x, y, z]`` in metres (inside the room).
        mic: Microphone position ``[x, y, z]`` in metres (inside the room).
    """

    room_dims: tuple[float, float, float]
    rt60: float
    source: tuple[float, float, float]
    mic: tuple[float, float, float]

    def __post_init__(self) -> None:
        dims = self._vector3("room_dims")
        if min(dims) <= 0:
            raise DegradationParamError(f"{self.name}: room_dims must be positive, got {list(dims)}")
        self._number("rt60", lo=0.05, hi=3.0)
        for key in ("source", "mic"):
            pos = self._vector3(key)
            if any(p <= 0 or p >= d for p, d in zip(pos, dims)):
                raise DegradationParamError(
                    f"{self.name}: {key} {list(pos)} is not strictly inside the room {list(dims)}"
                )
        if math.dist(self.source, self.mic) < 0.05:
            raise DegradationParamError(f"{self.name}: source and mic must be at least 5 cm apart")

    def ism_setup(self) -> tuple[float, int]:
        """Wall energy absorption and the image source order used.

        Raises:
            DegradationParamError: When the RT60 cannot be reached in this room.
        """
        import pyroomacoustics as pra

        try:
            e_abs, sabine_order = pra.inverse_sabine(self.rt60, list(self.room_dims), c=SPEED_OF_SOUND)
        except ValueError as exc:
            raise DegradationParamError(
                f"{self.name}: rt60 {self.rt60} s is not reachable in a room of "
                f"{list(self.room_dims)} m ({exc})"
            ) from exc
        order = min(ISM_MAX_ORDER, max(1, int(math.ceil(ISM_ORDER_FRACTION * sabine_order))))
        return float(e_abs), order

    def rir(self, sample_rate: int) -> np.ndarray:
        """The room impulse response at ``sample_rate`` (float64, starts at time 0)."""
        import pyroomacoustics as pra

        e_abs, order = self.ism_setup()
        with PRA_LOCK:
            room = pra.ShoeBox(
                list(self.room_dims),
                fs=sample_rate,
                materials=pra.Material(e_abs),
                max_order=order,
                air_absorption=False,
                ray_tracing=False,
                use_rand_ism=False,
            )
            room.add_source(list(self.source))
            room.add_microphone(np.array(self.mic, dtype=np.float64).reshape(3, 1))
            room.image_source_model()
            src = room.sources[0]
            visible = np.asarray(room.visibility[0][0], dtype=bool)
            images = np.asarray(src.images, dtype=np.float64)[:, visible]
            damping = np.asarray(src.damping, dtype=np.float64).reshape(-1, src.images.shape[1])[0, visible]
        from scipy.signal import butter, sosfilt

        mic = np.asarray(self.mic, dtype=np.float64)
        dist = np.sqrt(np.sum((images - mic[:, None]) ** 2, axis=0))
        h = _sum_images(dist / SPEED_OF_SOUND * sample_rate, damping / (4.0 * np.pi * dist))
        sos = butter(2, RIR_HIGHPASS_HZ, btype="highpass", output="sos", fs=sample_rate)
        return sosfilt(sos, h)

    @staticmethod
    def early_part(h: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Early RIR: ``h`` up to (not including) ``start + 50 ms``, and ``start``."""
        mag = np.abs(h)
        start = int(np.argmax(mag >= DIRECT_PATH_FRACTION * mag.max()))
        end = start + int(round(EARLY_RIR_S * sample_rate))
        return h[: min(end, len(h))].copy(), start

    def apply(self, state: RenderState) -> RenderState:
        """Convolve ``noisy`` with the full RIR and ``target`` with the early RIR."""
        from scipy.signal import fftconvolve

        n = len(state.noisy)
        h = self.rir(state.sample_rate)
        early, _ = self.early_part(h, state.sample_rate)
        noisy = fftconvolve(state.noisy, h)[:n]
        target = fftconvolve(state.target, early)[: len(state.target)]
        return dataclasses.replace(state, noisy=noisy, target=target)


def _sum_images(delays: np.ndarray, amplitudes: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Sum image sources as Hann-windowed sinc fractional delays, in a fixed order (float64).

    Image ``i`` adds ``amplitudes[i] * w(n - delays[i]) * sinc(n - delays[i])`` for the
    :data:`FRACTIONAL_DELAY_TAPS` samples ``n`` around its delay, where ``w`` is a Hann
    window of half-width ``taps // 2 + 1``. Taps before time 0 are dropped.

    Args:
        delays: Arrival time of each image in samples.
        amplitudes: Amplitude of each image.
        chunk: Images processed at once (bounds memory; the summation order is fixed).
    """
    half = FRACTIONAL_DELAY_TAPS // 2
    k_int = np.arange(-half, half + 1)
    k = k_int.astype(np.float64)
    a = np.pi / (half + 1)
    # With f the fractional delay and x = k - f:
    #   sinc(x) = sin(pi x) / (pi x) = -(-1)^k sin(pi f) / (pi x)
    #   w(x) = 0.5 + 0.5 cos(a x) = 0.5 + 0.5 (cos(a k) cos(a f) + sin(a k) sin(a f))
    # so w(x) sinc(x) = (c0_k + c1_k cos(a f) + c2_k sin(a f)) * sin(pi f) / (pi x).
    sign = np.where(k_int % 2 == 0, 1.0, -1.0)
    c0, c1, c2 = -0.5 * sign, -0.5 * sign * np.cos(a * k), -0.5 * sign * np.sin(a * k)
    n_out = int(np.floor(delays.max())) + half + 2
    rir = np.zeros(n_out)
    for lo in range(0, len(delays), chunk):
        d = delays[lo : lo + chunk]
        amp = amplitudes[lo : lo + chunk]
        whole = np.floor(d)
        frac = d - whole
        values = c0[None, :] + c1[None, :] * np.cos(a * frac)[:, None]
        values += c2[None, :] * np.sin(a * frac)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            values /= k[None, :] - frac[:, None]
        values *= (amp * np.sin(np.pi * frac) / np.pi)[:, None]
        exact = frac == 0.0  # the delay falls on a sample: a plain (scaled) unit impulse
        if exact.any():
            values[exact] = 0.0
            values[exact, half] = amp[exact]
        index = whole.astype(np.int64)[:, None] + k_int[None, :]
        if index[:, 0].min() < 0:
            keep = index >= 0
            index, values = index[keep], values[keep]
        rir += np.bincount(index.ravel(), weights=values.ravel(), minlength=n_out)
    return rir
