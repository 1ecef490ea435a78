"""The ``device`` option of the model metrics, its options-hash rule, and batched == one-by-one scoring.

The batched paths run on the CPU here with the random-init checkpoints of the metrics' own
tests (real architectures, small sizes where a config allows; NISQA's real weights), on
demo speech; the same code runs on a GPU with ``device="cuda"``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import demo_pair

from urgentbench.metrics import MetricError, get_metric_class
from urgentbench.metrics.base import BatchItem
from urgentbench.metrics.model import equal_length_groups, parse_device, resolve_device
from urgentbench.pipeline.specs import MetricSpec
from urgentbench.systems import config_hash

#: Every torch model metric and Whisper: each takes the device option.
DEVICE_METRICS = ("nisqa", "utmos", "scoreq", "speechbertscore", "lps", "spk_sim", "emo_sim", "wer")


# --------------------------------------------------------------------------- the option


@pytest.mark.parametrize(
    ("value", "canonical"),
    [("cpu", "cpu"), ("CPU", "cpu"), (" cuda ", "cuda:0"), ("cuda", "cuda:0"), ("cuda:0", "cuda:0"), ("cuda:3", "cuda:3")],
)
def test_parse_device_canonical_forms(value, canonical):
    assert parse_device(value) == canonical


@pytest.mark.parametrize("value", ["gpu", "cuda:", "cuda:x", "cpu:0", "cuda:-1", "mps", "", None, 0, "cuda:0:1"])
def test_parse_device_refuses_bad_values_in_one_line(value):
    with pytest.raises(ValueError, match=r"^utmos: device must be 'cpu', 'cuda' or 'cuda:N', got ") as info:
        parse_device(value, "utmos")
    assert "\n" not in str(info.value)


def test_resolve_device_without_cuda_names_the_fix(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu", "nisqa") == "cpu"
    with pytest.raises(RuntimeError, match=r"nisqa: device='cuda' asks for CUDA, but no CUDA device") as info:
        resolve_device("cuda", "nisqa")
    assert "fix: use device='cpu'" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(RuntimeError, match="only 2 CUDA device"):
        resolve_device("cuda:2", "nisqa", cuda_devices=2)
    assert resolve_device("cuda:1", "nisqa", cuda_devices=2) == "cuda:1"


@pytest.mark.parametrize("name", DEVICE_METRICS)
def test_every_model_metric_takes_the_device_option(name):
    cls = get_metric_class(name)
    assert cls.default_options()["device"] == "cpu"
    cls(device="cuda:1")  # accepted when built; checked against the machine at set-up
    with pytest.raises(ValueError, match=f"^{cls.name}: device must be"):
        cls(device="gpu")


@pytest.mark.parametrize("name", DEVICE_METRICS)
def test_use_device_fails_clearly_without_cuda(name, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    metric = get_metric_class(name)(device="cuda")
    with pytest.raises(RuntimeError, match="asks for CUDA, but no CUDA device is available"):
        metric.use_device()
    assert metric.use_device(cuda_devices=1) == "cuda:0"  # what provenance then records
    assert metric.provenance()["device"] == "cuda:0"


def test_setup_refuses_cuda_before_loading_a_model(tmp_path, monkeypatch):
    from test_ssl_metrics import write_tiny_hubert

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    folder = write_tiny_hubert(tmp_path / "hubert")
    metric = get_metric_class("speechbertscore")(model_dir=str(folder), device="cuda")
    with pytest.raises(RuntimeError, match="speechbertscore: device='cuda' asks for CUDA"):
        metric.setup()
    assert metric._model is None


def test_whisper_cuda_needs_ctranslate2_cuda():
    import ctranslate2

    from urgentbench.metrics.asr import _ct2_cuda_devices

    assert _ct2_cuda_devices(ctranslate2, "cpu") == 0
    metric = get_metric_class("wer")(device="cuda")
    devices = _ct2_cuda_devices(ctranslate2, "cuda")
    if devices == 0:  # the CPU build of CTranslate2 (this project's CI)
        with pytest.raises(RuntimeError, match="wer: device='cuda' asks for CUDA"):
            metric.use_device(cuda_devices=devices)


# --------------------------------------------------------------------------- the options hash


def _old_hash(name: str, options: dict) -> str:
    """The options hash as computed before the device option existed (every option, no device)."""
    cls = get_metric_class(name)
    full = {**cls.default_options(), **options}
    full.pop("device")
    models = cls.model_hashes(full)
    return config_hash({**full, "_models": models} if models else full)


@pytest.mark.parametrize("name", ["nisqa", "utmos", "speechbertscore", "lps", "spk_sim", "emo_sim", "wer"])
def test_cpu_device_is_left_out_of_the_options_hash(name):
    cpu = MetricSpec(name).options_hash
    assert cpu == _old_hash(name, {})  # stored CPU scores keep their keys
    assert MetricSpec(name, (("device", "cpu"),)).options_hash == cpu
    assert MetricSpec(name, (("device", "CPU"),)).options_hash == cpu
    cuda = MetricSpec(name, (("device", "cuda"),)).options_hash
    assert cuda != cpu  # GPU numbers are not bit-identical: never mixed with CPU ones
    assert MetricSpec(name, (("device", "cuda:0"),)).options_hash == cuda
    assert MetricSpec(name, (("device", "cuda:1"),)).options_hash not in (cpu, cuda)


@pytest.mark.parametrize("name", ["dnsmos", "owsm_wer", "lid_acc"])
def test_older_device_options_stay_hashed(name):
    cls = get_metric_class(name)
    full = cls.default_options()
    hashed = cls.hashed_options(full)
    assert hashed["device"] == "cpu"  # their keys hashed device="cpu" before the rule: kept
    models = cls.model_hashes(full)
    assert MetricSpec(name).options_hash == config_hash({**hashed, "_models": models} if models else hashed)
    assert MetricSpec(name, (("device", "cuda"),)).options_hash != MetricSpec(name).options_hash


def test_equal_length_groups():
    assert equal_length_groups([5, 3, 5, 5, 3, 7], 2) == [[0, 2], [1, 4], [3], [5]]
    assert equal_length_groups([], 4) == []
    assert equal_length_groups([1, 1, 1], 1) == [[0], [1], [2]]


# --------------------------------------------------------------------------- batched == one by one


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Every model asset of the urgent2026 protocol as a tiny random-init checkpoint (NISQA: real weights)."""
    from urgent2026_assets import tiny_urgent2026_assets

    cache = tmp_path_factory.mktemp("device-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("URGENTBENCH_CACHE", str(cache))
        with tiny_urgent2026_assets(cache, tmp_path_factory.mktemp("device-work")) as installed:
            yield installed


@pytest.fixture(scope="module")
def speech():
    """Demo speech at 16 kHz: (clean, noisy) of utterances 0 and 1, and the shortest length of the four."""
    ref0, noisy0 = demo_pair(0, 16000)
    ref1, noisy1 = demo_pair(1, 16000)
    n = min(len(ref0), len(ref1), 2 * 16000)
    return ref0, noisy0, ref1, noisy1, n


def _items(speech, rate=16000):
    """Five utterances, three of one length (batched together), one shorter, one NaN (a MetricError)."""
    from urgentbench.audio import resample

    ref0, noisy0, ref1, noisy1, n = speech
    pairs = [(noisy0[:n], ref0[:n]), (ref1[:n], ref1[:n]), (noisy1[:n], ref0[:n]),
             (noisy0[: n - 2345], ref0[: n - 2345]), (np.full(n, np.nan, np.float32), ref1[:n])]
    if rate != 16000:
        pairs = [(resample(e, 16000, rate).astype(np.float32), resample(r, 16000, rate).astype(np.float32))
                 for e, r in pairs]
    return [BatchItem(e, r, rate, "hello") for e, r in pairs]


def _check_equal(metric, items, batched, output):
    """Each batched result equals compute()'s within 1e-5; a failing item fails the same way."""
    assert len(batched) == len(items)
    for item, got in zip(items, batched):
        try:
            want = metric.compute(item.estimate, item.reference, item.sample_rate, transcript=item.transcript)
        except MetricError as exc:
            assert isinstance(got, MetricError), f"expected {exc!r}, got {got!r}"
            assert str(got) == str(exc)
            continue
        assert isinstance(got, dict), got
        assert math.isfinite(got[output])
        assert got[output] == pytest.approx(want[output], abs=1e-5)
        assert set(got) == set(want)


@pytest.fixture
def group_sizes(monkeypatch):
    """Record the size of every equal-length group a metric forms (proves a forward pass was shared)."""
    import urgentbench.metrics.model as model_mod

    sizes: list[int] = []
    real = model_mod.equal_length_groups

    def spy(lengths, batch_size):
        groups = real(lengths, batch_size)
        sizes.extend(len(g) for g in groups)
        return groups

    monkeypatch.setattr(model_mod, "equal_length_groups", spy)
    return sizes


@pytest.mark.parametrize(
    ("name", "options", "output", "rate"),
    [
        pytest.param("utmos", {}, "utmos", 22050, marks=pytest.mark.slow),  # the real size: ~95 M parameters
        ("scoreq", {}, "scoreq", 16000),
        ("speechbertscore", {}, "speechbertscore", 16000),
        ("lps", {}, "lps", 16000),
        ("emo_sim", {}, "emo_sim", 16000),
        pytest.param("spk_sim", {"model": "rawnet3"}, "spk_sim", 16000, marks=pytest.mark.slow),  # real size
    ],
)
def test_batched_equals_one_by_one(assets, speech, group_sizes, name, options, output, rate):
    metric = get_metric_class(name)(**options)
    metric.setup()
    items = _items(speech, rate)
    batched = metric.compute_batch(items)
    assert max(group_sizes) >= 3  # the three equal-length estimates (and equal references) shared a pass
    _check_equal(metric, items, batched, output)
    if metric.reference_state_cacheable:  # the runner's path: reference states computed (and cached) first
        group_sizes.clear()
        ok = [it for it in items if np.all(np.isfinite(it.estimate))]
        states = [metric.reference_state(it.reference, it.sample_rate) for it in ok]
        _check_equal(metric, ok, metric.compute_batch_with_state(ok, states), output)
        assert max(group_sizes) == 3


def test_nisqa_batches_any_lengths(assets, speech, monkeypatch):
    metric = get_metric_class("nisqa")()
    metric.setup()
    calls: list[int] = []
    real = metric._forward

    def spy(segments, n_wins):
        calls.append(len(segments))
        return real(segments, n_wins)

    monkeypatch.setattr(metric, "_forward", spy)
    ref0, noisy0, ref1, noisy1, n = speech
    items = [BatchItem(x, None, 16000) for x in (noisy0, ref1, noisy1[: n // 2], ref0[:1000], np.zeros(n, np.float32))]
    batched = metric.compute_batch(items)
    assert calls == [3]  # three scorable utterances of different lengths in one masked pass
    for item, got in zip(items, batched):
        try:
            want = metric.compute(item.estimate, None, 16000)
        except MetricError as exc:
            assert str(got) == str(exc)
            continue
        for key, value in want.items():
            assert got[key] == pytest.approx(value, abs=1e-5)
