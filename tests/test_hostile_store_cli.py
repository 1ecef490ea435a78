"""Hostile inputs to the results store, the asset checks and the command line (issue 15, defects 3, 4, 7).

A damaged store (truncated, garbage, a damaged page noticed only when read) gives one line
naming the file and the recovery command; ``store check`` and ``store recover`` find and
save what is readable and never delete the damaged file; writers killed mid-transaction
never corrupt the store. A corrupt model file is reported by ``ls`` (sha256 checked, cached
by size, mtime and ctime) and a metric whose set-up fails is a run-level error: nothing is
stored for it. Every integer option refuses bad values with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import seed_code_assets
from test_runner import make_suite

from urgentbench.cli import main
from urgentbench.store import ResultStore, ScoreKey, ScoreRow, StoreError

ROOT = Path(__file__).resolve().parents[1]
SHARED_NISQA = ROOT.parent / "shared" / "assets" / "nisqa" / "nisqa.tar"
NISQA_SHA256 = "7ec4cf937514dd3f8860b21e66fabd8ca87a168572675ef8d979c4c4ad2e805c"
MALFORMED = "database disk image is malformed"


def damaged_line(db: Path, text: str = MALFORMED) -> str:
    """The one line every command prints for a damaged store."""
    return (
        f"urgentbench: error: {db}: the results store is damaged (sqlite: {text}); copy every readable row "
        f"into a new store with `urgentbench store recover --results-dir {db.parent}` (the damaged file is "
        f"kept beside it)\n"
    )


def nisqa_tar() -> Path:
    if not SHARED_NISQA.is_file():
        pytest.fail(f"{SHARED_NISQA} not found: the NISQA weights for tests live in ../shared/assets/nisqa")
    return SHARED_NISQA


@pytest.fixture(scope="module")
def mini_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A two-utterance 16 kHz suite ``mini`` and a real results folder: noisy scored with pesq and estoi."""
    root = tmp_path_factory.mktemp("mini")
    suites = make_suite(root, n=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("URGENTBENCH_SUITES_PATH", str(suites))
        from urgentbench.suites import SUITES

        SUITES.rescan()
        assert main(["-q", "run", "--system", "noisy", "--suite", "mini", "--metrics", "pesq,estoi",
                     "--jobs", "1", "--results-dir", str(root / "results")]) == 0
        yield root
    SUITES.rescan()


@pytest.fixture()
def results(mini_env: Path, tmp_path: Path) -> Path:
    """A private copy of the mini results folder."""
    dest = tmp_path / "results"
    shutil.copytree(mini_env / "results", dest)
    return dest


def _rootpage(db: Path, table: str) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()[0]


def _overwrite_page(db: Path, page: int, byte: int = 0xFF) -> None:
    size = 4096
    with open(db, "r+b") as fh:
        fh.seek((page - 1) * size)
        fh.write(bytes([byte]) * size)


def _fill(db: Path, n_utts: int, metrics=("pesq", "estoi", "sdr")) -> list[tuple]:
    """A store of ``n_utts`` x ``metrics`` rows written through the store API; returns its dump."""
    with ResultStore(db) as store:
        run_id = store.start_run("mini", "1", "urgentbench run ...", {"packages": {"numpy": np.__version__}})
        store.register_system("mini", "1", "sys-a", "c0ffee", "System A", {"description": "x"})
        for metric in metrics:
            key = ScoreKey("mini", "1", "sys-a", "c0ffee", metric, "1", "opts")
            store.write(
                [ScoreRow(key, f"utt{i:05d}", None, "PESQ: no utterances detected", 0.5, "metric") if i % 41 == 0
                 else ScoreRow(key, f"utt{i:05d}", {metric: i / 7, "note": "é" * (i % 30)}, None, 0.25)
                 for i in range(n_utts)],
                run_id,
            )
        store.finish_run(run_id)
        return store.dump()


# --------------------------------------------------------------------------- defect 3: damaged store


@pytest.mark.parametrize("command", ["leaderboard", "table", "run", "check"])
def test_truncated_store_gives_one_line_for_every_command(results: Path, tmp_path: Path, capsys, command: str):
    db = results / "results.sqlite"
    os.truncate(db, db.stat().st_size // 2)  # truncate -s 50%
    argv = {
        "leaderboard": ["leaderboard", "--suite", "mini", "--output-dir", str(tmp_path / "lb")],
        "table": ["table", "--suite", "mini", "--metrics", "pesq"],
        "run": ["run", "--system", "noisy", "--suite", "mini", "--metrics", "pesq", "--jobs", "1"],
        "check": ["check", "--suite", "mini", "--system", "noisy", "--baseline", str(tmp_path / "b.json"),
                  "--write-baseline"],
    }[command]
    capsys.readouterr()
    assert main(["-q", *argv, "--results-dir", str(results)]) == 2
    out, err = capsys.readouterr()
    assert err == damaged_line(db)
    assert out == ""
    assert not (tmp_path / "lb").exists() and not (tmp_path / "b.json").exists()


def test_garbage_file_is_named_as_not_a_database(results: Path, tmp_path: Path, capsys):
    db = results / "results.sqlite"
    db.write_bytes(os.urandom(8192))
    assert main(["leaderboard", "--suite", "mini", "--results-dir", str(results),
                 "--output-dir", str(tmp_path / "lb")]) == 2
    assert capsys.readouterr().err == damaged_line(db, "file is not a database")


def test_a_folder_named_results_sqlite_is_one_line_without_recovery_advice(tmp_path: Path, capsys):
    db = tmp_path / "results" / "results.sqlite"
    db.mkdir(parents=True)
    assert main(["leaderboard", "--suite", "demo", "--results-dir", str(db.parent),
                 "--output-dir", str(tmp_path / "lb")]) == 2
    assert capsys.readouterr().err == (
        f"urgentbench: error: {db}: cannot use the results store (sqlite: unable to open database file)\n"
    )


def test_damage_noticed_only_on_first_read_gives_the_same_line(results: Path, tmp_path: Path, capsys):
    db = results / "results.sqlite"
    _overwrite_page(db, _rootpage(db, "scores"))
    with ResultStore(db) as store:  # the header and schema are intact: opening works
        assert store.systems("mini", "1")[0]["system"] == "noisy"
        with pytest.raises(StoreError) as info:
            store.dump()  # the first read of the scores table
    assert f"{info.value}\n" == damaged_line(db)[len("urgentbench: error: "):]
    assert main(["leaderboard", "--suite", "mini", "--results-dir", str(results),
                 "--output-dir", str(tmp_path / "lb")]) == 2
    assert capsys.readouterr().err == damaged_line(db)


def test_store_check_counts_a_healthy_store(results: Path, capsys):
    assert main(["store", "check", "--results-dir", str(results)]) == 0
    lines = capsys.readouterr().out.splitlines()
    db = results / "results.sqlite"
    assert lines[0] == f"{db}: ok (PRAGMA integrity_check); 4 score rows (0 failed), 1 run, 1 system"
    assert lines[1].split() == ["suite", "version", "system", "config", "metric", "rows", "failed"]
    assert [line.split()[:3] + line.split()[4:] for line in lines[2:]] == [
        ["mini", "1", "noisy", "estoi", "2", "0"],
        ["mini", "1", "noisy", "pesq", "2", "0"],
    ]


def test_store_check_of_a_truncated_store_exits_1_with_the_fix(tmp_path: Path, capsys):
    db = tmp_path / "results" / "results.sqlite"
    _fill(db, 2000)
    os.truncate(db, db.stat().st_size // 2)
    damaged = db.read_bytes()
    assert main(["store", "check", "--results-dir", str(db.parent)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{db}: DAMAGED: sqlite: {MALFORMED}"
    assert lines[1].startswith("readable rows (what `store recover` would copy): scores ")
    readable = int(re.match(r".*: scores ([\d,]+), runs 1, systems 1$", lines[1]).group(1).replace(",", ""))
    assert 1000 < readable < 6000  # about half of the 6,000 rows sit in the half that is left
    assert lines[2] == (f"fix: urgentbench store recover --results-dir {db.parent}  (copies every readable row "
                        f"into a new store; the damaged file is kept)")
    assert db.read_bytes() == damaged  # checking never writes the file


def test_recover_truncated_store_keeps_the_damaged_file_and_every_readable_row(tmp_path: Path, capsys):
    db = tmp_path / "results" / "results.sqlite"
    original = set(_fill(db, 2000))
    os.truncate(db, db.stat().st_size // 2)
    damaged_sha = hashlib.sha256(db.read_bytes()).hexdigest()
    assert main(["store", "recover", "--results-dir", str(db.parent)]) == 0
    lines = capsys.readouterr().out.splitlines()
    kept = [p for p in db.parent.iterdir() if p.name.startswith("results.sqlite.damaged-") and p.name[-4:] not in ("-wal", "-shm")]
    assert len(kept) == 1 and hashlib.sha256(kept[0].read_bytes()).hexdigest() == damaged_sha
    assert lines[1] == f"the damaged file is kept as {kept[0]} (never deleted)"
    with ResultStore(db) as store:
        recovered = store.dump()
        assert store.runs()[0]["command"] == "urgentbench run ..."
        assert store.systems("mini", "1")[0]["display_name"] == "System A"
    assert set(recovered) <= original  # nothing invented, nothing altered
    n = len(recovered)
    assert lines[0].startswith(f"{db}: recovered scores {n:,} rows, runs 1 row, systems 1 row; 0 rows unreadable")
    assert 1000 < n < 6000
    assert main(["store", "check", "--results-dir", str(db.parent)]) == 0


def test_recover_reads_rows_cut_off_by_a_damaged_interior_page(tmp_path: Path, capsys):
    db = tmp_path / "results" / "results.sqlite"
    original = _fill(db, 2000)
    root = _rootpage(db, "scores")
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA page_count").fetchone()[0] > 100  # a tree of several levels
    _overwrite_page(db, root, 0x00)  # the root (interior) page: every leaf is cut off
    assert main(["store", "recover", "--results-dir", str(db.parent)]) == 0
    out = capsys.readouterr().out
    assert f"{db}: recovered scores 6,000 rows, runs 1 row, systems 1 row; 0 rows unreadable; 6,000 of the rows " \
           f"read from pages cut off from their table; 1 of " in out
    with ResultStore(db) as store:
        assert store.dump() == original


def test_recover_a_healthy_store_does_nothing_unless_forced(results: Path, capsys):
    db = results / "results.sqlite"
    before = db.read_bytes()
    with ResultStore(db) as store:
        dump, runs = store.dump(), store.runs()
    assert main(["store", "recover", "--results-dir", str(results)]) == 0
    assert capsys.readouterr().out == (
        f"{db}: not damaged (PRAGMA integrity_check: ok); nothing done (--force rebuilds it anyway)\n"
    )
    assert db.read_bytes() == before and not list(results.glob("results.sqlite.damaged-*"))
    assert main(["store", "recover", "--results-dir", str(results), "--force"]) == 0
    with ResultStore(db) as store:
        assert store.dump() == dump and store.runs() == runs


def test_store_commands_without_a_store(tmp_path: Path, capsys):
    for sub in ("check", "recover"):
        assert main(["store", sub, "--results-dir", str(tmp_path / "nowhere")]) == 2
        assert capsys.readouterr().err == (
            f"urgentbench: error: {tmp_path / 'nowhere' / 'results.sqlite'}: no results store here "
            f"(is --results-dir right?)\n"
        )


_WRITER = """
import os, sys
from urgentbench.store import ResultStore, ScoreKey, ScoreRow
store = ResultStore(sys.argv[1])
n = int(sys.argv[2])
key = ScoreKey("mini", "1", "sys", "cfg", "pesq", "1", "opts")
print("ready", flush=True)
i = 0
while True:
    store.write([ScoreRow(key, f"{os.getpid()}-{i}-{k}", {"pesq": k, "pad": "x" * 3000}, None, 0.0)
                 for k in range(n)], 1)
    i += 1
"""


def test_writers_killed_mid_transaction_never_corrupt_the_store(tmp_path: Path):
    db = tmp_path / "results.sqlite"
    n = 7  # rows per transaction
    rng = random.Random(15)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), str(n)], stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
    assert time.monotonic() - start < 60
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        groups = con.execute(
            "SELECT substr(utt_id, 1, length(utt_id) - 2) AS tx, COUNT(*) FROM scores GROUP BY tx"
        ).fetchall()
        total = con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    assert total > 0 and total % n == 0
    assert {count for _, count in groups} == {n}  # every committed transaction is complete


def test_recover_applies_the_committed_wal_frames_of_a_killed_writer(tmp_path: Path):
    db = tmp_path / "results.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), "5"], stdout=subprocess.PIPE, env=env)
    assert proc.stdout.readline() == b"ready\n"
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    wal = Path(f"{db}-wal")
    assert wal.stat().st_size > 0  # the killed writer's transactions are in the WAL only
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        expected = sorted(con.execute("SELECT utt_id, result_json FROM scores").fetchall())
    from urgentbench.store_maintenance import recover_store

    report = recover_store(db, force=True)
    assert report.recovered["scores"] == len(expected) > 0 and report.kept is not None
    with sqlite3.connect(db) as con:
        assert sorted(con.execute("SELECT utt_id, result_json FROM scores").fetchall()) == expected


# --------------------------------------------------------------------------- defect 7: integer options


@pytest.mark.parametrize(
    ("argv", "option", "expected"),
    [
        (["run", "--system", "noisy", "--suite", "demo", "--jobs", "0"], "--jobs", "a positive integer, got '0'"),
        (["score", "--suite", "demo", "--outputs", "x", "--jobs", "-3"], "--jobs", "a positive integer, got '-3'"),
        (["run", "--system", "noisy", "--suite", "demo", "--limit", "-1"], "--limit", "a positive integer, got '-1'"),
        (["run", "--system", "noisy", "--suite", "demo", "--batch-size", "1.5"], "--batch-size",
         "a positive integer, got '1.5'"),
        (["leaderboard", "--suite", "demo", "--audio-utterances", "-5"], "--audio-utterances",
         "an integer >= 0, got '-5'"),
        (["table", "--suite", "demo", "--digits", "-1"], "--digits", "an integer >= 0, got '-1'"),
        (["simulate", "--suite", "demo", "--output", "x", "--limit", "0"], "--limit", "a positive integer, got '0'"),
        (["data", "score-published", "masksr2-demo", "--jobs", "zero"], "--jobs", "a positive integer, got 'zero'"),
        (["train", "masksr", "--clean", "x", "--steps", "0"], "--steps", "a positive integer, got '0'"),
    ],
)
def test_integer_options_refuse_bad_values_before_anything_runs(argv, option, expected, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--results-dir", str(tmp_path / "r")] if argv[0] not in ("train", "table", "leaderboard")
             else argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].endswith(f"error: argument {option}: expected {expected}")
    assert "islice" not in err and not (tmp_path / "r").exists()


def test_alpha_must_lie_between_0_and_1(capsys):
    with pytest.raises(SystemExit) as info:
        main(["table", "--suite", "demo", "--alpha", "0"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "urgentbench table: error: argument --alpha: expected a number strictly between 0 and 1, got '0'"
    )


def test_library_entry_points_share_the_integer_check(tmp_path: Path, monkeypatch):
    from urgentbench import runner
    from urgentbench.metrics._threads import resolve_threads
    from urgentbench.suites import get_suite
    from urgentbench.validation import require_int

    suite = get_suite("demo")
    metrics = runner.resolve_metrics(["si_sdr"], suite)
    for kwargs, message in (({"jobs": 0}, "jobs must be a positive integer, got 0"),
                            ({"limit": -1}, "limit must be a positive integer, got -1")):
        with pytest.raises(runner.RunError) as info:
            runner.run(
                suite, [runner.system_producer("noisy")], metrics,
                runner.RunOptions(results_dir=tmp_path / "r", progress=False, **kwargs),
            )
        assert str(info.value) == message
    assert not (tmp_path / "r").exists()
    assert require_int(np.int64(3), "x") == 3
    for bad in (True, 2.0, "2", 0):
        with pytest.raises(ValueError) as info:
            require_int(bad, "beam_size")
        assert str(info.value) == f"beam_size must be a positive integer, got {bad!r}"
    monkeypatch.setenv("URGENTBENCH_THREADS", "-2")
    with pytest.raises(ValueError) as info:
        resolve_threads(None)
    assert str(info.value) == "$URGENTBENCH_THREADS must be a positive integer, got '-2'"


# --------------------------------------------------------------------------- defect 4: corrupt model files


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("URGENTBENCH_CACHE", str(folder))
    seed_code_assets(folder)
    return folder


def _corrupt_same_size(path: Path) -> str:
    """Flip bytes in the middle of ``path`` (same size); returns the new sha256."""
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return hashlib.sha256(data).hexdigest()


def _nisqa_problem(cache: Path, digest: str) -> str:
    return (
        f"asset 'nisqa-v2' in {cache / 'assets' / 'nisqa-v2'} is corrupt (nisqa.tar has sha256 {digest}, "
        f"expected {NISQA_SHA256}); fix: urgentbench assets fetch nisqa-v2, or urgentbench assets add "
        f"nisqa-v2 --from FILE"
    )


def test_ls_metrics_reports_a_corrupt_model_file_of_the_right_size(cache: Path, capsys):
    from urgentbench.assets import add

    folder = add("nisqa-v2", nisqa_tar())
    capsys.readouterr()
    assert main(["ls", "metrics"]) == 0
    nisqa = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("nisqa "))
    assert nisqa.split(None, 1)[1] == "available"
    digest = _corrupt_same_size(folder / "nisqa.tar")
    assert main(["ls", "metrics"]) == 0
    lines = capsys.readouterr().out.splitlines()
    nisqa = next(line for line in lines if line.startswith("nisqa "))
    assert nisqa.split(None, 1)[1] == _nisqa_problem(cache, digest)


def test_checksum_cache_is_not_fooled_by_a_restored_mtime(cache: Path):
    from urgentbench.assets import CORRUPT, PRESENT, add, cached_sha256, get_asset

    folder = add("nisqa-v2", nisqa_tar())
    tar = folder / "nisqa.tar"
    assert cached_sha256(tar) == NISQA_SHA256
    record = json.loads((cache / "asset-sha256-cache.json").read_text())[str(tar.resolve())]
    assert record["sha256"] == NISQA_SHA256 and record["stat"][0] == 1_051_663
    assert get_asset("nisqa-v2").status(cached=True).state == PRESENT
    st = tar.stat()
    digest = _corrupt_same_size(tar)
    os.utime(tar, ns=(st.st_atime_ns, st.st_mtime_ns))  # `touch -r`: same size, same mtime
    status = get_asset("nisqa-v2").status(cached=True)
    assert (status.state, status.detail) == (CORRUPT, f"nisqa.tar has sha256 {digest}, expected {NISQA_SHA256}")


def test_unavailable_corrupt_metric_is_refused_before_the_run(cache: Path, mini_env: Path, tmp_path: Path, capsys,
                                                              monkeypatch):
    from urgentbench.assets import add

    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(mini_env / "suites"))
    from urgentbench.suites import SUITES

    SUITES.rescan()
    digest = _corrupt_same_size(add("nisqa-v2", nisqa_tar()) / "nisqa.tar")
    results = tmp_path / "results"
    assert main(["-q", "run", "--system", "noisy", "--suite", "mini", "--metrics", "pesq,nisqa", "--jobs", "1",
                 "--results-dir", str(results)]) == 2
    assert capsys.readouterr().err == (
        f"urgentbench: error: metric 'nisqa' is unavailable: {_nisqa_problem(cache, digest)}\n"
    )
    assert not (results / "results.sqlite").exists()


@pytest.mark.slow  # loads torch and NISQA
@pytest.mark.parametrize("jobs", [1, 2])  # 2: pool workers set their metrics up as they start
def test_metric_setup_failure_is_a_run_level_error_and_repair_computes_it(cache: Path, mini_env: Path,
                                                                         tmp_path: Path, monkeypatch, jobs: int):
    """The asset goes bad after the availability check (another process, a disk): the worker's set-up fails."""
    from urgentbench import runner
    from urgentbench.assets import add
    from urgentbench.suites import SUITES, get_suite

    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(mini_env / "suites"))
    SUITES.rescan()
    suite = get_suite("mini")
    add("nisqa-v2", nisqa_tar())
    metrics = runner.resolve_metrics(["nisqa", "pesq"], suite)  # available now
    digest = _corrupt_same_size(cache / "assets" / "nisqa-v2" / "nisqa.tar")
    results = tmp_path / "results"
    from urgentbench.assets import _VERIFIED

    _VERIFIED.clear()  # this process verified it when resolving: a fresh worker has not
    report = runner.run(
        suite, [runner.system_producer("noisy")], metrics,
        runner.RunOptions(results_dir=results, jobs=jobs, progress=False),
    )
    assert report.setup_failures == {
        "nisqa": f"metric nisqa could not be set up: AssetError: {_nisqa_problem(cache, digest)}"
    }
    assert report.errors == []
    with sqlite3.connect(results / "results.sqlite") as con:
        stored = con.execute("SELECT metric, COUNT(*), COUNT(error) FROM scores GROUP BY metric").fetchall()
    assert stored == [("pesq", 2, 0)]  # nothing at all for nisqa
    add("nisqa-v2", nisqa_tar())  # the repair
    report = runner.run(
        suite, [runner.system_producer("noisy")], metrics,
        runner.RunOptions(results_dir=results, jobs=jobs, progress=False),
    )
    assert report.setup_failures == {} and report.errors == [] and report.rows_written == 2
    with sqlite3.connect(results / "results.sqlite") as con:
        stored = con.execute("SELECT metric, COUNT(*), COUNT(error) FROM scores GROUP BY metric").fetchall()
    assert stored == [("nisqa", 2, 0), ("pesq", 2, 0)]


def test_cli_run_with_a_metric_that_cannot_be_set_up_exits_2_and_stores_nothing_for_it(
    mini_env: Path, tmp_path: Path, capsys, monkeypatch
):
    from urgentbench.metrics import METRICS
    from urgentbench.metrics.base import Metric, Output
    from urgentbench.suites import SUITES

    class ModelPeak(Metric):
        """Peak level scaled by a factor read from a .npy model file (a stand-in for any model metric)."""

        name = "model_peak"
        category = "non-intrusive"
        description = "peak times a factor loaded from a model file"
        outputs = (Output("model_peak", True, "peak times the model's factor"),)
        needs_reference = False

        @classmethod
        def default_options(cls):
            return {"model": str(tmp_path / "model.npy")}

        def setup(self):
            self._factor = float(np.load(self.options["model"]))  # a damaged file fails here

        def compute(self, estimate, reference, sample_rate, *, transcript=None):
            return {"model_peak": float(np.max(np.abs(estimate))) * self._factor}

    (tmp_path / "model.npy").write_bytes(b"\x93NUMPY damaged model file")
    METRICS.register("model_peak", ModelPeak, override=True, origin="test")
    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(mini_env / "suites"))
    SUITES.rescan()
    results = tmp_path / "results"
    capsys.readouterr()
    rc = main(["-q", "run", "--system", "noisy", "--suite", "mini", "--metrics", "pesq,model_peak", "--jobs", "1",
               "--results-dir", str(results)])
    err = capsys.readouterr().err
    assert rc == 2
    setup_lines = [line for line in err.splitlines() if "could not be set up" in line]
    assert len(setup_lines) == 1  # reported once, not per utterance
    assert setup_lines[0].startswith("urgentbench: error: metric model_peak could not be set up: ")
    assert setup_lines[0].endswith("; check it with `urgentbench ls metrics` and `urgentbench assets verify`; "
                                   "nothing was stored for it, rerun after the fix")
    with sqlite3.connect(results / "results.sqlite") as con:
        assert con.execute("SELECT DISTINCT metric FROM scores").fetchall() == [("pesq",)]
    np.save(tmp_path / "model.npy", np.float64(2.0))  # the repair
    assert main(["-q", "run", "--system", "noisy", "--suite", "mini", "--metrics", "pesq,model_peak", "--jobs", "1",
                 "--results-dir", str(results)]) == 0
    with sqlite3.connect(results / "results.sqlite") as con:
        assert con.execute("SELECT metric, COUNT(*), COUNT(error) FROM scores GROUP BY metric").fetchall() == [
            ("model_peak", 2, 0), ("pesq", 2, 0)
        ]


def test_legacy_setup_failure_rows_are_recomputed_not_kept(tmp_path: Path):
    db = tmp_path / "results.sqlite"
    key = ScoreKey("mini", "1", "noisy", "cfg", "nisqa", "1", "opts")
    with ResultStore(db) as store:
        store.write([ScoreRow(key, "u1", None, "metric setup failed: AssetError: asset 'nisqa-v2' is corrupt", 0.0),
                     ScoreRow(key, "u2", None, "NISQA: too short", 0.0),
                     ScoreRow(key, "u3", {"nisqa_mos": 3.1}, None, 0.1)], 1)
        assert store.done(key) == {"u2", "u3"}
        assert [r.utt_id for r in store.rows(key)] == ["u2", "u3"]


# --------------------------------------------------------------------------- defect 7: training


def test_train_without_the_codec_asset_is_one_line_exit_2(cache: Path, tmp_path: Path, capsys):
    (tmp_path / "clean").mkdir()
    rc = main(["train", "masksr2", "--size", "S", "--clean", str(tmp_path / "clean"), "--out", str(tmp_path / "run")])
    assert rc == 2
    assert capsys.readouterr().err == (
        f"urgentbench: error: cannot train masksr2-S: asset 'dac-44khz' is missing (not in "
        f"{cache / 'assets' / 'dac-44khz'}); fix: urgentbench assets fetch dac-44khz, or urgentbench assets add "
        f"dac-44khz --from DIR\n"
    )
    assert not (tmp_path / "run").exists()


def test_random_initialisation_is_named_for_tiny_only():
    from urgentbench.systems.masksr.configs import load_config
    from urgentbench.systems.masksr.train import random_init_metadata

    assert random_init_metadata(load_config("masksr2", "tiny")) == {
        "random_init": True, "random_components": ["codec", "teacher"]
    }
    assert random_init_metadata(load_config("masksr", "tiny")) == {"random_init": True, "random_components": ["codec"]}
    assert random_init_metadata(load_config("masksr2", "S")) == {}


@pytest.mark.slow
def test_tiny_checkpoint_records_random_init_and_the_system_warns(tmp_path: Path, caplog):
    import soundfile as sf
    from conftest import load_speech

    from urgentbench.systems import build_system
    from urgentbench.systems.masksr.checkpoint import read_metadata

    (tmp_path / "clean").mkdir()
    sf.write(tmp_path / "clean" / "a.wav", load_speech("a", 44100), 44100)
    with caplog.at_level("WARNING"):
        assert main(["train", "masksr2", "--size", "tiny", "--clean", str(tmp_path / "clean"), "--steps", "1",
                     "--out", str(tmp_path / "run"), "--device", "cpu"]) == 0
    assert "masksr2-tiny trains against a randomly initialised codec and teacher" in caplog.text
    for path in [tmp_path / "run" / "model.safetensors", *(tmp_path / "run" / "checkpoints").iterdir()]:
        assert read_metadata(path)["extra"] == {"random_init": True, "random_components": ["codec", "teacher"]}
    caplog.clear()
    system = build_system("masksr2-S", checkpoint=str(tmp_path / "run" / "model.safetensors"))
    with caplog.at_level("WARNING"):
        system.setup()
    assert "trained against a randomly initialised codec and teacher (random_init" in caplog.text
    assert system.provenance()["weights"]["random_init"] == ["codec", "teacher"]
