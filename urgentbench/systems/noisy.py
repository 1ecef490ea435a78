"""The ``noisy`` system: returns its input unchanged, so the unprocessed signal is scored like an entry."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from urgentbench.systems.base import System


class Noisy(System):
    """Identity at any sample rate: the output is a bit-exact copy of the input."""

    native_rate_follows_input: ClassVar[bool] = True

    def enhance(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Return a copy of ``waveform`` at ``sample_rate``.

        Args:
            waveform: Mono float32 waveform.
            sample_rate: Its rate (any; nothing is resampled).

        Returns:
            ``(copy of waveform, sample_rate)``.
        """
        return np.array(waveform, dtype=np.float32, copy=True), sample_rate
