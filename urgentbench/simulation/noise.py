"""The ``noise`` degradation: generated noise added at an active-speech SNR.

The SNR is measured against the *active-speech* power of the current ``noisy`` signal
(:func:`~urgentbench.simulation.signals.active_speech_power`) and the mean power of the
whole noise; :func:`snr_speech_power` and :func:`add_at_snr` are shared with the
corpus-noise degradation (:mod:`urgentbench.simulation.corpus_degradations`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from urgentbench.simulation.degradation_base import (
    Degradation,
    DegradationParamError,
    RenderState,
    register_degradation,
)
from urgentbench.simulation.signals import NOISE_TYPES, active_speech_power, generate_noise

__all__ = ["Noise", "add_at_snr", "snr_speech_power"]


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
