"""A straightforward reimplementation of URGENT's evaluation scheme, as the baseline of ``scale.py``.

URGENT scores with one standalone script per metric (``evaluation_metrics/calculate_*.py``):
each script starts, imports its libraries, loads its model, then reads every reference
and enhanced file, resamples them to the metric's rate (soxr) and scores them, either in
a plain loop or with ``process_map(max_workers=nj)``. This script does exactly that for
one metric, with urgentbench's metric kernels (so that the numbers are identical and
only the orchestration differs):

    python benchmarks/urgent_baseline.py --metric mcd --ref-dir R --inf-dir E --output mcd.json [--nj 2]

It writes ``{utterance id: result dict or error text}`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from pathlib import Path
from typing import Any

_METRIC: Any = None


def _setup(name: str) -> None:
    global _METRIC
    from urgentbench.metrics import METRICS

    _METRIC = METRICS.get(name)()
    _METRIC.setup()


def _score(pair: tuple[str, str, str]) -> tuple[str, Any]:
    import numpy as np
    import soundfile as sf
    import soxr

    from urgentbench.metrics import MetricError

    utt_id, ref_path, inf_path = pair
    ref, fs = sf.read(ref_path, dtype="float32")  # every script re-reads every file ...
    inf, fs_inf = sf.read(inf_path, dtype="float32")
    if fs_inf != fs:
        return utt_id, f"rate mismatch {fs_inf} vs {fs}"
    rate = _METRIC.working_rate(fs)
    if rate != fs:  # ... and re-resamples it to the metric's rate
        ref = soxr.resample(ref, fs, rate, quality="HQ").astype(np.float32, copy=False)
        inf = soxr.resample(inf, fs, rate, quality="HQ").astype(np.float32, copy=False)
    try:
        return utt_id, _METRIC.compute(inf, ref if _METRIC.needs_reference else None, rate)
    except MetricError as exc:
        return utt_id, f"error: {exc}"


def main(argv: list[str] | None = None) -> int:
    """Score every ``<id>.flac`` of ``--inf-dir`` against ``--ref-dir`` with one metric."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metric", required=True)
    parser.add_argument("--ref-dir", required=True, type=Path)
    parser.add_argument("--inf-dir", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--nj", type=int, default=1, help="processes (URGENT's process_map max_workers)")
    args = parser.parse_args(argv)

    pairs = [(p.stem, str(args.ref_dir / p.name), str(p)) for p in sorted(args.inf_dir.glob("*.flac"))]
    if not pairs:
        print(f"{args.inf_dir}: no .flac files", file=sys.stderr)
        return 2
    if args.nj <= 1:
        _setup(args.metric)
        results = dict(_score(p) for p in pairs)
    else:
        ctx = multiprocessing.get_context("fork")  # process_map's default on Linux
        with ctx.Pool(args.nj, initializer=_setup, initargs=(args.metric,)) as pool:
            results = dict(pool.imap(_score, pairs, chunksize=1))
    args.output.write_text(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
