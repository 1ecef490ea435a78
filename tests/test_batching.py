"""Batched model metrics: compute_batch equals one-at-a-time compute (1e-6; Whisper: identical transcripts)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, ClassVar

import numpy as np
import pytest
from conftest import TRANSCRIPTS, load_speech, white_noise_mix

from urgentbench.metrics import MetricError, get_metric_class
from urgentbench.metrics.base import BatchItem, Metric, Output, length_buckets

SR = 16000


@pytest.fixture(scope="module")
def clean_a() -> np.ndarray:
    return load_speech("a", SR)


@pytest.fixture(scope="module")
def clean_b() -> np.ndarray:
    return load_speech("b", SR)


@pytest.fixture(scope="module")
def items(clean_a: np.ndarray, clean_b: np.ndarray) -> list[BatchItem]:
    """Utterances of different lengths (one long enough for several DNSMOS windows) and two bad ones."""
    noisy_a = white_noise_mix(clean_a, 5.0, seed=3)
    noisy_b = white_noise_mix(clean_b, 0.0, seed=4)
    long = np.concatenate([clean_a, noisy_b, clean_b[: 2 * SR]])  # 11.5 s: two 9.01 s windows
    short = clean_b[: SR // 2]
    return [
        BatchItem(noisy_a, clean_a, SR, TRANSCRIPTS["a"]),
        BatchItem(clean_b, clean_b, SR, TRANSCRIPTS["b"]),
        BatchItem(np.full(SR, np.nan, dtype=np.float32), clean_a, SR, TRANSCRIPTS["a"]),  # bad input
        BatchItem(long, clean_a, SR, TRANSCRIPTS["a"] + " " + TRANSCRIPTS["b"] + " It's easy to tell."),
        BatchItem(noisy_b, clean_b, SR, TRANSCRIPTS["b"]),
        BatchItem(short, clean_b, SR, "It's easy."),
        BatchItem(clean_a, clean_a, 44100, TRANSCRIPTS["a"]),  # wrong rate
        BatchItem(clean_a, clean_b, SR, TRANSCRIPTS["a"]),
    ]


def one_at_a_time(metric: Metric, items: list[BatchItem]) -> list[dict[str, Any] | Exception]:
    out: list[dict[str, Any] | Exception] = []
    for item in items:
        try:
            out.append(metric.compute(item.estimate, item.reference, item.sample_rate, transcript=item.transcript))
        except MetricError as exc:
            out.append(exc)
    return out


def assert_same(single: list, batched: list, outputs: tuple[str, ...], tol: float) -> None:
    assert len(single) == len(batched)
    for i, (a, b) in enumerate(zip(single, batched)):
        if isinstance(a, Exception):
            assert isinstance(b, MetricError) and str(b) == str(a), f"item {i}: {a!r} vs {b!r}"
            continue
        assert isinstance(b, dict), f"item {i}: {b!r}"
        for name in outputs:
            assert abs(a[name] - b[name]) <= tol, f"item {i} {name}: {a[name]} vs {b[name]}"


# --------------------------------------------------------------------------- protocol


def test_length_buckets_group_similar_lengths():
    lengths = [50, 10, 40, 20, 30, 10, 60]
    buckets = length_buckets(lengths, 3)
    assert [len(b) for b in buckets] == [3, 3, 1]
    assert sorted(i for b in buckets for i in b) == list(range(len(lengths)))
    assert [[lengths[i] for i in b] for b in buckets] == [[10, 10, 20], [30, 40, 50], [60]]
    assert length_buckets([], 4) == []
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            length_buckets(lengths, bad)


class _Peak(Metric):
    name: ClassVar[str] = "peak"
    category: ClassVar[str] = "non-intrusive"
    needs_reference: ClassVar[bool] = False
    outputs: ClassVar[tuple[Output, ...]] = (Output("peak", True, "peak"),)

    def compute(self, estimate, reference, sample_rate, *, transcript=None):
        if not np.any(estimate):
            raise MetricError("silent")
        if sample_rate == 1:
            raise ZeroDivisionError("boom")
        return {"peak": float(np.max(np.abs(estimate)))}


def test_default_compute_batch_loops_over_compute_and_keeps_errors_per_item():
    metric = _Peak()
    batch = [
        BatchItem(np.array([0.5, -0.25]), None, 8000),
        BatchItem(np.zeros(3), None, 8000),
        BatchItem(np.ones(2), None, 1),
        BatchItem(np.array([-0.75]), None, 8000),
    ]
    out = metric.compute_batch(batch)
    assert out[0] == {"peak": 0.5} and out[3] == {"peak": 0.75}
    assert isinstance(out[1], MetricError) and str(out[1]) == "silent"
    assert isinstance(out[2], ZeroDivisionError)
    assert Metric.batch_size == 1


# --------------------------------------------------------------------------- real models


@pytest.mark.slow
def test_dnsmos_batched_equals_one_at_a_time(items):
    from urgentbench.metrics import dnsmos as dnsmos_module
    from urgentbench.metrics import dnsmos_features

    metric = get_metric_class("dnsmos")()
    metric.setup()
    single = one_at_a_time(metric, items)
    batched = metric.compute_batch(items)
    assert_same(single, batched, tuple(o.name for o in metric.outputs), 1e-6)
    assert isinstance(batched[2], MetricError) and isinstance(batched[6], MetricError)
    # the long item spans two windows; all windows of the batch go through each model together
    assert len(dnsmos_features.windows(items[3].estimate)) == 2

    class Counting:  # an onnxruntime session recording each call's batch size
        def __init__(self, session):
            self.session, self.sizes = session, []

        def run(self, outputs, feeds):
            self.sizes.append(len(next(iter(feeds.values()))))
            return self.session.run(outputs, feeds)

    head, p808 = Counting(metric._head), Counting(metric._p808)
    metric._head, metric._p808 = head, p808
    metric.compute_batch(items)
    valid = [i.estimate for k, i in enumerate(items) if k not in (2, 6)]
    total = sum(len(dnsmos_features.windows(np.asarray(x, dtype=np.float32))) for x in valid)
    batch = dnsmos_module._HEAD_BATCH
    assert total > len(valid) and p808.sizes == [total]
    assert head.sizes == [min(batch, total - k) for k in range(0, total, batch)]


@pytest.mark.slow
def test_speaker_similarity_batched_equals_one_at_a_time(items):
    metric = get_metric_class("spk_sim")()
    metric.setup()
    bad_ref = BatchItem(items[0].estimate, None, SR)  # no reference
    silent = BatchItem(np.zeros(SR, dtype=np.float32), items[0].reference, SR)
    batch = [*items, bad_ref, silent]
    single = one_at_a_time(metric, batch)
    batched = metric.compute_batch(batch)
    assert_same(single, batched, ("spk_sim",), 1e-6)
    assert [i for i, r in enumerate(batched) if isinstance(r, Exception)] == [2, 6, 8, 9]
    # a small batch size splits the utterances into several length buckets: same values
    metric.batch_size = 2
    assert_same(single, metric.compute_batch(batch), ("spk_sim",), 1e-6)


@pytest.fixture(scope="module")
def wer_metric():
    metric = get_metric_class("wer")()
    metric.setup()
    return metric


@pytest.mark.slow
def test_whisper_batched_transcripts_identical(wer_metric, items, monkeypatch):
    from urgentbench.metrics import whisper_backends

    sizes: list[int] = []
    original = whisper_backends._LockstepModel._run_if_complete

    def counting(self):
        if self._pending and len(self._pending) >= self._active:
            sizes.append(len(self._pending))
        original(self)

    monkeypatch.setattr(whisper_backends._LockstepModel, "_run_if_complete", counting)
    single = one_at_a_time(wer_metric, items)
    batched = wer_metric.compute_batch(items)
    assert_same(single, batched, ("wer", "cer"), 0.0)
    for a, b in zip(single, batched):
        if isinstance(a, dict):
            assert a["hypothesis"] == b["hypothesis"]
            assert {k: a[k] for k in a} == {k: b[k] for k in b}
    assert max(sizes) > 1, sizes  # generate really ran on batches


@pytest.mark.slow
def test_whisper_repetition_guard_is_batched_too(wer_metric, clean_a, monkeypatch):
    """Loops detected in a batch are decoded again with repeated trigrams forbidden, like one at a time."""
    backend = wer_metric._backend
    calls: list[tuple[int, int]] = []
    real = backend.transcribe_batch

    def fake(audios, beam_size, no_repeat_ngram_size=0):
        calls.append((len(audios), no_repeat_ngram_size))
        if no_repeat_ngram_size:
            return real(audios, beam_size, no_repeat_ngram_size)
        return ["eight, " * 40 if len(a) < SR * 2 else "fine text" for a in audios]

    monkeypatch.setattr(backend, "transcribe_batch", fake)
    texts = wer_metric.transcribe_many([clean_a, clean_a[: SR], clean_a[: SR + 100]])
    assert calls[0] == (3, 0) and calls[1] == (2, 3)
    assert texts[0] == "fine text"
    assert all(isinstance(t, str) and "eight, eight, eight, eight" not in t for t in texts[1:])


@pytest.mark.slow
def test_runner_batches_jobs_with_identical_results(tmp_path):
    """runner.run(batch_size=4) stores the values of batch_size=1 (DNSMOS, spk_sim, WER) on the demo suite."""
    from urgentbench import runner
    from urgentbench.audio import write_flac
    from urgentbench.suites import get_suite

    suite = get_suite("demo")
    utterances = suite.utterances(5)
    outputs = tmp_path / "outputs"
    for utt in utterances:
        noisy, _ = runner.load_inputs(utt, suite.folder, tmp_path / "inputs", suite.key)
        write_flac(outputs / f"{utt.id}.flac", noisy, utt.sample_rate)
    producer = runner.directory_producer(outputs, "noisy-files", [u.id for u in utterances])
    metrics = runner.resolve_metrics(["dnsmos", "spk_sim", "wer"], suite)

    def scores(batch_size: int) -> dict[tuple[str, str], dict]:
        results = tmp_path / f"results-{batch_size}"
        report = runner.run(
            suite, [producer], metrics,
            runner.RunOptions(results_dir=results, jobs=1, limit=5, progress=False, batch_size=batch_size),
        )
        assert report.rows_written == 15
        db = sqlite3.connect(results / "results.sqlite")
        rows = db.execute("SELECT utt_id, metric, result_json, error FROM scores").fetchall()
        db.close()
        assert all(error is None for *_, error in rows)
        return {(u, m): json.loads(r) for u, m, r, _ in rows}

    one, batched = scores(1), scores(4)
    assert one.keys() == batched.keys() and len(one) == 15
    for key, a in one.items():
        b = batched[key]
        assert a.keys() == b.keys()
        for name, value in a.items():
            if isinstance(value, float):
                assert abs(value - b[name]) <= 1e-6, (key, name)
            else:
                assert value == b[name], (key, name)


def test_process_batch_records_failures_per_job(tmp_path):
    """A batch with a missing output: that job gets its error, the others their values (no model needed)."""
    from urgentbench import runner
    from urgentbench.audio import write_flac
    from urgentbench.suites import get_suite

    suite = get_suite("demo")
    utterances = suite.utterances(3)
    outputs = tmp_path / "outputs"
    for utt in utterances[:2]:
        noisy, _ = runner.load_inputs(utt, suite.folder, tmp_path / "inputs", suite.key)
        write_flac(outputs / f"{utt.id}.flac", noisy, utt.sample_rate)
    producer = runner.directory_producer(outputs, "partial", [u.id for u in utterances])
    metrics = runner.resolve_metrics(["si_sdr", "lsd"], suite)
    ctx = runner.WorkerContext(
        suite_folder=str(suite.folder),
        suite_key=suite.key,
        suite_rate=suite.sample_rate,
        results_dir=str(tmp_path / "inputs"),
        producers=(producer,),
        metrics=tuple(metrics),
        threads_per_worker=1,
        batch_size=3,
    )
    state = runner.WorkerState(ctx)
    jobs = [runner.Job(0, u.to_dict(), (0, 1)) for u in utterances]
    batched = state.process_batch(jobs)
    single = [state.process(job) for job in jobs]
    assert [r.job for r in batched] == jobs
    for a, b in zip(single, batched):
        assert [(i, res, err) for i, res, err, _ in a.results] == [(i, res, err) for i, res, err, _ in b.results]
    assert batched[2].results[0][2].startswith("no enhanced audio")
    assert all(r[1] is not None for res in batched[:2] for r in res.results)
    assert not any(type(m).__name__ == "_Recorder" for m in state.metrics.values())
