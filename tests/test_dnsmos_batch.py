"""DNSMOS shared-window computation: equal to the official one-window-at-a-time run on real speech.

The reference here is the official ``dnsmos_local.py`` loop written out (one ONNX call per
window per model, librosa features); the metric splits the P.835 graph, shares the analysis
of overlapping windows and batches windows across utterances, and must give the same values
(within 1e-6; on onnxruntime's CPU kernels they are bit-identical).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import load_speech

from urgentbench.metrics import MetricError, dnsmos_features, dnsmos_onnx, get_metric_class
from urgentbench.metrics import dnsmos as dnsmos_module
from urgentbench.metrics.base import BatchItem

logger = logging.getLogger(__name__)

SR = 16000
TOL = 1e-6
OUTPUTS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")


# --------------------------------------------------------------------------- no model needed


def official_window_slices(length: int) -> list[tuple[int, int]]:
    """Window slices of dnsmos_local.py for a (repeated) waveform of ``length`` samples."""
    num_hops = int(np.floor(length / SR) - 9.01) + 1
    out = []
    for idx in range(num_hops):
        start, stop = int(idx * SR), int((idx + 9.01) * SR)
        if len(range(length)[start:stop]) < int(9.01 * SR):
            continue
        out.append((start, stop))
    return out


def test_window_starts_follow_the_official_slicing_including_its_skipped_windows():
    for seconds in (9.01, 9.5, 10.0, 12.3, 16.99, 17.0, 18.02, 25.4, 33.0, 140.7):
        length = int(seconds * SR)
        expected = official_window_slices(length)
        assert dnsmos_features.window_starts(length) == [start for start, _ in expected], seconds
        assert all(stop - start == dnsmos_features.WINDOW for start, stop in expected)
    # the float product int((idx + 9.01) * 16000) drops windows 7..23 and 119..122
    starts = dnsmos_features.window_starts(int(140.7 * SR))
    assert [s // SR for s in starts][:8] == [0, 1, 2, 3, 4, 5, 6, 24]
    assert 118 * SR in starts and 119 * SR not in starts and 123 * SR in starts


def test_stretches_group_overlapping_windows_and_tiles_cover_each_stretch():
    plan = dnsmos_features.Plan(np.zeros(int(40.5 * SR), dtype=np.float32))
    plan.first = 5
    stretches = plan.stretches()
    # windows 0..6 overlap one another; 24..30 form a second stretch
    assert [(s.start, s.n_frames, s.offsets[-1]) for s in stretches] == [(0, 1500, 600), (2400, 1500, 600)]
    assert [i for s in stretches for i in s.window_index] == list(range(5, 5 + plan.n))
    for n_frames in (8, 900, 2000, 2001, 5555):
        tiles = dnsmos_module._tiles(n_frames)
        assert tiles[0][0] == 0 and tiles[-1][1] == n_frames
        assert all(a[1] == b[0] for a, b in itertools.pairwise(tiles))
        halo = dnsmos_features.HALO
        for keep_start, keep_stop, lo, hi in tiles:
            assert keep_stop - keep_start <= dnsmos_module._TILE
            assert lo == max(0, keep_start - halo) and hi == min(n_frames, keep_stop + halo)


def test_p835_split_covers_the_official_graph():
    from urgentbench.assets import PackagePart

    path = PackagePart("speechmos", dnsmos_module._MODELS["p835"][0]).locate()
    if path is None:
        pytest.skip("speechmos is not installed")
    import onnx

    parts = [onnx.load_from_string(blob) for blob in dnsmos_onnx.split_p835(path)]
    official = onnx.load(str(path))
    framing = {"Slice", "Reshape", "Concat"}
    official_nodes = sorted(n.name for n in official.graph.node if n.op_type not in framing)
    assert sorted(n.name for p in parts for n in p.graph.node) == official_nodes
    assert [p.graph.input[0].name for p in parts] == [
        dnsmos_onnx.T_FRAMES,
        dnsmos_onnx.T_LOGSPEC,
        dnsmos_onnx.T_CONV,
    ]
    assert parts[-1].graph.output[0].name == official.graph.output[0].name


def test_device_option_errors_are_one_line():
    with pytest.raises(ValueError, match="'cpu', 'cuda' or 'cuda:N'"):
        get_metric_class("dnsmos")(device="tpu").setup()
    with pytest.raises(ValueError, match="'cpu', 'cuda' or 'cuda:N'"):
        get_metric_class("dnsmos")(device="cuda:x").setup()
    providers, name = dnsmos_onnx.execution_providers("cuda:1", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert name == "cuda:1" and providers[0] == ("CUDAExecutionProvider", {"device_id": 1})
    assert dnsmos_onnx.execution_providers("CPU", ["CPUExecutionProvider"]) == (["CPUExecutionProvider"], "cpu")
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the missing-CUDA error cannot be shown here")
    with pytest.raises(RuntimeError) as info:
        get_metric_class("dnsmos")(device="cuda").setup()
    message = str(info.value)
    assert "\n" not in message and "CUDAExecutionProvider" in message and "onnxruntime-gpu" in message


# --------------------------------------------------------------------------- real models, real speech


@pytest.fixture(scope="module")
def demo16(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """Rendered demo-suite noisy inputs and references (44.1 kHz), resampled to 16 kHz as the runner does."""
    from urgentbench import runner
    from urgentbench.audio import resample
    from urgentbench.suites import get_suite

    suite = get_suite("demo")
    folder = tmp_path_factory.mktemp("demo-inputs")
    out = {}
    for utt in suite.utterances(4):
        noisy, reference = runner.load_inputs(utt, suite.folder, Path(folder), suite.key)
        out[f"{utt.id}-noisy"] = resample(noisy, utt.sample_rate, SR)
        if reference is not None:
            out[f"{utt.id}-reference"] = resample(reference, utt.sample_rate, SR)
    return out


@pytest.fixture(scope="module")
def clips(demo16: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Real clips of every window layout: 1 window, 3 repeated-clip windows, 7 and 8+1 windows, 0.4 s."""
    speech = np.concatenate([load_speech("a", SR), load_speech("b", SR)])
    joined = np.concatenate([speech, *demo16.values()])
    out = dict(demo16)
    out["speech-10s"] = speech[: 10 * SR]
    out["speech-16.5s"] = speech[: int(16.5 * SR)]  # 7 windows (0..6)
    out["joined-33s"] = np.concatenate([joined, joined])[: 33 * SR + 123]  # windows 0..6 and 24
    out["short-0.4s"] = joined[SR : SR + int(0.4 * SR)]
    out["loud"] = (2.5 * speech[: 5 * SR]).astype(np.float32)  # outside [-1, 1]: scored as it is
    return out


class OfficialPerWindow:
    """dnsmos_local.py's loop: one ONNX call per window per model, librosa features."""

    def __init__(self) -> None:
        import onnxruntime as ort

        from urgentbench.assets import PackagePart

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.sessions = {
            key: ort.InferenceSession(
                str(PackagePart("speechmos", rel).locate()), options, providers=["CPUExecutionProvider"]
            )
            for key, (rel, _) in dnsmos_module._MODELS.items()
        }

    def __call__(self, audio: np.ndarray) -> dict[str, float]:
        import librosa

        audio = np.asarray(audio, dtype=np.float32)
        length = int(9.01 * SR)
        while len(audio) < length:
            audio = np.append(audio, audio)
        scores: dict[str, list[float]] = {name: [] for name in OUTPUTS}
        for start, stop in official_window_slices(len(audio)):
            segment = audio[start:stop]
            mel = librosa.feature.melspectrogram(
                y=segment[:-160], sr=SR, n_fft=321, hop_length=160, n_mels=120
            )
            features = ((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T.astype(np.float32)
            p808 = self.sessions["p808"].run(None, {"input_1": features[np.newaxis]})[0][0][0]
            sig, bak, ovrl = self.sessions["p835"].run(None, {"input_1": segment[np.newaxis]})[0][0]
            scores["dnsmos_sig"].append(np.poly1d(dnsmos_module._POLY_SIG)(sig))
            scores["dnsmos_bak"].append(np.poly1d(dnsmos_module._POLY_BAK)(bak))
            scores["dnsmos_ovrl"].append(np.poly1d(dnsmos_module._POLY_OVRL)(ovrl))
            scores["dnsmos_p808"].append(p808)
        return {name: float(np.mean(values)) for name, values in scores.items()}


@pytest.fixture(scope="module")
def official() -> OfficialPerWindow:
    return OfficialPerWindow()


@pytest.fixture(scope="module")
def dnsmos() -> Any:
    metric = get_metric_class("dnsmos")(threads=1)
    metric.setup()
    return metric


def assert_close(ours: dict[str, Any], theirs: dict[str, float], label: str) -> None:
    for name in OUTPUTS:
        assert abs(ours[name] - theirs[name]) <= TOL, f"{label} {name}: {ours[name]!r} vs {theirs[name]!r}"


class Counting:
    """An onnxruntime session that records the batch size of every call."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.sizes: list[int] = []

    def run(self, outputs: Any, feeds: dict[str, np.ndarray]) -> Any:
        self.sizes.append(len(next(iter(feeds.values()))))
        return self.session.run(outputs, feeds)


@pytest.mark.slow
def test_compute_equals_the_official_per_window_run(dnsmos, official, clips):
    identical = 0
    for label, audio in clips.items():
        ours = dnsmos.compute(audio, None, SR)
        theirs = official(audio)
        assert_close(ours, theirs, label)
        identical += all(ours[name] == theirs[name] for name in OUTPUTS)
    logger.info(
        "DNSMOS shared-window run bit-identical to the per-window run on %d of %d clips",
        identical,
        len(clips),
    )


@pytest.mark.slow
def test_compute_equals_speechmos(dnsmos, clips):
    from speechmos import dnsmos as speechmos_dnsmos

    for label in ("speech-16.5s", "short-0.4s"):
        audio = clips[label]
        theirs = speechmos_dnsmos.run(audio, sr=SR)
        ours = dnsmos.compute(audio, None, SR)
        speechmos_values = {name: float(theirs[name.replace("dnsmos_", "") + "_mos"]) for name in OUTPUTS}
        assert_close(ours, speechmos_values, label)


@pytest.mark.slow
def test_compute_batch_runs_windows_of_all_utterances_together(dnsmos, clips):
    labels = [label for label in clips if label != "joined-33s"]
    items = [BatchItem(clips[label], None, SR) for label in labels]
    items.insert(2, BatchItem(np.zeros(0, dtype=np.float32), None, SR))  # bad item keeps its error
    single = {label: dnsmos.compute(clips[label], None, SR) for label in labels}
    head, p808, convs = Counting(dnsmos._head), Counting(dnsmos._p808), Counting(dnsmos._convs)
    dnsmos._head, dnsmos._p808, dnsmos._convs = head, p808, convs
    try:
        batched = dnsmos.compute_batch(items)
    finally:
        dnsmos._head, dnsmos._p808, dnsmos._convs = head.session, p808.session, convs.session
    assert isinstance(batched.pop(2), MetricError)
    for label, result in zip(labels, batched):
        assert_close(result, single[label], label)
    windows = sum(len(dnsmos_features.windows(clips[label])) for label in labels)
    assert windows > len(labels)  # several utterances have several windows
    batch = dnsmos_module._HEAD_BATCH
    assert head.sizes == [min(batch, windows - k) for k in range(0, windows, batch)]
    assert p808.sizes == [windows]
    # fewer convolution calls than windows: stretches of equal length share a call
    assert len(convs.sizes) < windows


@pytest.mark.slow
def test_small_tiles_and_groups_give_the_same_values(dnsmos, clips, monkeypatch):
    audio = clips["joined-33s"]
    default = dnsmos.compute(audio, None, SR)
    monkeypatch.setattr(dnsmos_module, "_TILE", 333)
    monkeypatch.setattr(dnsmos_module, "_CONV_FRAMES", 700)
    monkeypatch.setattr(dnsmos_module, "_HEAD_BATCH", 3)
    monkeypatch.setattr(dnsmos_module, "_P808_BATCH", 5)
    monkeypatch.setattr(dnsmos_module, "_SPECTRUM_FRAMES", 1000)
    monkeypatch.setattr(dnsmos_module, "_EDGE_BATCH", 2)
    tiled = dnsmos.compute(audio, None, SR)
    assert_close(tiled, default, "tiled")


@pytest.mark.slow
def test_device_cpu_and_provenance(clips):
    metric = get_metric_class("dnsmos")(device="cpu", threads=1)
    metric.setup()
    assert metric.provenance()["device"] == "cpu"
    sessions = (metric._spectrum, metric._convs, metric._head, metric._p808)
    assert all(s.get_providers() == ["CPUExecutionProvider"] for s in sessions)
    assert metric.compute(clips["speech-10s"], None, SR)["dnsmos_ovrl"] > 1.0


@pytest.mark.slow
def test_threads_split_the_convolutions_without_changing_values(dnsmos, clips):
    two = get_metric_class("dnsmos")(threads=2)
    two.setup()
    assert two.provenance()["threads"] == 2
    convs = Counting(two._convs)
    two._convs = convs
    for label in ("speech-10s", "joined-33s"):
        assert_close(two.compute(clips[label], None, SR), dnsmos.compute(clips[label], None, SR), label)
    # one 900-frame window: two tiles, one call each, so both threads have work
    assert convs.sizes[:2] == [1, 1]


def _score_in_child(metric: Any, audio: np.ndarray, queue: Any) -> None:
    queue.put(metric.compute(audio, None, SR))


@pytest.mark.slow
def test_a_metric_set_up_before_fork_scores_in_the_child(clips):
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    metric = get_metric_class("dnsmos")(threads=2)
    metric.setup()
    audio = clips["speech-10s"]
    expected = metric.compute(audio, None, SR)  # the parent's thread pool exists now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_score_in_child, args=(metric, audio, queue))
    child.start()
    try:
        assert queue.get(timeout=120) == expected
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()


def test_without_p808_the_p835_outputs_are_unchanged_and_p808_is_absent(dnsmos, clips):
    metric = get_metric_class("dnsmos")(threads=1, p808=False)
    metric.setup()
    assert metric._p808 is None  # the P.808 model is not even loaded
    labels = ["speech-16.5s", "short-0.4s"]
    batched = metric.compute_batch([BatchItem(clips[label], None, SR) for label in labels])
    for label, result in zip(labels, batched):
        full = dnsmos.compute(clips[label], None, SR)
        assert "dnsmos_p808" not in result and "dnsmos_p808" in full
        assert {k: full[k] for k in OUTPUTS[:3]} == result, label  # bit-identical
    with pytest.raises(ValueError, match="p808 must be true or false"):
        get_metric_class("dnsmos")(p808="no")


def test_split_graph_is_cached_verified_and_loaded_without_onnx(tmp_path, caplog):
    import subprocess
    import sys

    from urgentbench.assets import PackagePart

    path = PackagePart("speechmos", "dnsmos_models/sig_bak_ovr.onnx").locate()
    sha = dnsmos_module._MODELS["p835"][1]
    fresh = dnsmos_onnx.split_p835(path)
    assert dnsmos_onnx.split_p835_cached(path, sha, tmp_path) == fresh  # split and written
    folder = tmp_path / "dnsmos-split" / f"{sha}-v{dnsmos_onnx.SPLIT_VERSION}"
    assert sorted(p.name for p in folder.iterdir()) == ["convs.onnx", "head.onnx", "parts.json", "spectrum.onnx"]
    # a worker with a warm cache sets DNSMOS up without importing the onnx package
    code = (
        "import sys\n"
        "from urgentbench.metrics.dnsmos import DNSMOS\n"
        "m = DNSMOS(threads=1, p808=False); m.setup()\n"
        "print('onnx' in sys.modules)\n"
    )
    env = {**__import__("os").environ, "URGENTBENCH_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
    # a damaged part is detected, split again and rewritten
    head = folder / "head.onnx"
    head.write_bytes(head.read_bytes()[:-10] + b"0123456789")
    with caplog.at_level(logging.WARNING):
        assert dnsmos_onnx.split_p835_cached(path, sha, tmp_path) == fresh
    assert "do not match their sha256" in caplog.text
    assert head.read_bytes() == fresh[2]


def test_p808_at_its_default_keeps_the_stored_results_key():
    from urgentbench.pipeline.specs import MetricSpec

    default = MetricSpec("dnsmos").options_hash
    assert default == "b5d147b08b48"  # the key of DNSMOS scores stored before the option existed
    assert MetricSpec("dnsmos", (("p808", True),)).options_hash == default
    assert MetricSpec("dnsmos", (("p808", False),)).options_hash != default
