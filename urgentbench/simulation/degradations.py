"""Serialisable degradations: registered by name, built from a manifest's parameters.

A manifest stores every degradation of an utterance as a :class:`~urgentbench.manifest.DegradationSpec`
(a registered name plus JSON parameters). :func:`build_degradation` turns a spec into a
frozen dataclass whose :meth:`Degradation.apply` maps one :class:`RenderState` to the next.

Determinism rules followed by every degradation here:

* all randomness comes from a ``seed`` stored in the parameters
  (``numpy.random.default_rng(seed)``, PCG64, which is platform independent); no global
  random state is read, so the result never depends on the order in which utterances
  are rendered or on the process that renders them;
* all signal processing is done in float64 with single-threaded numpy/scipy code; the
  room impulse response is summed here in a fixed order (pyroomacoustics' own builder
  accumulates in float32 over a machine-dependent number of threads, so only its image
  source model is used).

Degradations:

``noise``
    Additive generated noise (``type`` in :data:`NOISE_TYPES`, ``seed``) at ``snr_db``.
    The SNR is measured against the *active-speech* power of the current ``noisy``
    signal (see :func:`active_speech_power`) and the mean power of the whole noise.
``reverb``
    Shoebox room impulse response from the image source method (pyroomacoustics
    geometry, no ray tracing). The input gets the full RIR; the target gets the early
    RIR (direct path + 50 ms), both keep the propagation delay.
``clipping``
    ``noisy = clip(noisy, threshold * min(noisy), threshold * max(noisy))``.
``bandwidth_limit``
    Zero-phase Chebyshev-I low-pass at ``cutoff_hz``, then soxr down to ``2 * cutoff_hz``
    and back (:func:`urgentbench.simulation.signals.band_limit`).

The signal-level functions (active-speech power, generated noise, band limitation) live in
:mod:`urgentbench.simulation.signals`.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from urgentbench.manifest import DegradationSpec
from urgentbench.registry import Registry
from urgentbench.simulation.signals import (
    ACTIVE_FRAME_S,
    ACTIVE_THRESHOLD_DB,
    BAND_LIMIT_RESAMPLERS,
    NOISE_TILT_CORNER_HZ,
    NOISE_TYPES,
    active_speech_power,
    band_limit,
    generate_noise,
)

__all__ = [
    "ACTIVE_FRAME_S",
    "ACTIVE_THRESHOLD_DB",
    "BAND_LIMIT_RESAMPLERS",
    "DEGRADATIONS",
    "NOISE_TILT_CORNER_HZ",
    "NOISE_TYPES",
    "BandwidthLimit",
    "Clipping",
    "Degradation",
    "DegradationParamError",
    "Noise",
    "RenderState",
    "Reverb",
    "active_speech_power",
    "add_at_snr",
    "band_limit",
    "build_degradation",
    "generate_noise",
    "register_degradation",
    "snr_speech_power",
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


class DegradationParamError(ValueError):
    """Parameters of a degradation that are missing, unknown or out of range; names the degradation."""


@dataclass(frozen=True)
class RenderState:
    """The two signals a degradation chain works on.

    Args:
        noisy: The degraded input being built (float64, mono).
        target: What the reference becomes (e.g. speech convolved with the early RIR).
        sample_rate: Rate of both signals in Hz.
    """

    noisy: np.ndarray
    target: np.ndarray
    sample_rate: int

    @classmethod
    def from_clean(cls, clean: np.ndarray, sample_rate: int) -> RenderState:
        """Start a chain from clean speech: ``noisy`` and ``target`` are both copies of it."""
        x = np.array(clean, dtype=np.float64, copy=True)
        return cls(noisy=x, target=x.copy(), sample_rate=int(sample_rate))


# ----------------------------------------------------------------------------------------
# registry and base class
# ----------------------------------------------------------------------------------------

#: Degradation name -> class.
DEGRADATIONS: Registry[type[Degradation]] = Registry("degradation")

D = TypeVar("D", bound="type[Degradation]")


def register_degradation(name: str) -> Callable[[D], D]:
    """Class decorator: register a :class:`Degradation` subclass under ``name``.

    Args:
        name: The name used in manifests (``DegradationSpec.name``).
    """

    def decorate(cls: D) -> D:
        cls.name = name
        DEGRADATIONS.register(name, cls, origin=f"{cls.__module__}.{cls.__qualname__}")
        return cls

    return decorate


@dataclass(frozen=True)
class Degradation(abc.ABC):
    """Base class: a frozen dataclass whose fields are the manifest parameters.

    Subclasses validate and normalise their fields in ``__post_init__`` (raising
    :class:`DegradationParamError`) and implement :meth:`apply`.
    """

    name: ClassVar[str] = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Degradation:
        """Build from a manifest's parameter mapping.

        Raises:
            DegradationParamError: For unknown, missing or invalid parameters.
        """
        if not isinstance(params, Mapping):
            raise DegradationParamError(
                f"{cls.name}: parameters must be a mapping, got {type(params).__name__}"
            )
        fields = {f.name: f for f in dataclasses.fields(cls)}
        required = [
            n for n, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        unknown = sorted(set(params) - set(fields))
        missing = [n for n in required if n not in params]
        problems = []
        if unknown:
            problems.append(f"unknown parameter(s) {', '.join(map(repr, unknown))}")
        if missing:
            problems.append(f"missing parameter(s) {', '.join(map(repr, missing))}")
        if problems:
            raise DegradationParamError(
                f"{cls.name}: {'; '.join(problems)} (expected: {', '.join(fields)})"
            )
        return cls(**dict(params))

    def to_params(self) -> dict[str, Any]:
        """JSON-ready parameters (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_spec(self) -> DegradationSpec:
        """The manifest form of this degradation."""
        return DegradationSpec(name=self.name, params=self.to_params())

    @abc.abstractmethod
    def apply(self, state: RenderState) -> RenderState:
        """Return the degraded state (the input state is not modified)."""

    # -- validation helpers used by subclasses ---------------------------------------
    def _set(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)

    def _number(self, key: str, *, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> float:
        value = getattr(self, key)
        if not _is_number(value):
            raise DegradationParamError(f"{self.name}: parameter {key!r} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise DegradationParamError(f"{self.name}: parameter {key!r} must be finite, got {value!r}")
        if lo is not None and (value < lo or (lo_open and value == lo)):
            bound = ">" if lo_open else ">="
            raise DegradationParamError(f"{self.name}: parameter {key!r} must be {bound} {lo}, got {value}")
        if hi is not None and (value > hi or (hi_open and value == hi)):
            bound = "<" if hi_open else "<="
            raise DegradationParamError(f"{self.name}: parameter {key!r} must be {bound} {hi}, got {value}")
        self._set(key, value)
        return value

    def _vector3(self, key: str) -> tuple[float, float, float]:
        value = getattr(self, key)
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 3:
            raise DegradationParamError(
                f"{self.name}: parameter {key!r} must be a list of 3 numbers, got {value!r}"
            )
        out = []
        for v in value:
            if not _is_number(v) or not math.isfinite(v):
                raise DegradationParamError(
                    f"{self.name}: parameter {key!r} must be a list of 3 finite numbers, got {value!r}"
                )
            out.append(float(v))
        vec = (out[0], out[1], out[2])
        self._set(key, vec)
        return vec


def _is_number(value: Any) -> bool:
    """True for int/float (numpy included), False for bool and everything else."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def build_degradation(spec: DegradationSpec | Mapping[str, Any]) -> Degradation:
    """Build the degradation a manifest spec describes.

    Args:
        spec: A :class:`DegradationSpec` or its dict form.

    Raises:
        UnknownNameError: For an unregistered degradation name.
        DegradationParamError: For bad parameters.
    """
    if not isinstance(spec, DegradationSpec):
        spec = DegradationSpec.from_dict(dict(spec))
    cls = DEGRADATIONS.get(spec.name)
    return cls.from_params(spec.params)


# ----------------------------------------------------------------------------------------
# degradations
# ----------------------------------------------------------------------------------------


@register_degradation("noise")
@dataclass(frozen=True)
class Noise(Degradation):
    """Additive generated noise at a given SNR; only ``noisy`` changes.

    Args:
        snr_db: Active-speech power of the current ``noisy`` over mean noise power, in dB.
        type: Noise type, one of :data:`NOISE_TYPES`.
        seed: Seed of the noise generator.
    """

    snr_db: float
    type: str
    seed: int

    def __post_init__(self) -> None:
        self._number("snr_db", lo=-50.0, hi=80.0)
        if self.type not in NOISE_TYPES:
            raise DegradationParamError(
                f"{self.name}: parameter 'type' must be one of {', '.join(NOISE_TYPES)}, got {self.type!r}"
            )
        from urgentbench.validation import require_int

        require_int(self.seed, f"{self.name}: parameter 'seed'", minimum=0, error=DegradationParamError)
        self._set("seed", int(self.seed))

    def apply(self, state: RenderState) -> RenderState:
        """Add noise scaled so the active-speech SNR of ``noisy`` is ``snr_db``.

        Raises:
            ValueError: When ``noisy`` is silent (the SNR is undefined).
        """
        speech_power = snr_speech_power(state, self.name)
        noise = generate_noise(self.type, len(state.noisy), state.sample_rate, self.seed)
        return add_at_snr(state, noise, speech_power, self.snr_db)


def snr_speech_power(state: RenderState, name: str) -> float:
    """The active-speech power of ``noisy`` that an SNR is set against (:func:`active_speech_power`).

    Raises:
        ValueError: When ``noisy`` is silent (the SNR is undefined).
    """
    speech_power = active_speech_power(state.noisy, state.sample_rate)
    if speech_power <= 0.0:
        raise ValueError(f"{name}: the signal is silent, so an SNR cannot be set")
    return speech_power


def add_at_snr(state: RenderState, noise: np.ndarray, speech_power: float, snr_db: float) -> RenderState:
    """``noisy + gain * noise``, the gain making ``speech_power`` over the noise's mean power ``snr_db``."""
    gain = math.sqrt(speech_power / (float(np.mean(noise * noise)) * 10.0 ** (snr_db / 10.0)))
    return dataclasses.replace(state, noisy=state.noisy + gain * noise)


@register_degradation("clipping")
@dataclass(frozen=True)
class Clipping(Degradation):
    """Hard clipping of ``noisy`` at a fraction of its own extremes (no renormalisation).

    Args:
        threshold: ``t`` in (0, 1]; ``noisy`` is clipped to ``[t*min(noisy), t*max(noisy)]``.
    """

    threshold: float

    def __post_init__(self) -> None:
        self._number("threshold", lo=0.0, hi=1.0, lo_open=True)

    def apply(self, state: RenderState) -> RenderState:
        """Clip ``noisy``; ``target`` is unchanged."""
        x = state.noisy
        lo, hi = self.threshold * float(x.min()), self.threshold * float(x.max())
        return dataclasses.replace(state, noisy=np.clip(x, lo, hi))


@register_degradation("bandwidth_limit")
@dataclass(frozen=True)
class BandwidthLimit(Degradation):
    """Remove everything above ``cutoff_hz`` from ``noisy`` (:func:`band_limit` with soxr).

    Args:
        cutoff_hz: Cut-off in Hz; must be below the Nyquist frequency of the signal.
    """

    cutoff_hz: float
    #: The resampler of :func:`band_limit` (see there why there are two).
    resampler: ClassVar[str] = "soxr"

    def __post_init__(self) -> None:
        self._number("cutoff_hz", lo=100.0)

    def apply(self, state: RenderState) -> RenderState:
        """Low-pass and resample ``noisy``; ``target`` is unchanged.

        Raises:
            DegradationParamError: When the cut-off is not below the Nyquist frequency.
        """
        sr = state.sample_rate
        if self.cutoff_hz >= sr / 2:
            raise DegradationParamError(
                f"{self.name}: cutoff_hz {self.cutoff_hz:g} must be below the Nyquist frequency "
                f"({sr / 2:g} Hz) of the {sr} Hz signal"
            )
        return dataclasses.replace(state, noisy=band_limit(state.noisy, sr, self.cutoff_hz, self.resampler))


_PRA_LOCK = threading.Lock()


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
        with _PRA_LOCK:
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


# Degradations defined in other modules, imported when a manifest first uses them.
DEGRADATIONS.register("noise_file", "urgentbench.simulation.corpus_degradations:NoiseFile")
DEGRADATIONS.register("reverb_pra", "urgentbench.simulation.corpus_degradations:ReverbPRA")
DEGRADATIONS.register("bandwidth_limit_poly", "urgentbench.simulation.corpus_degradations:BandwidthLimitPoly")
