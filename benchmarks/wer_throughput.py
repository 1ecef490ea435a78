"""Benchmark: WER throughput with batched Whisper decoding against one utterance at a time.

The suite's noisy inputs are rendered and resampled to 16 kHz first (not timed). One
Whisper model (faster-whisper, the metric's defaults) is loaded once and warmed up; then
the same utterances are scored one at a time (``compute``) and in length-bucketed batches
(``compute_batch``), bucket by bucket in turn, and the script prints utterances per second for both and their
ratio. It exits with an error unless both give identical transcripts and counts.

    python benchmarks/wer_throughput.py --suite demo [--batch-size 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from urgentbench import runner
from urgentbench.audio import resample
from urgentbench.metrics import get_metric_class
from urgentbench.metrics.base import BatchItem, length_buckets
from urgentbench.suites import get_suite


def main() -> int:
    """Time WER one at a time and batched; non-zero when the two differ or no utterance has a transcript."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="demo")
    parser.add_argument("--limit", type=int, help="only the first N utterances")
    parser.add_argument("--batch-size", type=int, default=None, help="utterances per batch (default: the metric's)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CTranslate2 threads")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    suite = get_suite(args.suite)
    items = []
    with tempfile.TemporaryDirectory() as tmp:
        for utt in suite.utterances(args.limit):
            if not utt.text:
                continue
            noisy, _ = runner.load_inputs(utt, suite.folder, Path(tmp), suite.key)
            items.append(BatchItem(resample(noisy, utt.sample_rate, 16000), None, 16000, utt.text))
    if not items:
        print(f"suite {suite.key} has no utterance with a transcript", file=sys.stderr)
        return 2
    metric = get_metric_class("wer")(cpu_threads=args.threads)
    if args.batch_size is not None:
        metric.batch_size = args.batch_size
    metric.setup()
    metric.compute(items[0].estimate, None, 16000, transcript=items[0].transcript)  # warm-up

    # Interleaved per length bucket (one-at-a-time, then the same bucket batched), so that a
    # change in the machine's load during the run affects both sides alike.
    single: list = [None] * len(items)
    batched: list = [None] * len(items)
    t_single = t_batched = 0.0
    for bucket in length_buckets([len(i.estimate) for i in items], metric.batch_size):
        start = time.perf_counter()
        for k in bucket:
            i = items[k]
            single[k] = metric.compute(i.estimate, i.reference, i.sample_rate, transcript=i.transcript)
        t_single += time.perf_counter() - start
        start = time.perf_counter()
        for k, result in zip(bucket, metric.compute_batch([items[k] for k in bucket])):
            batched[k] = result
        t_batched += time.perf_counter() - start

    failed = [k for k, r in enumerate(batched) if isinstance(r, Exception)]
    differ = [k for k, (a, b) in enumerate(zip(single, batched)) if k not in failed and a != b]
    audio_s = sum(len(i.estimate) for i in items) / 16000
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(
        f"suite {suite.key}: {len(items)} utterances ({audio_s:.1f} s of audio); Whisper base "
        f"(faster-whisper, {metric.options['compute_type']}, beam {metric.options['beam_size']}), "
        f"{args.threads} thread(s), batches of up to {metric.batch_size}"
    )
    print(f"one at a time: {len(items) / t_single:7.3f} utterances/s ({t_single:.1f} s)")
    print(f"batched:       {len(items) / t_batched:7.3f} utterances/s ({t_batched:.1f} s)")
    print(f"ratio batched / one-at-a-time: {t_single / t_batched:.2f}x")
    wer = metric.aggregate("wer", [r for r in batched if isinstance(r, dict)])
    print(f"corpus WER {wer:.4f}; transcripts identical: {not failed and not differ}")
    if failed or differ:
        print(f"FAILED: {len(failed)} batched error(s), {len(differ)} differing result(s): {failed + differ}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
