"""PLCMOS against the speechmos reference, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_speech, white_noise_mix

from urgentbench.metrics import MetricError
from urgentbench.metrics.plcmos import PLCMOS


@pytest.mark.slow
def test_plcmos_equals_seeded_speechmos_and_is_deterministic():
    from speechmos import plcmos

    clean = load_speech("a", 16000)
    noisy = white_noise_mix(clean, 5.0)
    metric = PLCMOS()
    metric.setup()
    for x in (clean, noisy):
        np.random.seed(0)
        expected = plcmos.run(x, sr=16000)["plcmos"]
        assert metric.compute(x, None, 16000)["plcmos"] == pytest.approx(expected, abs=1e-9)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = metric.compute(noisy, None, 16000)["plcmos"]
    assert np.array_equal(np.random.get_state()[1], before)  # caller's RNG untouched
    assert metric.compute(noisy, None, 16000)["plcmos"] == a
    assert metric.compute(clean, None, 16000)["plcmos"] > a + 0.3


def test_plcmos_refuses_what_it_cannot_score():
    metric = PLCMOS()
    with pytest.raises(MetricError, match="16000 Hz"):
        metric.compute(np.ones(8000, np.float32) * 0.1, None, 8000)
    with pytest.raises(MetricError, match="silent"):
        metric.compute(np.zeros(16000, np.float32), None, 16000)
    with pytest.raises(MetricError, match="peak is 1.500"):
        metric.compute(np.full(16000, 1.5, np.float32), None, 16000)
