"""SDR's ``precision`` option: float32 as the official URGENT script computes it, float64 by default.

float32 is pinned by the urgent2024/urgent2025 protocols; the two are stored apart.

The official ``calculate_intrusive_se_metrics.py`` reads audio with
``sf.read(..., dtype="float32")`` and calls
``fast_bss_eval.bss_eval_sources(ref, inf, compute_permutation=False, clamp_db=50.0)``
(its ``sdr_metric``, ``ref``/``inf`` of shape (1, time)). That call needs numpy 1.26; under
numpy 2 ``np.linalg.solve`` no longer reads a (1, 512) right-hand side as a stack of
vectors and raises, so here the call runs with numpy 1's reading of ``solve`` restored
(the right-hand side as one column), the only change.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import demo_pair

from urgentbench.metrics.functional import single_threaded_blas
from urgentbench.metrics.intrusive import SDR
from urgentbench.protocols import get_protocol
from urgentbench.runner import MetricSpec


def official_call(ref: np.ndarray, inf: np.ndarray, monkeypatch) -> float:
    """sdr_metric's call on float32 ``ref``/``inf`` (time,), with numpy 1's ``solve`` under numpy 2."""
    import fast_bss_eval

    if int(np.__version__.split(".")[0]) >= 2:
        solve = np.linalg.solve

        def numpy1_solve(a, b):
            return solve(a, b[..., None])[..., 0] if b.ndim == a.ndim - 1 else solve(a, b)

        monkeypatch.setattr(np.linalg, "solve", numpy1_solve)
    try:
        # one BLAS thread, as urgentbench computes it everywhere: the float32 solve's last digits
        # (up to 1.5e-4 dB here) depend on how many threads sum the products
        with single_threaded_blas():
            sdr, _sir, _sar = fast_bss_eval.bss_eval_sources(
                ref[None, :], inf[None, :], compute_permutation=False, clamp_db=50.0
            )
    finally:
        monkeypatch.undo()
    return float(np.mean(sdr))


def official_sdr(ref_path, inf_path, monkeypatch) -> float:
    """calculate_intrusive_se_metrics.py: float32 read (process_one_pair), then sdr_metric."""
    ref, fs = sf.read(ref_path, dtype="float32")
    inf, fs2 = sf.read(inf_path, dtype="float32")
    assert fs == fs2 and ref.shape == inf.shape
    return official_call(ref, inf, monkeypatch)


@pytest.mark.parametrize("fs", [16000, 44100])
def test_float32_sdr_is_the_official_scripts(fs, tmp_path, monkeypatch):
    metric = SDR(precision="float32")
    differences = []
    for index in (0, 1, 4):
        ref, noisy = demo_pair(index, fs)
        ref_path, inf_path = tmp_path / f"ref{index}.wav", tmp_path / f"inf{index}.wav"
        sf.write(ref_path, ref, fs, subtype="PCM_16")
        sf.write(inf_path, noisy, fs, subtype="PCM_16")
        # the metric gets what urgentbench's reader gives (the same 16-bit samples)
        ref_read, _ = sf.read(ref_path, dtype="float64")
        inf_read, _ = sf.read(inf_path, dtype="float64")
        ours = metric.compute(inf_read, ref_read, fs)["sdr"]
        theirs = official_sdr(ref_path, inf_path, monkeypatch)
        assert ours == pytest.approx(theirs, abs=1e-4)
        differences.append(abs(ours - SDR().compute(inf_read, ref_read, fs)["sdr"]))
    # float32 arithmetic really is different from the float64 default (a few hundredths of a dB at most)
    assert max(differences) > 1e-5 and max(differences) < 0.1


def test_default_precision_is_float64_and_unchanged():
    import fast_bss_eval

    ref, noisy = demo_pair(0, 16000)
    with single_threaded_blas():  # as urgentbench computes it, in a worker or in this process
        expected = fast_bss_eval.bss_eval_sources(
            ref[None].astype(np.float64), noisy[None].astype(np.float64), compute_permutation=True, clamp_db=50.0
        )[0]
    assert SDR().options == {"precision": "float64"}
    assert SDR().compute(noisy, ref, 16000)["sdr"] == float(np.asarray(expected).reshape(-1)[0])


def test_float32_edge_cases_are_the_officials(monkeypatch):
    ref, _ = demo_pair(0, 16000)
    metric = SDR(precision="float32")
    # float32 rounding keeps the coherence of identical signals just below the clamp (49.994
    # dB here, in the official call too); float64 reaches the 50 dB clamp
    identical = metric.compute(ref, ref, 16000)["sdr"]
    assert identical == pytest.approx(official_call(ref, ref, monkeypatch), abs=1e-4)
    assert 49.9 < identical < 50.0 and SDR().compute(ref, ref, 16000)["sdr"] == 50.0
    assert metric.compute(0.5 * ref, ref, 16000)["sdr"] == pytest.approx(identical, abs=1e-4)
    assert metric.compute(np.zeros_like(ref), ref, 16000)["sdr"] == -50.0


def test_precision_option_is_checked():
    with pytest.raises(ValueError, match="precision"):
        SDR(precision="float16")


@pytest.mark.parametrize("name", ["urgent2024", "urgent2025"])
def test_protocols_pin_float32_and_store_it_apart(name):
    spec = next(s for s in get_protocol(name).metric_specs() if s.name == "sdr")
    assert dict(spec.options) == {"precision": "float32"}
    assert spec.options_hash != MetricSpec("sdr").options_hash  # never mixed with float64 scores
    assert MetricSpec("sdr").options_hash == MetricSpec("sdr", (("precision", "float64"),)).options_hash


def test_sdr_does_not_load_torch_and_equals_fast_bss_eval_with_torch():
    """A scoring worker imports fast_bss_eval without torch (1.2 s of CPU saved); the values do not change."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from urgentbench.metrics.intrusive import SDR\n"
        "rng = np.random.default_rng(3)\n"
        "ref = rng.standard_normal(16000).astype(np.float32)\n"
        "est = (ref + 0.3 * rng.standard_normal(16000)).astype(np.float32)\n"
        "SDR().import_packages()\n"  # what a worker does at set-up
        "vals = [SDR(precision=p).compute(est, ref, 16000)['sdr'] for p in ('float64', 'float32')]\n"
        "print(repr(vals), 'torch' in sys.modules, 'fast_bss_eval' in sys.modules)\n"
        "import torch, fast_bss_eval\n"  # others still get the ordinary package, torch functions included
        "print(fast_bss_eval.has_torch, callable(fast_bss_eval.torch.si_sdr))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[-4:] == ["False", "False", "True", "True"]  # torch neither imported nor blocked for later
    out = out[:-2]
    rng = np.random.default_rng(3)
    ref = rng.standard_normal(16000).astype(np.float32)
    est = (ref + 0.3 * rng.standard_normal(16000)).astype(np.float32)
    import torch  # noqa: F401  (this process: fast_bss_eval as imported with torch loaded)

    expected = [SDR(precision=p).compute(est, ref, 16000)["sdr"] for p in ("float64", "float32")]
    assert " ".join(out[:-2]) == repr(expected)
