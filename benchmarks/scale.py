"""Benchmarks of issue 8: against URGENT's scripts, harness overhead, parallel efficiency.

(a) urgentbench vs URGENT's one-script-per-metric scheme, (b) harness overhead relative to
metric-kernel time, (c) parallel efficiency 1 -> 2 workers.

Everything runs on the same files in one process tree. The suite's noisy inputs are
rendered first (not timed) and scored as an outside system's outputs.

(a) The baseline (``benchmarks/urgent_baseline.py``) runs one process per metric, each
    importing its libraries, loading its model and re-reading and re-resampling every
    file, in a loop (``nj=1``) or with a process pool of ``nj`` processes (URGENT's
    ``process_map``). urgentbench is timed as the command ``urgentbench score --jobs J``
    (start-up, submission validation and all). Values must be identical (checked; the
    script exits 1 otherwise). Every process gets one inference thread.
(b) From an in-process ``runner.run`` with J workers: overhead = wall - kernel / J, where
    kernel is the sum of metric ``compute`` seconds; split into model set-up (one-off,
    per worker) and the rest (process start-up, reading, resampling, IPC, store, idle tail).
(c) The same run with 1 worker: efficiency = T1 / (J x TJ).

    python benchmarks/scale.py                    # all three, demo suite, 2 workers
    python benchmarks/scale.py --only a --baseline-nj 1,2
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from urgentbench import runner
from urgentbench.store import ResultStore
from urgentbench.suites import get_suite

HERE = Path(__file__).resolve().parent
A_METRICS = ["pesq", "estoi", "sdr", "mcd", "lsd", "dnsmos"]


def machine() -> str:
    """One line describing the machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = ""
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {load}"


def prepare(suite_name: str, limit: int | None, root: Path) -> tuple:
    """Render inputs once (untimed): a results cache with them, references and outputs folders."""
    suite = get_suite(suite_name)
    utterances = suite.utterances(limit)
    cache = root / "inputs-cache"
    refs, outs = root / "refs", root / "outputs"
    refs.mkdir(parents=True)
    outs.mkdir()
    for utt in utterances:
        runner.load_inputs(utt, suite.folder, cache, suite.key)
        noisy, ref = runner.input_paths(cache, suite.key, utt.id)
        shutil.copy(noisy, outs / f"{utt.id}.flac")
        shutil.copy(ref, refs / f"{utt.id}.flac")
    return suite, utterances, cache, refs, outs


def fresh_results(cache: Path, root: Path, name: str) -> Path:
    """A results folder holding the rendered inputs but no scores."""
    out = root / name
    shutil.copytree(cache / "inputs", out / "inputs")
    return out


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its waited-for children so far.

    CPU time hardly depends on other load on the machine, unlike wall time, so it is
    printed next to every wall time: on a busy machine compare the CPU columns.
    """
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def one_thread_env() -> dict[str, str]:
    """This environment with one inference thread per process (and pysptk's warning silenced)."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "URGENTBENCH_THREADS"):
        env[var] = "1"
    env["PYTHONWARNINGS"] = "ignore"  # pysptk's pkg_resources warning, once per baseline script
    return env


def stored_values(results: Path) -> dict[tuple[str, str], object]:
    """(metric, utterance) -> stored result, or ``"error: <reason>"``."""
    with ResultStore(results / "results.sqlite") as store:
        return {(r[5], r[4]): (json.loads(r[8]) if r[8] else f"error: {r[9]}") for r in store.dump()}


def bench_a(suite, utterances, cache, refs, outs, root: Path, jobs: int, nj_list: list[int]) -> bool:
    """(a): returns True when all values are identical."""
    print(f"\n(a) urgentbench vs URGENT's scheme, metrics {','.join(A_METRICS)}")
    env = one_thread_env()
    results = fresh_results(cache, root, "a-urgentbench")
    cmd = [str(Path(sys.executable).parent / "urgentbench"), "-q", "score", "--suite", suite.name,
           "--outputs", str(outs), "--name", "bench", "--metrics", ",".join(A_METRICS), "--jobs", str(jobs),
           "--results-dir", str(results)]
    if len(utterances) < len(suite.utterances()):
        cmd += ["--limit", str(len(utterances))]
    start, cpu0 = time.perf_counter(), cpu_seconds()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    t_ours, cpu_ours = time.perf_counter() - start, cpu_seconds() - cpu0
    ours = stored_values(results)
    print(f"  urgentbench score --jobs {jobs}: {t_ours:.1f} s wall, {cpu_ours:.1f} s CPU")
    identical = True
    for nj in nj_list:
        per_metric = {}
        start, cpu0 = time.perf_counter(), cpu_seconds()
        for metric in A_METRICS:
            out = root / f"baseline-{metric}-nj{nj}.json"
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, str(HERE / "urgent_baseline.py"), "--metric", metric, "--ref-dir", str(refs),
                 "--inf-dir", str(outs), "--output", str(out), "--nj", str(nj)],
                check=True, env=env,
            )
            per_metric[metric] = time.perf_counter() - t0
            for utt_id, value in json.loads(out.read_text()).items():
                if ours.get((metric, utt_id)) != value:
                    identical = False
                    print(f"  MISMATCH {metric}/{utt_id}: urgentbench {ours.get((metric, utt_id))} vs baseline {value}")
        t_base, cpu_base = time.perf_counter() - start, cpu_seconds() - cpu0
        detail = ", ".join(f"{m} {s:.1f}" for m, s in per_metric.items())
        print(f"  URGENT scheme, nj={nj}: {t_base:.1f} s wall ({detail}), {cpu_base:.1f} s CPU")
        print(f"  ratio (a), nj={nj}: {t_base / t_ours:.2f}x faster (wall); {cpu_base / cpu_ours:.2f}x less CPU")
    print(f"  values identical: {identical} ({len(ours)} values compared per baseline run)")
    return identical


def timed_run(
    suite, utterances, cache, outs, root: Path, name: str, metrics, jobs: int, systems: int = 1
) -> tuple[runner.RunReport, float]:
    """A scoring run into a fresh store; returns its report and the CPU seconds it took (all processes).

    Every worker runs model inference on one thread, also when there is one worker (by
    default a lone worker would use every core), so that (c) compares 1 core with 2.
    ``systems`` > 1 scores the same outputs as that many separately named systems (a
    leaderboard run), which is what a fixed per-worker cost is spread over.
    """
    results = fresh_results(cache, root, name)
    ids = [u.id for u in utterances]
    producers = [runner.directory_producer(outs, f"bench{k}" if systems > 1 else "bench", ids) for k in range(systems)]
    cpu0 = cpu_seconds()
    options = runner.RunOptions(
        results_dir=results, jobs=jobs, limit=len(utterances), progress=False, threads_per_worker=1
    )
    report = runner.run(suite, producers, metrics, options)
    return report, cpu_seconds() - cpu0


def bench_bc(
    suite, utterances, cache, outs, root: Path, jobs: int, metric_names: list[str] | None, do_c: bool, systems: int = 1
) -> None:
    """(b) harness overhead of a run with ``jobs`` workers and, with ``do_c``, (c) its parallel efficiency."""
    metrics = runner.resolve_metrics(metric_names, suite)
    print(f"\n(b) harness overhead, metrics {','.join(m.name for m in metrics)}, {jobs} workers, {systems} system(s)")
    rep, cpu_n = timed_run(suite, utterances, cache, outs, root, "b", metrics, jobs, systems)
    w = rep.workers
    kernel = rep.kernel_seconds / w
    setup = rep.setup_seconds / w
    overhead = rep.seconds - kernel
    harness = rep.seconds - kernel - setup
    print(f"  wall {rep.seconds:.1f} s ({cpu_n:.1f} s CPU); metric kernels {rep.kernel_seconds:.1f} s ({kernel:.1f} s per worker); "
          f"model set-up {rep.setup_seconds:.1f} s ({setup:.1f} s per worker)")
    print(f"  overhead (b) = wall - kernel/workers = {overhead:.1f} s = {100 * overhead / kernel:.1f} % of kernel time "
          f"({100 * overhead / rep.seconds:.1f} % of wall)")
    print(f"    of which model set-up {setup:.1f} s; the rest (start-up, I/O, resampling, IPC, store, tail) "
          f"{harness:.1f} s = {100 * harness / kernel:.1f} % of kernel time")
    if do_c:
        print(f"\n(c) parallel efficiency, 1 -> {jobs} workers")
        one, cpu_1 = timed_run(suite, utterances, cache, outs, root, "c1", metrics, 1, systems)
        eff = one.seconds / (jobs * rep.seconds)
        print(f"  1 worker {one.seconds:.1f} s wall, {cpu_1:.1f} s CPU (kernels {one.kernel_seconds:.1f} s); "
              f"{jobs} workers {rep.seconds:.1f} s wall, {cpu_n:.1f} s CPU (kernels {rep.kernel_seconds:.1f} s)")
        print(f"  efficiency (c) = T1 / ({jobs} x T{jobs}) = {100 * eff:.1f} %; "
              f"CPU work ratio CPU1 / CPU{jobs} = {100 * cpu_1 / cpu_n:.1f} % (duplicated start-up and model loading)")


def main() -> int:
    """Run the benchmarks the command line asks for; 1 when a check fails (values differ, WER benchmark failed)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="demo")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--only", default="a,b,c,d", help="which benchmarks (a, b, c, d)")
    parser.add_argument("--baseline-nj", default="1,2", help="process counts of the URGENT-scheme baseline")
    parser.add_argument("--metrics", help="metrics of (b) and (c) (default: the suite's)")
    parser.add_argument("--systems", type=int, default=1,
                        help="(b) and (c): score the outputs as this many systems (a leaderboard run)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    only = set(args.only.split(","))
    print(f"machine: {machine()}")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        suite, utterances, cache, refs, outs = prepare(args.suite, args.limit, root)
        print(f"suite {suite.key}: {len(utterances)} utterances")
        if "a" in only:
            ok = bench_a(suite, utterances, cache, refs, outs, root, args.jobs,
                         [int(n) for n in args.baseline_nj.split(",")])
        if "b" in only or "c" in only:
            names = args.metrics.split(",") if args.metrics else None
            bench_bc(suite, utterances, cache, outs, root, args.jobs, names, "c" in only, args.systems)
    if "d" in only:  # WER throughput, batched vs one at a time (its own script, in a child process)
        print("\n(d) WER throughput, batched vs one at a time")
        cmd = [sys.executable, str(HERE / "wer_throughput.py"), "--suite", args.suite]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        ok = subprocess.run(cmd).returncode == 0 and ok
    print(f"\nmachine at the end: {machine()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
