"""Benchmark: score a suite and report per-metric kernel time, wall time and harness overhead.

The suite's noisy inputs are rendered first (not timed) and then scored as an outside
system's outputs into a fresh results store, so the timed part is exactly the scoring
path of ``urgentbench score``: reading files, resampling, model set-up and metrics.

    python benchmarks/score_suite.py --suite demo --jobs 2

Harness overhead = wall time - (sum of metric kernel seconds) / workers. It includes
process start-up and model loading, which a long run amortises.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sqlite3
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from urgentbench import runner
from urgentbench.audio import write_flac
from urgentbench.layout import store_path
from urgentbench.suites import get_suite


def main() -> None:
    """Render the suite, score it as an outside system's outputs and print the timings."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="demo")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--metrics", help="comma-separated (default: the suite's)")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    suite = get_suite(args.suite)
    metrics = runner.resolve_metrics(args.metrics.split(",") if args.metrics else None, suite)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        utterances = suite.utterances(args.limit)
        for utt in utterances:  # render inputs (untimed)
            noisy, _ = runner.load_inputs(utt, suite.folder, tmp_path / "cache", suite.key)
            write_flac(tmp_path / "outputs" / f"{utt.id}.flac", noisy, utt.sample_rate)
        producer = runner.directory_producer(tmp_path / "outputs", "bench", [u.id for u in utterances])
        start = time.perf_counter()
        options = runner.RunOptions(results_dir=tmp_path / "cache", jobs=args.jobs, limit=args.limit, progress=False)
        runner.run(suite, [producer], metrics, options)
        wall = time.perf_counter() - start
        db = sqlite3.connect(store_path(tmp_path / "cache"))
        per_metric: dict[str, list[float]] = defaultdict(list)
        for metric, seconds in db.execute("SELECT metric, seconds FROM scores"):
            per_metric[metric].append(seconds)
        db.close()

    kernel = sum(sum(v) for v in per_metric.values())
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"suite {suite.key}: {len(utterances)} utterances, {args.jobs} worker(s)")
    print(f"{'metric':<10}{'mean s/utt':>12}{'total s':>10}")
    for metric, values in sorted(per_metric.items()):
        print(f"{metric:<10}{sum(values) / len(values):>12.4f}{sum(values):>10.2f}")
    overhead = wall - kernel / args.jobs
    print(f"wall time: {wall:.2f} s; metric kernels: {kernel:.2f} s")
    print(f"harness overhead: {overhead:.2f} s ({100 * overhead / wall:.1f} % of wall time)")


if __name__ == "__main__":
    main()
