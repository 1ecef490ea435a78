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

Where they live (every name is importable from here too): the base class, the registry and
:class:`RenderState` in :mod:`urgentbench.simulation.degradation_base`; ``noise`` in
:mod:`urgentbench.simulation.noise`; ``reverb`` in :mod:`urgentbench.simulation.reverb`;
``clipping`` and ``bandwidth_limit`` here, which also registers the corpus-based degradations
of :mod:`urgentbench.simulation.corpus_degradations`. The signal-level functions
(active-speech power, generated noise, band limitation) live in
:mod:`urgentbench.simulation.signals`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from urgentbench.simulation.degradation_base import (
    DEGRADATIONS,
    Degradation,
    DegradationParamError,
    RenderState,
    build_degradation,
    register_degradation,
)
from urgentbench.simulation.noise import Noise, add_at_snr, snr_speech_power
from urgentbench.simulation.reverb import (
    DIRECT_PATH_FRACTION,
    EARLY_RIR_S,
    FRACTIONAL_DELAY_TAPS,
    ISM_MAX_ORDER,
    ISM_ORDER_FRACTION,
    RIR_HIGHPASS_HZ,
    SPEED_OF_SOUND,
    Reverb,
)
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
    "DIRECT_PATH_FRACTION",
    "EARLY_RIR_S",
    "FRACTIONAL_DELAY_TAPS",
    "ISM_MAX_ORDER",
    "ISM_ORDER_FRACTION",
    "NOISE_TILT_CORNER_HZ",
    "NOISE_TYPES",
    "RIR_HIGHPASS_HZ",
    "SPEED_OF_SOUND",
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


# Degradations defined in other modules, imported when a manifest first uses them.
DEGRADATIONS.register("noise_file", "urgentbench.simulation.corpus_degradations:NoiseFile")
DEGRADATIONS.register("reverb_pra", "urgentbench.simulation.corpus_degradations:ReverbPRA")
DEGRADATIONS.register("bandwidth_limit_poly", "urgentbench.simulation.corpus_degradations:BandwidthLimitPoly")
