"""Dask scale-out, worker failure, metric-at-a-time and memory of the runner."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import yaml
from conftest import FIXTURES, TRANSCRIPTS

from urgentbench import runner
from urgentbench.manifest import Utterance, write_manifest
from urgentbench.metrics import METRICS, Metric, Output
from urgentbench.store import ResultStore
from urgentbench.suites import SUITES, get_suite
from urgentbench.systems import SYSTEMS

ROOT = Path(__file__).resolve().parents[1]
CHEAP = ["pesq", "estoi", "si_sdr", "lsd"]

KILLER_CARD = {
    "name": "killer",
    "description": "test system: identity that SIGKILLs its own worker once, on its third utterance",
    "sample_rate": 16000,
    "entry": "system.py:Killer",
}
KILLER_CODE = '''
import os
import signal
from pathlib import Path
from typing import ClassVar

import numpy as np

from urgentbench.systems.base import System


class Killer(System):
    native_rate_follows_input: ClassVar[bool] = True
    calls: ClassVar[int] = 0

    def enhance(self, waveform, sample_rate):
        type(self).calls += 1
        marker = Path(os.environ["URGENTBENCH_TEST_KILL_MARKER"])
        if type(self).calls == 3:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # only one process ever kills
            except FileExistsError:
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return np.array(waveform, dtype=np.float32, copy=True), sample_rate
'''

FAILS_CODE = '''
import os
from urgentbench.systems.base import System


class Fails(System):
    native_rate_follows_input = True

    def enhance(self, waveform, sample_rate):
        with open(os.environ["URGENTBENCH_TEST_FAIL_LOG"], "a") as f:
            f.write("call\\n")
        raise RuntimeError("this system always fails")
'''


def make_suite(root: Path, n: int, name: str = "dmini", clean: str | None = None, rate: int = 16000) -> Path:
    """A suite of ``n`` utterances (fixture speech, or ``clean``) with white noise; returns its parent folder."""
    folder = root / "suites" / name
    utts = []
    for i in range(n):
        speaker = "ab"[i % 2]
        utts.append(
            Utterance(
                id=f"{name}_{i:03d}",
                sample_rate=rate,
                clean=clean or str(FIXTURES / f"speech_{speaker}_22k.flac"),
                text=TRANSCRIPTS[speaker],
                speaker=speaker,
                seed=i,
                degradations=[],
                tags={},
            )
        )
    sha = write_manifest(folder / "manifest.jsonl", utts)
    card = {
        "name": name, "version": "1", "description": "test suite", "sample_rate": rate,
        "manifest": "manifest.jsonl", "manifest_sha256": sha, "metrics": CHEAP, "categories": {},
    }
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    return folder.parent


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A mini suite and the killer system on the search paths (inherited by spawned workers)."""
    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(make_suite(tmp_path, 8)))
    systems = tmp_path / "systems"
    (systems / "killer").mkdir(parents=True)
    (systems / "killer" / "card.yaml").write_text(yaml.safe_dump(KILLER_CARD))
    (systems / "killer" / "system.py").write_text(KILLER_CODE)
    (systems / "fails").mkdir()
    fails_card = {**KILLER_CARD, "name": "fails", "description": "test system: always raises", "entry": "system.py:Fails"}
    (systems / "fails" / "card.yaml").write_text(yaml.safe_dump(fails_card))
    (systems / "fails" / "system.py").write_text(FAILS_CODE)
    monkeypatch.setenv("URGENTBENCH_TEST_FAIL_LOG", str(tmp_path / "fail.log"))
    monkeypatch.setenv("URGENTBENCH_SYSTEMS_PATH", str(systems))
    monkeypatch.setenv("URGENTBENCH_TEST_KILL_MARKER", str(tmp_path / "killed.pid"))
    SUITES.rescan()
    SYSTEMS.rescan()
    yield tmp_path
    monkeypatch.undo()
    SUITES.rescan()
    SYSTEMS.rescan()


def values(results: Path) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """(utterance, metric) -> (result JSON, error) of every stored row."""
    with ResultStore(results / "results.sqlite") as store:
        return {(r[4], r[5]): (r[8], r[9]) for r in store.dump()}


@pytest.mark.slow
def test_local_dask_cluster_gives_exactly_the_process_pool_results(tmp_path: Path):
    suite = get_suite("demo")
    metrics = runner.resolve_metrics(CHEAP, suite)
    producers = [runner.system_producer("noisy"), runner.system_producer("wiener")]
    pool = runner.run(
        suite, producers, metrics,
        runner.RunOptions(results_dir=tmp_path / "pool", jobs=2, progress=False),
    )
    dask = runner.run(
        suite, producers, metrics,
        runner.RunOptions(results_dir=tmp_path / "dask", scheduler="local:2", progress=False),
    )
    n = len(suite.utterances())
    # one job per system and utterance, each back exactly once (split tail jobs count once)
    assert pool.jobs == pool.jobs_done == dask.jobs == dask.jobs_done == 2 * n
    assert dask.workers == 2
    assert dask.rows_written == pool.rows_written == 2 * n * len(CHEAP)
    with ResultStore(tmp_path / "pool" / "results.sqlite") as a, ResultStore(tmp_path / "dask" / "results.sqlite") as b:
        rows_pool, rows_dask = a.dump(), b.dump()
    assert len(rows_dask) == 2 * n * len(CHEAP)
    assert all(r[9] is None for r in rows_dask), [r for r in rows_dask if r[9]][:3]
    assert rows_dask == rows_pool  # same keys, same JSON values to the last digit
    # the enhanced audio the workers wrote is the pool's, bit for bit
    wiener = sorted((tmp_path / "dask" / "enhanced").rglob("*.flac"))
    assert len(wiener) == 2 * n
    for path in wiener[:4]:
        twin = tmp_path / "pool" / path.relative_to(tmp_path / "dask")
        assert path.read_bytes() == twin.read_bytes()


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(env: Path):
    suite = get_suite("dmini")
    metrics = runner.resolve_metrics(["pesq", "estoi", "si_sdr"], suite)
    killer = runner.system_producer("killer")
    report = runner.run(
        suite, [killer], metrics,
        runner.RunOptions(results_dir=env / "dask", scheduler="local:2", progress=False),
    )

    marker = env / "killed.pid"
    assert marker.exists(), "the killer system never killed its worker"
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # that worker process is gone
    # every job came back exactly once, every row was written once
    assert report.jobs == report.jobs_done == 8
    assert report.rows_written == 8 * 3
    assert not report.errors
    got = values(env / "dask")
    assert len(got) == 8 * 3 and all(err is None for _, err in got.values())

    # the killer is the identity: its scores equal the noisy system's from an in-process run
    reference = runner.run(
        suite, [runner.system_producer("noisy")], metrics,
        runner.RunOptions(results_dir=env / "inline", jobs=1, progress=False),
    )
    assert reference.rows_written == 8 * 3
    assert got == values(env / "inline")  # bit-identical: BLAS is single-threaded in every worker

    # a rerun on the cluster finds everything stored and computes nothing
    again = runner.run(
        suite, [killer], metrics,
        runner.RunOptions(results_dir=env / "dask", scheduler="local:1", progress=False),
    )
    assert again.jobs == 0 and again.rows_written == 0


_LIVE: weakref.WeakSet = weakref.WeakSet()
_MAX_LIVE = [0]


class _Probe(Metric):
    """Records how many probe metrics are set up and alive while one of them computes."""

    category: ClassVar[str] = "intrusive"
    needs_reference: ClassVar[bool] = True

    def setup(self) -> None:
        _LIVE.add(self)

    def compute(self, estimate: np.ndarray, reference: np.ndarray | None, sample_rate: int, *,
                transcript: str | None = None) -> dict[str, Any]:
        gc.collect()
        _MAX_LIVE[0] = max(_MAX_LIVE[0], len(_LIVE))
        return {self.name: float(np.mean(np.square(estimate)))}


class ProbeA(_Probe):
    name = "probe_a"
    outputs = (Output("probe_a", True, "mean power"),)


class ProbeB(_Probe):
    name = "probe_b"
    outputs = (Output("probe_b", True, "mean power"),)


@pytest.fixture()
def probes() -> Iterator[None]:
    for cls in (ProbeA, ProbeB):
        METRICS.register(cls.name, cls, override=True, origin="test")
    yield
    for cls in (ProbeA, ProbeB):
        METRICS._entries.pop(cls.name, None)
        METRICS._aliases.pop(cls.name, None)


@pytest.mark.parametrize("at_a_time", [False, True])
def test_metric_at_a_time_holds_one_model_and_gives_the_same_values(env: Path, probes: None, at_a_time: bool):
    suite = get_suite("dmini")
    metrics = runner.resolve_metrics(["probe_a", "si_sdr", "probe_b"], suite)
    producers = [runner.system_producer("noisy"), runner.system_producer("wiener")]
    _MAX_LIVE[0] = 0
    report = runner.run(
        suite, producers, metrics,
        runner.RunOptions(results_dir=env / "r", jobs=1, progress=False, metric_at_a_time=at_a_time, limit=4),
    )
    assert report.rows_written == 2 * 4 * 3 and not report.errors
    # normal mode keeps both probe models loaded; metric-at-a-time never more than one
    assert _MAX_LIVE[0] == (1 if at_a_time else 2)
    if at_a_time:
        # 8 enhancement jobs, then 3 metric phases of 8 jobs each
        assert report.jobs == report.jobs_done == 8 + 3 * 8
        runner.run(
            suite, producers, metrics,
            runner.RunOptions(results_dir=env / "n", jobs=1, progress=False, limit=4),
        )
        assert values(env / "r") == values(env / "n")


def test_metric_at_a_time_runs_a_failing_system_once_per_utterance(env: Path):
    suite = get_suite("dmini")
    metrics = runner.resolve_metrics(["si_sdr", "lsd", "pesq"], suite)
    report = runner.run(
        suite, [runner.system_producer("fails")], metrics,
        runner.RunOptions(results_dir=env / "r", jobs=1, progress=False, metric_at_a_time=True, limit=2),
    )
    # one enhancement attempt per utterance, not one per metric phase
    assert (env / "fail.log").read_text().count("call") == 2
    assert report.rows_written == 2 * 3
    got = values(env / "r")
    assert len(got) == 6
    assert all(r is None and "this system always fails" in e for r, e in got.values())


def test_scheduler_values_are_checked():
    from urgentbench.pipeline.options import parse_scheduler

    assert parse_scheduler("local:3") == ("local", 3)
    assert parse_scheduler("tcp://10.0.0.1:8786") == ("address", "tcp://10.0.0.1:8786")
    for bad in ("local:0", "local:x", "localhost:8786", "nowhere.json"):
        with pytest.raises(runner.RunError):
            parse_scheduler(bad)


def test_a_bad_scheduler_is_a_one_line_error_before_any_work(env: Path, capsys: pytest.CaptureFixture):
    from urgentbench.cli import main

    results = env / "r"
    code = main(["-q", "run", "--system", "noisy", "--suite", "dmini", "--metrics", "si_sdr",
                 "--results-dir", str(results), "--scheduler", "local:0"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "expected local:N with N >= 1 workers" in err[-1] and "Traceback" not in "".join(err)
    assert not (results / "results.sqlite").exists()


def test_default_run_does_not_import_dask(env: Path):
    code = textwrap.dedent(
        """
        import sys
        from urgentbench import runner
        from urgentbench.suites import get_suite
        suite = get_suite("dmini")
        m = runner.resolve_metrics(["si_sdr"], suite)
        runner.run(
            suite, [runner.system_producer("noisy")], m,
            runner.RunOptions(results_dir=sys.argv[1], jobs=1, progress=False, limit=2),
        )
        print(any(name == "distributed" or name.startswith(("distributed.", "dask")) for name in sys.modules))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code, str(env / "r")], capture_output=True, text=True, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


_RSS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from urgentbench import runner
    from urgentbench.suites import get_suite
    suite = get_suite(sys.argv[1])
    m = runner.resolve_metrics(["si_sdr"], suite)
    report = runner.run(
        suite, [runner.system_producer("noisy")], m,
        runner.RunOptions(results_dir=sys.argv[2], jobs=1, progress=False),
    )
    print(json.dumps({"rows": report.rows_written, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    """
)


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_suite(tmp_path: Path):
    """Peak RSS of a whole in-process run (render, enhance, score, store) for 3 vs 15 long utterances.

    One utterance is 30 s at 48 kHz: its noisy input and reference alone take about 11 MB
    as float32, so keeping them for 12 more utterances adds about 130 MB (checked by
    injecting exactly that leak: 144 -> 276 MB). Measured: the peak RSS of the process,
    which covers everything the runner keeps (job plans, results, caches); without a leak
    both peaks are about 120 MB.
    """
    import soundfile as sf

    speech, rate = sf.read(FIXTURES / "speech_a_22k.flac", dtype="float32")
    long = np.tile(speech, int(np.ceil(30 * rate / len(speech))))[: 30 * rate]
    clean = tmp_path / "long.flac"
    sf.write(clean, long, rate)
    env = dict(os.environ)
    peaks = {}
    for n in (3, 15):
        parent = make_suite(tmp_path / f"s{n}", n, name=f"long{n}", clean=str(clean), rate=48000)
        env["URGENTBENCH_SUITES_PATH"] = str(parent)
        proc = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, f"long{n}", str(tmp_path / f"r{n}")],
            capture_output=True, text=True, env=env,
        )
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["rows"] == n
        peaks[n] = out["maxrss_kb"] / 1024
    growth = peaks[15] - peaks[3]
    assert growth < 40, f"peak RSS grew by {growth:.0f} MB from 3 to 15 utterances ({peaks})"
