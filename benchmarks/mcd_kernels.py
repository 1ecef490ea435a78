"""MCD before and after the vectorised kernels, on real speech (issue 19, item 2).

Before: pysptk.mcep frame by frame and fastdtw(dist=euclidean) in pure Python, the official
URGENT route (and urgentbench's until the vectorised kernels). After: urgentbench's
``functional.mcd`` (all frames at once by ``metrics.mcep``, the same FastDTW path by
``functional.fastdtw_path``). Also fastdtw with ``dist=2``, which the issue suggested.

Clips: demo utterance 1 (clean reference and its noisy input, 2.7 s at 44.1 kHz), and a
10 s 16 kHz pair made of demo utterances 1-4 resampled and concatenated. Runs are
interleaved (before, after, before, after, ...) with BLAS limited to one thread, as in the
runner's workers; min and median of ``--repeats`` runs are printed, with the largest
difference between the two MCD values.

    python benchmarks/mcd_kernels.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def demo_clips() -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """Label -> (reference, noisy, rate): the first demo clip at its rate; the first four at 16 kHz (at most 10 s)."""
    from urgentbench.audio import resample
    from urgentbench.simulation.render import render_utterance
    from urgentbench.suites import get_suite

    suite = get_suite("demo")
    pairs = [render_utterance(u, suite.folder) for u in suite.utterances()[:4]]
    rate = suite.utterances()[0].sample_rate
    ref16 = np.concatenate([resample(p.reference, rate, 16000) for p in pairs])[:160000]
    noisy16 = np.concatenate([resample(p.noisy, rate, 16000) for p in pairs])[:160000]
    first = pairs[0]
    return {
        f"{len(first.reference) / rate:.1f} s at {rate / 1000:g} kHz": (first.reference, first.noisy, rate),
        f"{len(ref16) / 16000:.1f} s at 16 kHz": (ref16, noisy16, 16000),
    }


def mcd_before(ref: np.ndarray, est: np.ndarray, fs: int, dist) -> float:
    """``pysptk`` per frame + fastdtw, in float64 (urgentbench's code before the kernels)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pysptk
    from fastdtw import fastdtw

    from urgentbench.metrics import functional

    order, alpha = functional.mcep_params(fs)
    ref = np.asarray(ref, np.float64)
    est = functional.least_squares_scale(ref, np.asarray(est, np.float64))
    window = pysptk.sptk.hamming(1024)

    def cepstra(x: np.ndarray) -> np.ndarray:
        n = (len(x) - 1024) // 256 + 1
        return np.stack([pysptk.mcep(x[256 * i : 256 * i + 1024] * window, order, alpha, eps=1e-6, etype=1)
                         for i in range(n)])

    c_ref, c_est = cepstra(ref), cepstra(est)
    _, path = fastdtw(c_est, c_ref, dist=dist)
    pairs = np.asarray(path)
    diff = c_est[pairs[:, 0]] - c_ref[pairs[:, 1]]
    return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * np.sum(diff**2, axis=1))))


def main() -> None:
    """Time MCD before and after the kernels, and the DTW paths, on the demo clips."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from fastdtw import fastdtw
    from scipy.spatial.distance import euclidean

    from urgentbench.metrics import functional

    print(f"numpy {np.__version__}; OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for label, (ref, est, fs) in demo_clips().items():
        functional.mcd(ref, est, fs)  # warm-up: operators and window built once per process
        times: dict[str, list[float]] = {"before": [], "after": []}
        values: dict[str, float] = {}
        for _ in range(args.repeats):
            for name, fn in (("before", lambda ref=ref, est=est, fs=fs: mcd_before(ref, est, fs, euclidean)),
                             ("after", lambda ref=ref, est=est, fs=fs: functional.mcd(ref, est, fs))):
                start = time.perf_counter()
                values[name] = fn()
                times[name].append(time.perf_counter() - start)
        mc_ref = functional.mel_cepstra(ref, fs)
        mc_est = functional.mel_cepstra(functional.least_squares_scale(ref, est), fs)
        dtw: dict[str, list[float]] = {"fastdtw euclidean": [], "fastdtw dist=2": [], "fastdtw_path": []}
        paths = {}
        for _ in range(args.repeats):
            for name, fn in (
                ("fastdtw euclidean", lambda a=mc_est, b=mc_ref: fastdtw(a, b, dist=euclidean)[1]),
                ("fastdtw dist=2", lambda a=mc_est, b=mc_ref: fastdtw(a, b, dist=2)[1]),
                ("fastdtw_path", lambda a=mc_est, b=mc_ref: functional.fastdtw_path(a, b)),
            ):
                start = time.perf_counter()
                paths[name] = np.asarray(fn())
                dtw[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        functional.mel_cepstra(ref, fs)
        analysis = time.perf_counter() - start
        before, after = statistics.median(times["before"]), statistics.median(times["after"])
        print(f"\n{label} ({len(mc_ref)} frames): MCD before {values['before']:.10f} after {values['after']:.10f} "
              f"(difference {abs(values['before'] - values['after']):.1e} dB)")
        print(f"  MCD time   before min {min(times['before']):.3f} s median {before:.3f} s | "
              f"after min {min(times['after']):.3f} s median {after:.3f} s | speed-up {before / after:.1f}x (median)")
        print(f"  of which one signal's mel-cepstra (after): {analysis:.3f} s")
        for name, ts in dtw.items():
            same = np.array_equal(paths[name], paths["fastdtw euclidean"])
            print(f"  DTW {name:18s} min {min(ts):.4f} s median {statistics.median(ts):.4f} s  "
                  f"path {'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
