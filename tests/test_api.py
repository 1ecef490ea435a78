"""The Python API (issue 18): evaluate, Results, load_results, functional metrics, a callable as a system."""

from __future__ import annotations

import logging
import math
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import soundfile as sf

import urgentbench
from urgentbench.layout import read_cached_inputs
from urgentbench.metrics import METRICS, Metric, MetricError, Output, functional
from urgentbench.pipeline.options import RunOptions
from urgentbench.suites import get_suite

ROOT = Path(__file__).resolve().parents[1]
QUIET = RunOptions(progress=False)
CHEAP = ["pesq", "estoi", "sdr", "si_sdr", "lsd", "mcd"]


def quieter(waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """A module-level (picklable) system: the input at half the gain."""
    return 0.5 * waveform, sample_rate


def rows_in_store(results_dir: Path) -> int:
    with sqlite3.connect(results_dir / "results.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]


@pytest.fixture(scope="module")
def noisy_results(tmp_path_factory: pytest.TempPathFactory) -> urgentbench.Results:
    """``noisy`` on the demo suite's first two utterances with the cheap metrics."""
    results_dir = tmp_path_factory.mktemp("api") / "results"
    return urgentbench.evaluate("noisy", "demo", metrics=CHEAP, limit=2, results_dir=results_dir, options=QUIET)


# ---------------------------------------------------------------------------- import


def test_import_is_light():
    code = (
        "import sys, urgentbench\n"
        "heavy = [m for m in ('torch', 'pandas', 'urgentbench.api', 'urgentbench.runner') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "urgentbench.evaluate, urgentbench.load_results, urgentbench.Results\n"
        "import urgentbench.metrics.functional\n"
        "assert 'torch' not in sys.modules, 'the API imports torch'\n"
        "assert 'evaluate' in dir(urgentbench)\n"
        "try:\n    urgentbench.nothing\nexcept AttributeError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "has no attribute 'nothing'" in out.stdout


# ---------------------------------------------------------------------------- evaluate


def test_done_when_command_in_a_fresh_folder(tmp_path):
    code = "import urgentbench; r = urgentbench.evaluate('noisy', 'demo', metrics=['pesq','estoi'], limit=2); print(r.to_pandas())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "[4 rows x" in out.stdout and "tag_condition" in out.stdout  # 2 utterances x 2 outputs, with tags
    assert (tmp_path / "results" / "results.sqlite").is_file()
    assert rows_in_store(tmp_path / "results") == 4


def test_to_pandas_summary_leaderboard_and_table_agree(noisy_results):
    r = noisy_results
    df = r.to_pandas()
    assert len(df) == 2 * len(CHEAP)  # one row per utterance x system x output
    assert set(df["utt_id"]) == {u.id for u in get_suite("demo").utterances(2)}
    assert set(df["status"]) == {"ok"} and df["value"].notna().all()
    assert {"tag_condition", "error", "failure", "seconds", "config_hash"} <= set(df.columns)
    means = df.groupby("output")["value"].mean()
    summary = r.summary()
    assert list(summary.index) == ["noisy"]
    lb = r.leaderboard()
    assert lb.n_utterances == 2 and [row.system for row in lb.rows] == ["noisy"]
    for output in CHEAP:
        assert summary.loc["noisy", output] == pytest.approx(means[output], abs=1e-12)
        assert lb.rows[0].values[output] == summary.loc["noisy", output]
    table = r.table(["pesq", "si_sdr"], format="latex")
    assert "\\begin{tabular}" in table and f"{summary.loc['noisy', 'pesq']:.3f}" in table
    assert "demo" in repr(r) and "first 2 utterances" in repr(r)


def test_a_folder_of_outputs_is_scored_like_score(noisy_results, tmp_path):
    suite = get_suite("demo")
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    for utt in suite.utterances(2):  # the noisy inputs, as a participant's files
        noisy, _ = read_cached_inputs(utt, noisy_results.results_dir, suite.key)
        sf.write(outputs / f"{utt.id}.flac", noisy, utt.sample_rate, subtype="PCM_16")
    r = urgentbench.evaluate(outputs, "demo", metrics=["pesq", "si_sdr"], limit=2, name="copy",
                             results_dir=tmp_path / "results", options=QUIET)
    assert r.systems[0][0] == "copy"
    theirs = r.summary().loc["copy"]
    ours = noisy_results.summary().loc["noisy"]
    assert theirs["pesq"] == ours["pesq"] and theirs["si_sdr"] == ours["si_sdr"]
    (outputs / "demo_0002.flac").unlink()  # the same validation as `urgentbench score`
    from urgentbench.submission import SubmissionError

    with pytest.raises(SubmissionError, match="demo_0002"):
        urgentbench.evaluate(outputs, "demo", metrics=["pesq"], limit=2, name="copy",
                             results_dir=tmp_path / "results", options=QUIET)


def test_arguments_that_do_not_fit_are_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="needs name="):
        urgentbench.evaluate(quieter, "demo", results_dir=tmp_path, limit=1)
    with pytest.raises(ValueError, match="registered system"):
        urgentbench.evaluate(quieter, "demo", name="noisy", results_dir=tmp_path, limit=1)
    with pytest.raises(ValueError, match="apply to a registered system"):
        urgentbench.evaluate(quieter, "demo", name="q", results_dir=tmp_path, limit=1, gain=2)
    with pytest.raises(ValueError, match="config_hash="):
        urgentbench.evaluate("noisy", "demo", config_hash="x", results_dir=tmp_path, limit=1)
    with pytest.raises(ValueError, match="registered systems: .*noisy"):
        urgentbench.evaluate("no-such-system", "demo", results_dir=tmp_path, limit=1)
    with pytest.raises(ValueError, match="config_hash 'a/b'"):
        urgentbench.evaluate(quieter, "demo", name="q", config_hash="a/b", results_dir=tmp_path, limit=1)
    assert not (tmp_path / "results.sqlite").exists()


# ---------------------------------------------------------------------------- a callable as a system


def test_callable_is_scored_and_resumable(noisy_results, tmp_path):
    results_dir = tmp_path / "results"
    r = urgentbench.evaluate(quieter, "demo", metrics=["si_sdr", "pesq"], limit=2, name="quieter",
                             config_hash="step1", results_dir=results_dir, options=QUIET)
    assert r.report.rows_written == 4 and r.systems == [("quieter", "step1")]
    df = r.to_pandas()
    assert set(df["status"]) == {"ok"} and len(df) == 4
    # SI-SDR ignores the gain: the callable's output of the noisy input scores as the noisy input
    noisy = noisy_results.summary().loc["noisy", "si_sdr"]
    assert r.summary().loc["quieter", "si_sdr"] == pytest.approx(noisy, abs=1e-3)
    stored = rows_in_store(results_dir)
    again = urgentbench.evaluate(quieter, "demo", metrics=["si_sdr", "pesq"], limit=2, name="quieter",
                                 config_hash="step1", results_dir=results_dir, options=QUIET)
    assert again.report.jobs == 0 and again.report.rows_written == 0  # nothing computed twice
    assert rows_in_store(results_dir) == stored
    assert again.to_pandas()["value"].tolist() == df["value"].tolist()
    other = urgentbench.evaluate(quieter, "demo", metrics=["si_sdr"], limit=2, name="quieter",
                                 config_hash="step2", results_dir=results_dir, options=QUIET)
    assert other.report.rows_written == 2  # another configuration is scored apart
    both = urgentbench.load_results(results_dir, suite="demo", systems=["quieter"])
    assert sorted(c for _, c in both.systems) == ["step1", "step2"]
    assert list(both.summary().index) == ["quieter [step1]", "quieter [step2]"]


def test_picklable_callable_runs_in_workers_and_a_lambda_in_process(tmp_path, caplog):
    r = urgentbench.evaluate(quieter, "demo", metrics=["si_sdr"], limit=2, name="quieter", jobs=2,
                             results_dir=tmp_path, options=QUIET)
    assert r.report.workers == 2 and r.report.rows_written == 2
    with caplog.at_level(logging.WARNING, logger="urgentbench.api"):
        r = urgentbench.evaluate(lambda x, sr: (x, sr), "demo", metrics=["si_sdr"], limit=2, name="same",
                                 jobs=2, results_dir=tmp_path, options=QUIET)
    assert r.report.workers == 1 and r.report.rows_written == 2
    assert "running same in this process instead of 2 worker processes: it cannot be pickled" in caplog.text


class FailsOnce:
    """A system that returns ``bad(x, sr)`` on its first call and the input itself afterwards."""

    def __init__(self, bad: Any):
        self.bad, self.calls = bad, 0

    def __call__(self, x: np.ndarray, sr: int) -> Any:
        self.calls += 1
        return self.bad(x, sr) if self.calls == 1 else (x, sr)


def _raise(x: np.ndarray, sr: int) -> Any:
    raise RuntimeError("CUDA out of memory")


def _exit(x: np.ndarray, sr: int) -> Any:
    sys.exit(3)


BAD_OUTPUTS = {
    "raises": (_raise, "raised RuntimeError: CUDA out of memory"),
    "exits": (_exit, "raised SystemExit: 3"),
    "wrong length": (lambda x, sr: (x[:-1000], sr), "returned 117604 samples at the 44100 Hz it declares"),
    "NaN": (lambda x, sr: (np.full_like(x, np.nan), sr), "118604 NaN or Inf samples"),
    "another rate than declared": (lambda x, sr: (x[::2], sr), "the output must be as long as the input, at the rate"),
    "declares another rate": (lambda x, sr: (x, 16000), "returned 118604 samples at the 16000 Hz it declares (7.413 s)"),
    "bad rate": (lambda x, sr: (x, "44.1k"), "the sample rate it returned, '44.1k', is not a positive whole number"),
    "no rate": (lambda x, sr: x, "must return (waveform, sample_rate), got a numpy array of shape (118604,)"),
    "not audio": (lambda x, sr: ("enhanced.wav", sr), "the waveform it returned is a str"),
    "integers": (lambda x, sr: ((x * 32767).astype(np.int16), sr), "expected floating-point samples, got int16"),
    "stereo": (lambda x, sr: (np.stack([x, x]), sr), "expected mono audio"),
}


@pytest.mark.parametrize("case", list(BAD_OUTPUTS))
def test_a_bad_callable_output_is_that_utterance_s_failure(case, tmp_path):
    bad, reason = BAD_OUTPUTS[case]
    r = urgentbench.evaluate(FailsOnce(bad), "demo", metrics=["si_sdr"], limit=2, name="bad",
                             results_dir=tmp_path, options=QUIET)
    df = r.to_pandas().set_index("utt_id")
    first, second = (u.id for u in get_suite("demo").utterances(2))
    assert df.loc[first, "status"] == "failed" and df.loc[first, "failure"] == "participant"
    assert math.isnan(df.loc[first, "value"])
    assert reason in df.loc[first, "error"], df.loc[first, "error"]
    assert df.loc[second, "status"] == "ok"  # the run went on
    assert r.leaderboard().incomplete[0].system == "bad"  # a participant's failure is never a free pass


def test_torch_tensors_are_accepted(noisy_results, tmp_path):
    torch = pytest.importorskip("torch")

    def as_tensor(x: np.ndarray, sr: int) -> tuple[Any, Any]:  # (1, T), with gradient, rate as a tensor
        return torch.from_numpy(x).requires_grad_(True)[None] * 1.0, torch.tensor(sr)

    r = urgentbench.evaluate(as_tensor, "demo", metrics=["si_sdr"], limit=2, name="tensor",
                             results_dir=tmp_path, options=QUIET)
    df = r.to_pandas()
    assert set(df["status"]) == {"ok"}
    assert r.summary().loc["tensor", "si_sdr"] == noisy_results.summary().loc["noisy", "si_sdr"]


def test_a_callable_at_its_own_rate(noisy_results, tmp_path):
    rates = []

    def at_16k(x: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
        rates.append(sr)
        return x, sr

    r = urgentbench.evaluate(at_16k, "demo", metrics=["si_sdr"], limit=2, name="narrow", sample_rate=16000,
                             results_dir=tmp_path, options=QUIET)
    assert rates == [16000, 16000]  # resampled in (44.1 kHz -> 16 kHz) and back
    assert set(r.to_pandas()["status"]) == {"ok"}
    ours, noisy = r.summary().loc["narrow", "si_sdr"], noisy_results.summary().loc["noisy", "si_sdr"]
    assert ours > noisy  # the round trip through 16 kHz removes the noise above 8 kHz
    with pytest.raises(ValueError, match="sample_rate= applies to a callable"):
        urgentbench.evaluate("noisy", "demo", sample_rate=16000, results_dir=tmp_path, limit=1)


def test_a_metric_that_cannot_be_set_up_raises_with_the_results(tmp_path):
    class Broken(Metric):
        name = "broken_setup"
        category = "intrusive"
        outputs: ClassVar = (Output("broken_setup", True, "never computed"),)

        def setup(self) -> None:
            raise OSError("model file is damaged")

    METRICS.register("broken_setup", Broken)
    try:
        with pytest.raises(urgentbench.EvaluationError, match="metric broken_setup could not be set up") as info:
            urgentbench.evaluate("noisy", "demo", metrics=["si_sdr", "broken_setup"], limit=1,
                                 results_dir=tmp_path, options=QUIET)
        df = info.value.results.to_pandas()
        assert df.set_index("output").loc["si_sdr", "status"] == "ok"
        assert df.set_index("output").loc["broken_setup", "status"] == "not scored"
    finally:
        METRICS.unregister("broken_setup")


# ---------------------------------------------------------------------------- load_results


def test_load_results_reads_what_is_stored(noisy_results):
    r = urgentbench.load_results(noisy_results.results_dir)  # the only suite stored: no need to name it
    assert r.systems == noisy_results.systems
    assert sorted(m.name for m in r.metrics) == sorted(CHEAP)  # stored metrics only, not the suite's list
    full = r.to_pandas()
    assert len(full) == 24 * len(CHEAP)  # the whole suite: utterances not scored are rows too
    assert set(full["status"]) == {"ok", "not scored"} and (full["status"] == "ok").sum() == 2 * len(CHEAP)
    assert full.loc[full["status"] == "not scored", "value"].isna().all()
    assert r.leaderboard().incomplete[0].system == "noisy"


def test_load_results_names_what_is_stored(noisy_results, tmp_path):
    with pytest.raises(urgentbench.ResultsError, match="no results store"):
        urgentbench.load_results(tmp_path / "empty", suite="demo")
    with pytest.raises(urgentbench.ResultsError, match=r"nothing stored for suite 'declip-0.1'.*stored suites: demo v1\.0"):
        urgentbench.load_results(noisy_results.results_dir, suite="declip-0.1")
    with pytest.raises(urgentbench.ResultsError, match="nothing stored for system.*'demucs'.*stored systems: noisy"):
        urgentbench.load_results(noisy_results.results_dir, suite="demo", systems=["demucs"])


# ---------------------------------------------------------------------------- functional metrics


def test_functional_metrics_equal_what_a_run_stores(noisy_results):
    suite = get_suite("demo")
    stored = noisy_results.to_pandas().set_index(["utt_id", "output"])["value"]
    for utt in suite.utterances(2):
        noisy, reference = read_cached_inputs(utt, noisy_results.results_dir, suite.key)
        sr = utt.sample_rate
        assert sr != 16000  # PESQ's resampling is part of what is compared
        for name in CHEAP:
            value = getattr(functional, name)(reference, noisy, sr)
            assert value == stored[(utt.id, name)], (utt.id, name)
            assert functional.compute(name, reference, noisy, sr) == {name: value}


def test_functional_dnsmos_equals_what_a_run_stores(tmp_path):
    suite = get_suite("demo")
    r = urgentbench.evaluate("noisy", "demo", metrics=["dnsmos"], limit=1, results_dir=tmp_path, options=QUIET)
    stored = r.to_pandas().set_index("output")["value"]
    utt = suite.utterances(1)[0]
    noisy, _ = read_cached_inputs(utt, tmp_path, suite.key)
    values = functional.dnsmos(None, noisy, utt.sample_rate)
    assert {k: values[k] for k in stored.index} == stored.to_dict()
    assert functional.setup_metric("dnsmos") is functional.setup_metric("dnsmos")  # set up once


def test_functional_failures_and_plug_in_metrics(speech16):
    with pytest.raises(MetricError, match="needs a reference"):
        functional.pesq(None, speech16, 16000)
    with pytest.raises(MetricError, match="not defined at 11025 Hz"):
        functional.compute("mcd", speech16, speech16, 11025)
    with pytest.raises(ValueError, match="silent"):  # a run stores "reference is silent" as a failure
        functional.lsd(np.zeros_like(speech16), speech16, 16000)

    class Peak(Metric):
        name = "peak_ratio"
        category = "intrusive"
        outputs: ClassVar = (Output("peak_ratio", True, "peak of est over peak of ref"),)

        def compute(self, estimate, reference, sample_rate, *, transcript=None):
            return {"peak_ratio": float(np.max(np.abs(estimate)) / np.max(np.abs(reference)))}

    METRICS.register("peak_ratio", Peak)
    try:
        assert functional.peak_ratio(speech16, 0.5 * speech16, 16000) == pytest.approx(0.5)
    finally:
        METRICS.unregister("peak_ratio")
        functional.clear_cache()
    assert not hasattr(functional, "peak_ratio")


# ---------------------------------------------------------------------------- progress and logs (item 5)


def test_run_says_time_per_metric_and_where_the_results_are(tmp_path, capsys, monkeypatch):
    from urgentbench.cli import main

    monkeypatch.chdir(tmp_path)
    args = ["run", "--system", "noisy", "--suite", "demo", "--metrics", "pesq,si_sdr", "--limit", "2", "--jobs", "1"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[-1] == "results: results/results.sqlite · leaderboard: urgentbench leaderboard --suite demo"
    timing = lines[-2]
    assert timing.startswith("time per metric (kernel seconds of this run's rows): pesq ")
    assert "(2 × " in timing and " · si_sdr " in timing
    with sqlite3.connect(tmp_path / "results" / "results.sqlite") as db:  # the seconds are the store's
        pesq = db.execute("SELECT SUM(seconds) FROM scores WHERE metric='pesq'").fetchone()[0]
    assert f"pesq {pesq:.1f} s (2 × {pesq / 2:.2f} s)" in timing
    # one bar for the run, in (system, utterance) pairs, with the ETA
    assert "demo@1.0 (1 system): 100%" in err and "2/2 utt [" in err and "job/s" not in err
    # -q after the sub-command: no bar, no info lines; the summary and the final lines stay
    assert main(args + ["-q", "--results-dir", "elsewhere"]) == 0
    out, err = capsys.readouterr()
    assert "utt [" not in err and "INFO" not in err
    assert out.strip().splitlines()[-1].endswith("--suite demo --results-dir elsewhere")
    assert main(args + ["--quiet"]) == 0
    out, _ = capsys.readouterr()
    assert "time per metric: nothing computed in this run (the results were stored already)" in out


@pytest.mark.parametrize("argv,verbose,quiet", [
    (["run", "--system", "noisy", "--suite", "demo", "-v"], True, False),
    (["-v", "run", "--system", "noisy", "--suite", "demo"], True, False),
    (["score", "--outputs", "x", "--suite", "demo", "--quiet"], False, True),
    (["-q", "leaderboard", "--suite", "demo"], False, True),
    (["data", "ls", "-q"], False, True),
    (["assets", "ls", "--verbose"], True, False),
    (["ls", "metrics"], False, False),
])
def test_quiet_and_verbose_work_before_and_after_the_sub_command(argv, verbose, quiet):
    from urgentbench.cli.command import build_parser

    args = build_parser().parse_args(argv)
    assert (args.verbose, args.quiet) == (verbose, quiet)


def test_one_bar_for_a_metric_at_a_time_run_reaches_the_end(tmp_path, capsys):
    options = RunOptions(metric_at_a_time=True, progress=True)
    r = urgentbench.evaluate(FailsOnce(_raise), "demo", metrics=["si_sdr", "lsd"], limit=2, name="maat",
                             results_dir=tmp_path, options=options)
    err = capsys.readouterr().err
    assert r.report.jobs == 2 * 3  # planned: per utterance, enhancement then one phase per metric
    assert r.report.rows_written == 4  # the failed enhancement is recorded for both metrics at once
    bar = [line for line in err.replace("\r", "\n").splitlines() if "demo@1.0 (1 system)" in line]
    assert bar and "100%" in bar[-1] and "2.0/2 utt" in bar[-1]
    assert "1.0/2 utt" in err  # the failed enhancement finished its pair at once
