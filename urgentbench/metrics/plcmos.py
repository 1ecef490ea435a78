"""PLCMOS v2: Microsoft's non-intrusive MOS for packet-loss concealment, through ``speechmos``.

The model averages its prediction over 15 random "rater embeddings" drawn from numpy's
global generator, so the raw package gives a different number on every call. Like
URGENT does for ESTOI, the generator is seeded with 0 immediately before each call (and
the caller's state restored afterwards), which makes the score deterministic and equal
to ``speechmos.plcmos.run`` called right after ``np.random.seed(0)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from urgentbench.metrics.base import Metric, MetricError, Output
from urgentbench.requirements import PackageRequirement, pip

_SR = 16000


class PLCMOS(Metric):
    """PLCMOS v2 of the enhanced speech (no reference needed; 16 kHz)."""

    name: ClassVar[str] = "plcmos"
    description: ClassVar[str] = "PLCMOS v2 non-intrusive MOS for packet-loss concealment (speechmos, seeded)"
    category: ClassVar[str] = "non-intrusive"
    needs_reference: ClassVar[bool] = False
    sample_rate: ClassVar[int | None] = _SR
    version: ClassVar[str] = "1"
    outputs: ClassVar[tuple[Output, ...]] = (Output("plcmos", True, "PLCMOS v2, 1..5"),)
    distributions: ClassVar[tuple[str, ...]] = ("speechmos", "onnxruntime")
    packages: ClassVar[tuple[PackageRequirement, ...]] = (
        PackageRequirement("speechmos", pip("speechmos==0.0.1.1")),
        PackageRequirement("onnxruntime", pip("onnxruntime")),
    )
    reference_implementation: ClassVar[str] = "speechmos.plcmos.run (PLCMOS v2 ONNX model of the PLC Challenge)"

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._model: Any = None

    def setup(self) -> None:
        """Load the ONNX model once."""
        from speechmos.plcmos import PLCMOS as Estimator

        self._model = Estimator()

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Score one 16 kHz waveform.

        Raises:
            MetricError: For another rate, silence, or samples outside [-1, 1] (the model's range).
        """
        if sample_rate != _SR:
            raise MetricError(f"PLCMOS needs {_SR} Hz audio, got {sample_rate} Hz")
        x = np.ascontiguousarray(estimate, dtype=np.float32)
        if not np.any(x):
            raise MetricError("PLCMOS undefined: the estimate is silent")
        peak = float(np.max(np.abs(x)))
        if peak > 1.0:
            raise MetricError(f"PLCMOS needs samples in [-1, 1], peak is {peak:.3f}")
        if self._model is None:
            self.setup()
        state = np.random.get_state()
        try:
            np.random.seed(0)
            return {"plcmos": float(self._model(x)["plcmos"])}
        finally:
            np.random.set_state(state)
