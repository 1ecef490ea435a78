"""Benchmark: DNSMOS seconds per clip, the official one-window-at-a-time run against urgentbench's.

Material: the demo suite's rendered noisy inputs (44.1 kHz, 2.4-3.9 s; each is resampled
to 16 kHz with soxr HQ, as the runner does, inside the timed region) and 10 s clips at
16 kHz cut from the same speech joined end to end (5 s apart; not resampled). For each
kind it times, interleaved clip by clip and over several rounds so that a change in the
machine's load hits all alike:

* ``per-window``: the official dnsmos_local.py loop (the metric's computation before it
  shared work across windows): one ONNX call per 9.01 s window per model, librosa features;
* ``compute``: ``DNSMOS.compute``, one clip at a time;
* ``compute_batch``: ``DNSMOS.compute_batch`` over all clips of the kind (seconds / clips).

The per-window way gets ``--threads`` onnxruntime intra-op threads, the metric its
``threads`` option (single-threaded calls side by side); all use one BLAS thread (as the
runner's workers). The script checks that the values agree (1e-6) and
counts bit-identical ones, and exits with an error otherwise.

``--sweep`` instead measures throughput (clips per second) with 1 and 2 worker processes and
1 or 2 threads each, for the official loop (onnxruntime intra-op threads) and for
``compute`` (its ``threads``: single-threaded calls side by side), to choose the defaults.

    python benchmarks/dnsmos_batch.py [--clips 8] [--threads 1] [--rounds 3] [--sweep]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SR = 16000
OUTPUTS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")


def load_material(n_clips: int) -> tuple[list[tuple[np.ndarray, int]], list[np.ndarray]]:
    """(44.1 kHz demo clips with their rate, 10 s 16 kHz clips), ``n_clips`` of each."""
    from urgentbench import runner
    from urgentbench.audio import resample
    from urgentbench.suites import get_suite

    suite = get_suite("demo")
    native = []
    with tempfile.TemporaryDirectory() as tmp:
        for utt in suite.utterances():
            noisy, _ = runner.load_inputs(utt, suite.folder, Path(tmp), suite.key)
            native.append((noisy, utt.sample_rate))
    joined = np.concatenate([resample(x, sr, SR) for x, sr in native])
    long = [joined[start : start + 10 * SR] for start in range(0, len(joined) - 10 * SR + 1, 5 * SR)]
    if len(native) < n_clips or len(long) < n_clips:
        raise SystemExit(
            f"the demo suite gives {len(native)} clips and {len(long)} 10 s clips; ask for fewer"
        )
    return native[:n_clips], long[:n_clips]


class PerWindow:
    """The official loop: one ONNX call per window per model (sessions opened once)."""

    def __init__(self, threads: int) -> None:
        import onnxruntime as ort

        from urgentbench.assets import PackagePart
        from urgentbench.metrics import dnsmos

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.p835, self.p808 = (
            ort.InferenceSession(
                str(PackagePart("speechmos", rel).locate()), options, providers=["CPUExecutionProvider"]
            )
            for rel, _ in (dnsmos._MODELS["p835"], dnsmos._MODELS["p808"])
        )
        self.polys = (dnsmos._POLY_SIG, dnsmos._POLY_BAK, dnsmos._POLY_OVRL)

    def __call__(self, audio: np.ndarray) -> dict[str, float]:
        """Score one 16 kHz clip window by window, as ``dnsmos_local.py`` does."""
        import librosa

        length = int(9.01 * SR)
        audio = np.asarray(audio, dtype=np.float32)
        while len(audio) < length:
            audio = np.append(audio, audio)
        rows = []
        for idx in range(int(np.floor(len(audio) / SR) - 9.01) + 1):
            segment = audio[int(idx * SR) : int((idx + 9.01) * SR)]
            if len(segment) < length:
                continue
            mel = librosa.feature.melspectrogram(
                y=segment[:-160], sr=SR, n_fft=321, hop_length=160, n_mels=120
            )
            features = ((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T.astype(np.float32)
            p808 = self.p808.run(None, {"input_1": features[None]})[0][0][0]
            raw = self.p835.run(None, {"input_1": segment[None]})[0][0]
            rows.append([np.polyval(p, r) for p, r in zip(self.polys, raw)] + [p808])
        sig, bak, ovrl, p808 = (float(np.mean(column)) for column in zip(*rows))
        return {"dnsmos_ovrl": ovrl, "dnsmos_sig": sig, "dnsmos_bak": bak, "dnsmos_p808": p808}


def as16(clip: tuple[np.ndarray, int] | np.ndarray) -> np.ndarray:
    """A clip at 16 kHz (soxr HQ, as the runner)."""
    from urgentbench.audio import resample

    return resample(clip[0], clip[1], SR) if isinstance(clip, tuple) else clip


def compare(kind: str, clips: list, threads: int, rounds: int) -> tuple[int, int, float]:
    """Time the three ways on ``clips``; returns (clips bit-identical, clips, max |difference|).

    Each round runs every clip the per-window way and with ``compute`` (interleaved), then
    all clips with ``compute_batch``; the figure of each way is the median over rounds of
    its mean seconds per clip, as wall time and as process CPU time.
    """
    from urgentbench.metrics import get_metric_class
    from urgentbench.metrics.base import BatchItem

    metric = get_metric_class("dnsmos")(threads=threads)
    metric.setup()
    before = PerWindow(threads)
    before(as16(clips[0]))  # warm-up
    ways = ("per-window", "compute", "compute_batch")
    wall: dict[str, list[float]] = {way: [] for way in ways}
    cpu: dict[str, list[float]] = {way: [] for way in ways}
    values: dict[str, list] = {}

    def timed(way: str, fn: Any) -> Any:
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall[way][-1] += time.perf_counter() - start
        cpu[way][-1] += time.process_time() - start_cpu
        return out

    for _ in range(rounds):
        for way in ways:
            wall[way].append(0.0)
            cpu[way].append(0.0)
        values = {"per-window": [], "compute": []}
        for clip in clips:
            values["per-window"].append(timed("per-window", lambda clip=clip: before(as16(clip))))
            values["compute"].append(timed("compute", lambda clip=clip: metric.compute(as16(clip), None, SR)))
        values["compute_batch"] = timed(
            "compute_batch", lambda: metric.compute_batch([BatchItem(as16(clip), None, SR) for clip in clips])
        )
    identical, worst = 0, 0.0
    for a, b, c in zip(values["per-window"], values["compute"], values["compute_batch"]):
        worst = max([worst] + [abs(a[k] - b[k]) for k in OUTPUTS] + [abs(a[k] - c[k]) for k in OUTPUTS])
        identical += all(a[k] == b[k] == c[k] for k in OUTPUTS)
    for label, table in (("wall", wall), ("cpu", cpu)):
        pw, cp, cb = (statistics.median(table[way]) / len(clips) for way in ways)
        print(
            f"{kind:<21} {label:<4}  per-window {pw:6.3f} s  compute {cp:6.3f} s ({pw / cp:4.2f}x)  "
            f"compute_batch {cb:6.3f} s ({pw / cb:4.2f}x)"
        )
    return identical, len(clips), worst


def sweep_worker(args: tuple[list[np.ndarray], int, str, object]) -> float:
    """One worker process: set up, wait for the others, score its clips; returns its busy seconds."""
    clips, threads, way, barrier = args
    from urgentbench.metrics import get_metric_class

    try:
        from urgentbench.pipeline.worker import configure_threads
    except ImportError:  # before the runner became a package
        from urgentbench.runner import configure_threads  # type: ignore[attr-defined,no-redef]

    configure_threads(threads)  # as the runner's workers: $URGENTBENCH_THREADS, one BLAS thread
    if way == "compute":
        metric = get_metric_class("dnsmos")()
        metric.setup()

        def score(x: np.ndarray) -> Any:
            return metric.compute(x, None, SR)
    else:
        score = PerWindow(threads)
        score(clips[0])
    barrier.wait()  # type: ignore[attr-defined]
    start = time.perf_counter()
    for clip in clips:
        score(clip)
    return time.perf_counter() - start


def sweep(clips: list[np.ndarray]) -> None:
    """Clips per second for 1 and 2 worker processes x 1 and 2 threads, both ways."""
    ctx = multiprocessing.get_context("spawn")
    meanings = {"per-window": "onnxruntime intra-op threads", "compute": "parallel single-threaded calls"}
    for way, meaning in meanings.items():
        print(f"  {way} (threads = {meaning}):")
        for workers in (1, 2):
            for threads in (1, 2):
                manager = ctx.Manager()
                barrier = manager.Barrier(workers)
                shares = [clips[w::workers] for w in range(workers)]
                with ctx.Pool(workers) as pool:
                    busy = pool.map(sweep_worker, [(share, threads, way, barrier) for share in shares])
                manager.shutdown()
                print(f"    {workers} worker(s) x {threads} thread(s): {len(clips) / max(busy):5.2f} clips/s")


def main() -> int:
    """Time the three ways on both kinds of clips; 1 when their values differ by more than 1e-6."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=8, help="clips of each kind (default 8)")
    parser.add_argument("--threads", type=int, default=1, help="threads of each way (default 1)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds; figures are medians over rounds (default 3)"
    )
    parser.add_argument("--sweep", action="store_true", help="measure worker/thread combinations instead")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    native, long = load_material(args.clips)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f} at start"
    )
    if args.sweep:
        kinds = (("3 s clips at 44.1 kHz", [as16(c) for c in native]), ("10 s clips at 16 kHz", long))
        for kind, clips in kinds:
            print(f"{kind} ({len(clips)} clips, compute, resampling not timed):")
            sweep(clips)
        return 0
    print(
        f"seconds per clip (median over {args.rounds} rounds of the mean), wall and process CPU time, "
        f"{args.threads} thread(s); per-window = the official loop, as the metric ran before"
    )
    results = [
        compare("3 s clip at 44.1 kHz", native, args.threads, args.rounds),
        compare("10 s clip at 16 kHz", long, args.threads, args.rounds),
    ]
    identical = sum(r[0] for r in results)
    total = sum(r[1] for r in results)
    worst = max(r[2] for r in results)
    print(
        f"values: {identical}/{total} clips bit-identical in all three ways; largest difference {worst:.2e}"
    )
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    if worst > 1e-6:
        print("values differ by more than 1e-6", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
