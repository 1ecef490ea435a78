"""benchmarks/gpu_throughput.py: its synthetic URGENT-like set and its timing of one metric on the CPU."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_throughput.py"
_spec = importlib.util.spec_from_file_location("gpu_throughput", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["gpu_throughput"] = bench
_spec.loader.exec_module(bench)


def test_synthetic_set_is_urgent_like_and_deterministic():
    utterances = bench.synthetic_set(40, seed=3)
    assert len(utterances) == 40
    for est, ref, rate in utterances:
        assert rate in bench.RATES
        assert 2.0 <= len(est) / rate <= 20.0 and len(est) == len(ref)
        assert est.dtype == np.float32 and np.all(np.isfinite(est))
        assert 0 < np.max(np.abs(ref)) <= 0.1 + 1e-6
        snr = 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((est - ref).astype(np.float64) ** 2))
        assert 4.9 < snr < 20.1
    assert len({rate for _, _, rate in utterances}) >= 4  # a mix of rates
    again = bench.synthetic_set(40, seed=3)
    assert all(np.array_equal(a[0], b[0]) and a[2] == b[2] for a, b in zip(utterances, again))


def test_time_metric_reports_throughput_on_the_cpu():
    result = bench.time_metric("dnsmos", {}, "cpu", bench.synthetic_set(3, seed=1), batch=2)
    assert result["utterances"] == 3 and result["failed"] == 0
    assert result["device"] == "cpu"
    assert result["utterances_per_s"] > 0
    assert abs(result["projected_1000_s"] - 1000 / result["utterances_per_s"]) < 1.0
