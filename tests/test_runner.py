"""The runner end to end: scoring outside outputs, bad inputs, resume after a kill, leaderboards."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from conftest import FIXTURES, TRANSCRIPTS

from urgentbench.cli import main
from urgentbench.manifest import Utterance, write_manifest
from urgentbench.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
FAST_METRICS = "pesq,estoi,sdr,si_sdr,lsd"


def make_suite(
    root: Path, n: int = 6, name: str = "mini", condition=lambda i, n: "clean", description: str = "test suite"
) -> Path:
    """A small suite of fixture speech at 16 kHz; returns the folder holding it.

    ``condition(i, n)`` gives utterance ``i``'s ``condition`` tag.
    """
    folder = root / "suites" / name
    utts = []
    for i in range(n):
        speaker = "ab"[i % 2]
        utts.append(
            Utterance(
                id=f"{name}_{i:03d}",
                sample_rate=16000,
                clean=str(FIXTURES / f"speech_{speaker}_22k.flac"),
                text=TRANSCRIPTS[speaker],
                speaker=speaker,
                seed=i,
                degradations=[],
                tags={"condition": condition(i, n)},
            )
        )
    sha = write_manifest(folder / "manifest.jsonl", utts)
    card = {
        "name": name,
        "version": "1",
        "description": description,
        "sample_rate": 16000,
        "manifest": "manifest.jsonl",
        "manifest_sha256": sha,
        "metrics": FAST_METRICS.split(","),
        "categories": {"intrusive": ["pesq", "estoi", "sdr", "lsd"]},
    }
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    return folder.parent


@pytest.fixture()
def suite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    suites = make_suite(tmp_path)
    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(suites))
    from urgentbench.suites import SUITES

    SUITES.rescan()
    yield tmp_path
    monkeypatch.undo()
    SUITES.rescan()


def _references(results: Path) -> dict[str, np.ndarray]:
    from urgentbench.runner import load_inputs
    from urgentbench.suites import get_suite

    suite = get_suite("mini")
    return {u.id: load_inputs(u, suite.folder, results, suite.key)[1] for u in suite.utterances()}


def _rows(results: Path) -> dict[tuple[str, str], tuple[dict | None, str | None]]:
    db = sqlite3.connect(results / "results.sqlite")
    out = {}
    for utt, metric, result, error in db.execute("SELECT utt_id, metric, result_json, error FROM scores"):
        out[(utt, metric)] = (None if result is None else json.loads(result), error)
    db.close()
    return out


def test_score_reports_every_bad_output_and_goes_on(suite_env: Path):
    results = suite_env / "results"
    refs = _references(results)
    out = suite_env / "outputs"
    out.mkdir()
    ids = sorted(refs)
    good = ids[0]
    rng = np.random.default_rng(0)
    sf.write(out / f"{good}.flac", refs[good] + 0.001 * rng.standard_normal(len(refs[good])), 16000)
    # ids[1]: missing file
    (out / f"{ids[2]}.flac").write_text("this is not audio")
    nan = refs[ids[3]].copy()
    nan[100] = np.nan
    sf.write(out / f"{ids[3]}.wav", nan, 16000, subtype="FLOAT")
    sf.write(out / f"{ids[4]}.flac", np.stack([refs[ids[4]]] * 2, axis=1), 16000)
    sf.write(out / f"{ids[5]}.flac", refs[ids[5]][:-10], 16000)

    code = main(["-q", "score", "--suite", "mini", "--outputs", str(out), "--name", "team", "--no-strict",
                 "--metrics", FAST_METRICS, "--results-dir", str(results)])
    assert code == 0
    rows = _rows(results)
    assert rows[(good, "pesq")][1] is None and rows[(good, "pesq")][0]["pesq"] > 2.0
    expected = {
        ids[1]: "enhanced file not found",
        ids[2]: "not a readable audio file",
        ids[3]: "NaN or Inf samples",
        ids[4]: "expected mono audio, got 2 channels",
        ids[5]: "expected exactly the input's",
    }
    for utt_id, message in expected.items():
        for metric in FAST_METRICS.split(","):
            result, error = rows[(utt_id, metric)]
            assert result is None
            assert message in error, (utt_id, error)
            assert "\n" not in error


def test_wrong_rate_longer_output_and_silence(suite_env: Path, capsys: pytest.CaptureFixture):
    results = suite_env / "results"
    refs = _references(results)
    out = suite_env / "outputs"
    out.mkdir()
    ids = sorted(refs)
    sf.write(out / f"{ids[0]}.flac", refs[ids[0]], 8000)
    sf.write(out / f"{ids[1]}.flac", np.concatenate([refs[ids[1]], np.zeros(5, np.float32)]), 16000)
    sf.write(out / f"{ids[2]}.flac", np.zeros_like(refs[ids[2]]), 16000)
    strict = main(["-q", "score", "--suite", "mini", "--outputs", str(out), "--name", "t", "--metrics", FAST_METRICS,
                   "--results-dir", str(results), "--limit", "3"])
    assert strict == 2  # validation lists every problem and scores nothing
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and "Hz" in err and "expected exactly the input" in err and "--no-strict" in err
    assert not (results / "results.sqlite").exists() or not _rows(results)
    main(["-q", "score", "--suite", "mini", "--outputs", str(out), "--name", "t", "--no-strict", "--metrics", FAST_METRICS,
          "--results-dir", str(results), "--limit", "3"])
    rows = _rows(results)
    assert "sample rate 8000 Hz, expected the input's 16000 Hz" in rows[(ids[0], "pesq")][1]
    assert "samples, expected exactly the input's" in rows[(ids[1], "sdr")][1]
    # silence is the participant's failure, recorded once with one reason for every metric: never a value
    # (SDR would say -50 dB, ESTOI about 0), never 0
    for metric in FAST_METRICS.split(","):
        assert rows[(ids[2], metric)] == (None, "silent output (all samples zero)")


def test_resume_after_kill_matches_uninterrupted_run(suite_env: Path):
    env = {**os.environ, "URGENTBENCH_SUITES_PATH": str(suite_env / "suites")}
    args = [sys.executable, "-m", "urgentbench.cli", "-q", "run", "--system", "noisy", "--suite", "mini",
            "--metrics", FAST_METRICS, "--jobs", "2"]
    full = suite_env / "full"
    subprocess.run(args + ["--results-dir", str(full)], env=env, check=True, timeout=600, capture_output=True)

    killed = suite_env / "killed"
    proc = subprocess.Popen(args + ["--results-dir", str(killed)], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = killed / "results.sqlite"
    deadline = time.time() + 300
    n = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                n = sqlite3.connect(db).execute("SELECT COUNT(*) FROM scores").fetchone()[0]
            except sqlite3.OperationalError:
                n = 0
            if n >= 5:
                break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    total = 6 * len(FAST_METRICS.split(","))
    assert 0 < n < total, "the kill must land in the middle of the run"
    subprocess.run(args + ["--results-dir", str(killed)], env=env, check=True, timeout=600, capture_output=True)
    with ResultStore(full / "results.sqlite") as a, ResultStore(killed / "results.sqlite") as b:
        assert len(a.dump()) == total
        assert a.dump() == b.dump()
        assert len(b.runs()) == 2


def test_rerun_computes_nothing_and_leaderboard_ranks(suite_env: Path, capsys: pytest.CaptureFixture):
    results = suite_env / "results"
    base = ["-q", "run", "--system", "noisy", "--suite", "mini", "--metrics", FAST_METRICS,
            "--results-dir", str(results)]
    assert main(base) == 0
    with ResultStore(results / "results.sqlite") as store:
        first = store.dump()
    assert main(base) == 0
    with ResultStore(results / "results.sqlite") as store:
        assert store.dump() == first
        runs = store.runs()
    assert len(runs) == 2 and runs[1]["provenance"]["suite"]["name"] == "mini"
    assert runs[1]["provenance"]["packages"]["numpy"] == np.__version__

    # an outside system: noisy input + a little noise must rank below the clean-ish noisy row
    out = suite_env / "outputs"
    out.mkdir()
    refs = _references(results)
    rng = np.random.default_rng(1)
    for utt_id, ref in refs.items():
        sf.write(out / f"{utt_id}.flac", ref + 0.05 * rng.standard_normal(len(ref)), 16000)
    assert main(["-q", "score", "--suite", "mini", "--outputs", str(out), "--name", "<b>team</b>",
                 "--metrics", FAST_METRICS, "--results-dir", str(results)]) == 0
    lb_dir = suite_env / "lb"
    assert main(["-q", "leaderboard", "--suite", "mini", "--metrics", FAST_METRICS, "--results-dir",
                 str(results), "--output-dir", str(lb_dir)]) == 0
    lb = json.loads((lb_dir / "mini" / "leaderboard.json").read_text())
    assert [r["system"] for r in lb["rows"]] == ["noisy", "<b>team</b>"]
    assert lb["rows"][0]["overall"] == 1.0 and lb["rows"][1]["overall"] == 2.0
    md = (lb_dir / "mini" / "leaderboard.md").read_text()
    assert "(1)" in md and "overall" in md
    assert main(["-q", "leaderboard", "--suite", "mini", "--metrics", FAST_METRICS, "--results-dir",
                 str(results), "--output-dir", str(lb_dir), "--by", "speaker"]) == 0
    breakdown = (lb_dir / "mini" / "breakdown_speaker.md").read_text()
    assert "## speaker = a (3 utterances)" in breakdown and "## speaker = b (3 utterances)" in breakdown
    csv_lines = (lb_dir / "mini" / "leaderboard.csv").read_text().splitlines()
    assert csv_lines[0].startswith("position,system,config_hash,pesq,pesq_rank")
    assert len(csv_lines) == 3


def test_threads_per_worker_is_validated_before_any_work(tmp_path):
    from urgentbench import runner
    from urgentbench.suites import get_suite

    suite = get_suite("demo")
    metrics = runner.resolve_metrics(["si_sdr"], suite)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(runner.RunError, match="threads per worker must be a positive integer"):
            runner.run(
                suite, [runner.system_producer("noisy")], metrics,
                runner.RunOptions(results_dir=tmp_path / "r", threads_per_worker=bad, progress=False),
            )
    assert not (tmp_path / "r").exists()
    report = runner.run(
        suite, [runner.system_producer("noisy")], metrics,
        runner.RunOptions(results_dir=tmp_path / "r", limit=1, threads_per_worker=1, progress=False),
    )
    assert report.rows_written == 1
