"""Reference-only metric state (MCD's reference mel-cepstra) computed once per utterance and shared by systems."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import load_speech, white_noise_mix

from urgentbench import runner
from urgentbench.metrics import MetricError, functional, get_metric_class
from urgentbench.reference_cache import FOLDER, ReferenceStateCache
from urgentbench.store import ResultStore
from urgentbench.suites import get_suite

FS = 22050


def test_mcd_state_path_equals_the_reference_function():
    ref = load_speech("a", FS)
    est = white_noise_mix(ref, 5.0, seed=1)
    metric = get_metric_class("mcd")()
    expected = functional.mcd(ref, est, FS)
    assert metric.compute(est, ref, FS)["mcd"] == expected  # bit for bit
    state = metric.reference_state(ref, FS)
    buf = io.BytesIO()
    np.savez(buf, **state)
    buf.seek(0)
    with np.load(buf) as data:
        restored = {k: data[k] for k in data.files}
    assert metric.compute_with_state(est, ref, restored, FS)["mcd"] == expected
    with pytest.raises(MetricError, match="not defined at 12345 Hz"):
        metric.reference_state(ref, 12345)


def test_cache_file_is_reused_and_a_damaged_one_recomputed(tmp_path, caplog):
    ref = load_speech("b", FS)
    metric = get_metric_class("mcd")()
    cache = ReferenceStateCache(tmp_path, "suite@1-abc")
    first = cache.get(metric, "mcd-v1-x", "utt/1", ref, FS)
    path = cache.path("mcd-v1-x", FS, "utt/1")
    assert path is not None and path.is_file() and path.parent.parent == tmp_path / "suite@1-abc"
    assert "/" not in path.name
    again = cache.get(metric, "mcd-v1-x", "utt/1", ref, FS)
    assert (cache.misses, cache.hits) == (1, 1) and np.array_equal(first["mcep"], again["mcep"])
    path.write_bytes(b"not a zip file")
    with caplog.at_level(logging.WARNING):
        repaired = cache.get(metric, "mcd-v1-x", "utt/1", ref, FS)
    assert "unreadable reference state" in caplog.text and cache.misses == 2
    assert np.array_equal(repaired["mcep"], first["mcep"])
    assert np.load(path)["mcep"].shape == first["mcep"].shape  # rewritten
    # disabled cache: computed every time, nothing written
    off = ReferenceStateCache(None, "suite@1-abc")
    off.get(metric, "mcd-v1-x", "u", ref, FS)
    assert off.path("mcd-v1-x", FS, "u") is None and off.misses == 1


def _mcd_values(results: Path) -> dict[tuple[str, str], float]:
    with ResultStore(results / "results.sqlite") as store:
        return {(r[2], r[4]): json.loads(r[8])["mcd"] for r in store.dump() if r[5] == "mcd"}


@pytest.mark.slow
def test_run_shares_reference_state_between_systems_with_identical_values(tmp_path):
    suite = get_suite("demo")
    producers = [runner.system_producer("noisy"), runner.system_producer("wiener")]
    metrics = runner.resolve_metrics(["mcd"], suite)
    cached, uncached = tmp_path / "cached", tmp_path / "uncached"
    runner.run(
        suite, producers, metrics,
        runner.RunOptions(results_dir=cached, jobs=2, limit=3, progress=False),
    )
    runner.run(
        suite, producers, metrics,
        runner.RunOptions(results_dir=uncached, jobs=1, limit=3, progress=False, reference_cache=False),
    )
    values = _mcd_values(cached)
    assert len(values) == 6 and values == _mcd_values(uncached)
    states = sorted((cached / FOLDER).rglob("*.npz"))
    assert len(states) == 3  # one per utterance, not one per system
    assert not (uncached / FOLDER).exists()
    # a system added later reuses the stored state: its values equal a run without any cache
    later = [runner.system_producer("noisy"), runner.system_producer("wiener"), runner.system_producer("rnnoise")]
    runner.run(suite, later, metrics, runner.RunOptions(results_dir=cached, jobs=1, limit=3, progress=False))
    runner.run(
        suite, later, metrics,
        runner.RunOptions(results_dir=uncached, jobs=1, limit=3, progress=False, reference_cache=False),
    )
    assert _mcd_values(cached) == _mcd_values(uncached) and len(_mcd_values(cached)) == 9
    assert sorted((cached / FOLDER).rglob("*.npz")) == states

