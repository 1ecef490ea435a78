r"""`urgentbench export`: URGENT's evaluation_metrics files, and the long CSV/Parquet table.

The ``urgent`` format is checked two ways: byte for byte against files written by hand from
the official scripts' format strings (``f"{uid} {value}\n"``, ``f"{metric}: {mean:.4f}\n"``,
``json.dumps`` of ``calculate_wer.py``'s dict, its ``"    {op}: {count}"`` totals), and
against files the official ``calculate_intrusive_se_metrics.py`` writes when it is run on
the same audio (names, order, line format; values within the two implementations' spread).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURES

from urgentbench.manifest import Utterance, write_manifest
from urgentbench.report.export import ExportError, asr_operations, export
from urgentbench.runner import MetricSpec, ProducerSpec, score_key
from urgentbench.store import METRIC, PARTICIPANT, ResultStore, ScoreRow

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL_2025 = ROOT.parent / "shared" / "reference" / "urgent2025_evaluation_metrics" / "evaluation_metrics"

TEXTS = ["Please call Stella.", "Ask her to bring these things.", "Bring fresh snow peas.", "<not-available>"]


def _make_suite(root: Path, name: str = "exp") -> Path:
    folder = root / "suites" / name
    utts = [
        Utterance(
            id=f"{name}_{i:03d}", sample_rate=16000, clean=str(FIXTURES / f"speech_{'ab'[i % 2]}_22k.flac"),
            text=text, speaker="ab"[i % 2], seed=i, degradations=[], tags={"condition": "quiet" if i < 2 else "loud"},
        )
        for i, text in enumerate(TEXTS)
    ]
    sha = write_manifest(folder / "manifest.jsonl", utts)
    card = {"name": name, "version": "1", "description": "export test suite", "sample_rate": 16000,
            "manifest": "manifest.jsonl", "manifest_sha256": sha, "metrics": ["pesq", "estoi"],
            "categories": {"intrusive": ["pesq", "estoi"]}}
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    return folder.parent


@pytest.fixture()
def suite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(_make_suite(tmp_path)))
    from urgentbench.suites import SUITES

    SUITES.rescan()
    yield tmp_path
    monkeypatch.undo()
    SUITES.rescan()


METRICS = [MetricSpec("pesq"), MetricSpec("estoi"), MetricSpec("si_sdr"), MetricSpec("dnsmos"), MetricSpec("wer")]


def _wer_result(hypothesis: str, reference: str) -> dict:
    """A WER row as the metric stores it (its normaliser and edit counts)."""
    from urgentbench.metrics.asr import WhisperErrorRate, error_counts

    metric = WhisperErrorRate()
    counts = error_counts(metric.normalize(reference), metric.normalize(hypothesis))
    return {"wer": counts["wer_edits"] / counts["wer_ref_words"], "cer": counts["cer_edits"] / counts["cer_ref_chars"],
            "hypothesis": hypothesis, **counts}


def _dnsmos(ovrl: float) -> dict:
    return {"dnsmos_ovrl": ovrl, "dnsmos_sig": 3.25, "dnsmos_bak": 3.5, "dnsmos_p808": 3.75}


def _fill_store(results: Path) -> tuple:
    """Rows of two systems written through the store as a run writes them; returns (suite, provenance)."""
    from urgentbench.suites import get_suite

    suite = get_suite("exp")
    ids = [u.id for u in suite.utterances()]
    specs = {m.name: m for m in METRICS}
    provenance = {
        "urgentbench": "0.1.0", "git_commit": "0123abcd",
        "packages": {"numpy": "2.4.6", "pesq": "0.0.4", "torch": None},
        "systems": [{"name": "sys-a", "config_hash": "cfg1", "options": {}, "model_sha256": "a" * 64}],
        "metrics": [
            {"name": m.name, "options_hash": m.options_hash, "options": {"k": 1},
             "models": {"dnsmos-p835": "b" * 64} if m.name == "dnsmos" else {}}
            for m in METRICS
        ],
        "protocol": None,
    }
    rows = {
        "pesq": [{"pesq": 1.5}, "PESQ: No utterances detected", {"pesq": 2.25}, {"pesq": 0.1 + 0.2}],
        "estoi": [{"estoi": 0.5}, {"estoi": 0.625}, {"estoi": 0.75}, {"estoi": 0.125}],
        "si_sdr": [{"si_sdr": 1.0}, {"si_sdr": 2.0}, {"si_sdr": 3.0}, {"si_sdr": 4.0}],
        "dnsmos": [_dnsmos(2.5), _dnsmos(3.5), _dnsmos(3.0), ("silent output (all samples zero)", PARTICIPANT)],
        "wer": [_wer_result("Please call Stella", TEXTS[0]), _wer_result("Ask her to bring the things.", TEXTS[1]),
                ("silent output (all samples zero)", PARTICIPANT),
                "MetricError: reference transcript is <not-available> (skipped, as URGENT's calculate_wer.py does)"],
    }
    with ResultStore(results / "results.sqlite") as store:
        run_id = store.start_run(suite.name, suite.version, "test", provenance)
        for name, config in (("sys-a", "cfg1"), ("team x/1", "cfg2")):
            store.register_system(suite.name, suite.version, name, config, name, {})
        for metric, values in rows.items():
            key = score_key(suite, ProducerSpec("sys-a", "cfg1"), specs[metric])
            out = []
            for utt_id, value in zip(ids, values):
                if isinstance(value, dict):
                    out.append(ScoreRow(key, utt_id, value, None, 0.25))
                else:
                    error, kind = value if isinstance(value, tuple) else (value, METRIC)
                    out.append(ScoreRow(key, utt_id, None, error, 0.25, kind))
            store.write(out, run_id)
        store.write([ScoreRow(score_key(suite, ProducerSpec("team x/1", "cfg2"), specs["pesq"]), ids[0],
                              {"pesq": 2.0}, None, 0.5)], run_id)
    return suite, provenance


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def _wer_line(uid: str, hyp: str, ref: str, ops: tuple[int, int, int, int], chars: bool = False) -> str:
    """One line as calculate_wer.py writes it: f"{uid} {json.dumps(value)}"."""
    value = {"hyp_text": list(hyp) if chars else hyp, "ref_text": list(ref) if chars else ref,
             "delete": ops[0], "insert": ops[1], "replace": ops[2], "equal": ops[3]}
    return f"{uid} {json.dumps(value)}\n"


def _official_fixture(not_available_lines: bool) -> dict[str, str]:
    """What the official scripts write for the rows of ``_fill_store`` (by hand, from their format strings)."""
    na = "exp_003 {}\n" if not_available_lines else ""
    return {
        "sys-a/score/se/PESQ.scp": "exp_000 1.5\nexp_001 nan\nexp_002 2.25\nexp_003 0.30000000000000004\n",
        "sys-a/score/se/ESTOI.scp": "exp_000 0.5\nexp_001 0.625\nexp_002 0.75\nexp_003 0.125\n",
        "sys-a/score/se/RESULTS.txt": "PESQ: 1.3500\nESTOI: 0.5000\n",
        "sys-a/score/dnsmos/DNSMOS_OVRL.scp": "exp_000 2.5\nexp_001 3.5\nexp_002 3.0\nexp_003 nan\n",
        "sys-a/score/dnsmos/RESULTS.txt": "DNSMOS_OVRL: 3.0000\n",
        "sys-a/score/cer/WER.scp": (
            _wer_line("exp_000", "please call stella", "please call stella", (0, 0, 0, 3))
            + _wer_line("exp_001", "ask her to bring the things", "ask her to bring these things", (0, 0, 1, 5))
            + "exp_002 {}\n" + na
        ),
        "sys-a/score/cer/CER.scp": (
            _wer_line("exp_000", "please call stella", "please call stella", (0, 0, 0, 18), chars=True)
            + _wer_line("exp_001", "ask her to bring the things", "ask her to bring these things", (2, 0, 0, 27),
                        chars=True)
            + "exp_002 {}\n" + na
        ),
        "sys-a/score/cer/RESULTS.txt": (
            "WER: 0.1111\n    delete: 0\n    insert: 0\n    replace: 1\n    equal: 8\n"
            "CER: 0.0426\n    delete: 2\n    insert: 0\n    replace: 0\n    equal: 45\n"
        ),
        "team_x_1/score/se/PESQ.scp": "exp_000 2.0\n",
        "team_x_1/score/se/RESULTS.txt": "PESQ: 2.0000\n",
    }


def test_urgent_format_matches_the_official_scripts_files_byte_for_byte(suite_env: Path):
    suite, _ = _fill_store(suite_env / "results")
    with ResultStore(suite_env / "results" / "results.sqlite") as store:
        written = export(store, suite, METRICS, "urgent", suite_env / "out")
        assert _files(suite_env / "out") == _official_fixture(not_available_lines=False)
        assert len(written) == len(_official_fixture(False))
        # URGENT 2025's calculate_wer.py writes {} for a <not-available> reference; 2026's leaves it out
        export(store, suite, METRICS, "urgent", suite_env / "out25", protocol="urgent2025")
        assert _files(suite_env / "out25") == _official_fixture(not_available_lines=True)
        # one system only, by its stored name
        export(store, suite, METRICS, "urgent", suite_env / "one", systems=["team x/1"])
        assert sorted(_files(suite_env / "one")) == ["team_x_1/score/se/PESQ.scp", "team_x_1/score/se/RESULTS.txt"]


def test_the_files_read_back_as_the_official_aggregation_reads_them(suite_env: Path):
    """RESULTS.txt equals what the scripts compute from their own .scp lines (np.nanmean; corpus-level WER)."""
    import numpy as np

    suite, _ = _fill_store(suite_env / "results")
    with ResultStore(suite_env / "results" / "results.sqlite") as store:
        export(store, suite, METRICS, "urgent", suite_env / "out")
    se = suite_env / "out" / "sys-a" / "score" / "se"
    for metric in ("PESQ", "ESTOI"):
        scores = [float(line.split()[1]) for line in (se / f"{metric}.scp").read_text().splitlines()]
        assert f"{metric}: {np.nanmean(scores):.4f}" in (se / "RESULTS.txt").read_text().splitlines()
    cer = suite_env / "out" / "sys-a" / "score" / "cer"
    for metric in ("WER", "CER"):
        dic = dict.fromkeys(("delete", "insert", "replace", "equal"), 0)
        for line in (cer / f"{metric}.scp").read_text().splitlines():
            uid, score = line.strip().split(maxsplit=1)
            score = json.loads(score)
            for k in dic if score else ():
                dic[k] += score[k]
        rate = (dic["replace"] + dic["delete"] + dic["insert"]) / (dic["replace"] + dic["delete"] + dic["equal"])
        assert f"{metric}: {rate:.4f}" in (cer / "RESULTS.txt").read_text().splitlines()


def test_urgent_wer_needs_counts_that_follow_from_the_stored_transcript(suite_env: Path):
    from urgentbench.metrics.asr import WhisperErrorRate
    from urgentbench.suites import get_suite

    utt = get_suite("exp").utterances()[1]
    row = _wer_result("Ask her to bring the things.", TEXTS[1])
    ops = asr_operations(WhisperErrorRate(), utt, row)
    assert {k: ops["wer"][k] for k in ("delete", "insert", "replace", "equal")} == {
        "delete": 0, "insert": 0, "replace": 1, "equal": 5}
    with pytest.raises(ExportError, match=r"exp_001: the stored WER counts \(2 edits, 6 reference units\)"):
        asr_operations(WhisperErrorRate(), utt, {**row, "wer_edits": 2})
    with pytest.raises(ExportError, match="no transcript to align"):
        asr_operations(WhisperErrorRate(), utt, {"wer": 0.5})


def test_unknown_system_or_empty_store_is_one_line_naming_what_is_stored(suite_env: Path):
    from urgentbench.suites import get_suite

    suite = get_suite("exp")
    with ResultStore(suite_env / "empty.sqlite") as store:
        with pytest.raises(ExportError, match="no results stored for exp v1"):
            export(store, suite, METRICS, "csv", suite_env / "out")
    _fill_store(suite_env / "results")
    with ResultStore(suite_env / "results" / "results.sqlite") as store:
        with pytest.raises(ExportError, match=r"nothing stored for 'nobody' .* stored systems: sys-a, team x/1"):
            export(store, suite, METRICS, "urgent", suite_env / "out", systems=["nobody"])
        with pytest.raises(ExportError, match="unknown format 'xlsx'"):
            export(store, suite, METRICS, "xlsx", suite_env / "out")


def test_long_table_keeps_missing_values_missing_with_reason_and_provenance(suite_env: Path):
    import pandas as pd

    suite, provenance = _fill_store(suite_env / "results")
    with ResultStore(suite_env / "results" / "results.sqlite") as store:
        [csv_path] = export(store, suite, METRICS, "csv", suite_env / "out")
        [parquet_path] = export(store, suite, METRICS, "parquet", suite_env / "out")
    frame = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    # one row per utterance x system x output; WER/CER only where a transcript is given (all four here)
    per_system = 4 * (1 + 1 + 1 + 4 + 2)
    assert len(frame) == 2 * per_system
    assert set(frame["system"]) == {"sys-a", "team x/1"}

    def row(system: str, utt: str, output: str) -> pd.Series:
        match = frame[(frame.system == system) & (frame.utt_id == utt) & (frame.output == output)]
        assert len(match) == 1
        return match.iloc[0]

    ok = row("sys-a", "exp_000", "pesq")
    assert ok.value == 1.5 and ok.status == "ok" and pd.isna(ok.failure) and pd.isna(ok.error)
    assert ok.suite == "exp" and str(ok.suite_version) == "1" and ok.manifest_sha256 == suite.manifest_sha256
    assert ok.config_hash == "cfg1" and ok.metric == "pesq" and ok.options_hash == MetricSpec("pesq").options_hash
    assert ok["aggregate"] == "mean" and ok.tag_condition == "quiet" and ok.sample_rate == 16000
    assert json.loads(ok.packages) == {"numpy": "2.4.6", "pesq": "0.0.4"}
    assert ok.urgentbench_version == "0.1.0" and ok.git_commit == "0123abcd" and ok.run_id == 1
    assert json.loads(ok.system_checkpoints) == {"model_sha256": "a" * 64}
    assert json.loads(ok.metric_options) == {"k": 1}
    assert json.loads(row("sys-a", "exp_000", "dnsmos_ovrl").metric_checkpoints) == {"dnsmos-p835": "b" * 64}
    exact = row("sys-a", "exp_003", "pesq")
    assert exact.value == 0.30000000000000004  # full precision survives the CSV
    # a metric's failure and a participant's failure: missing, never 0, with reason and kind
    metric_fail = row("sys-a", "exp_001", "pesq")
    assert math.isnan(metric_fail.value) and metric_fail.status == "failed"
    assert metric_fail.failure == "metric" and metric_fail.error == "PESQ: No utterances detected"
    silent = row("sys-a", "exp_003", "dnsmos_sig")
    assert math.isnan(silent.value) and silent.failure == "participant" and "silent output" in silent.error
    # never scored: missing, status says so, no run
    unscored = row("team x/1", "exp_002", "estoi")
    assert math.isnan(unscored.value) and unscored.status == "not scored" and pd.isna(unscored.run_id)
    assert frame.loc[frame.status != "ok", "value"].isna().all() and frame.loc[frame.status == "ok", "value"].notna().all()
    assert (frame.status != "ok").sum() == 1 + 4 + 2 * 2 + (per_system - 1)  # pesq, dnsmos, wer, all of team x/1 but one
    # corpus-level outputs carry their counts
    wer = row("sys-a", "exp_001", "wer")
    assert wer["aggregate"] == "corpus" and json.loads(wer.details)["wer_ref_words"] == 6
    assert set(frame.columns[:5]) == {"suite", "suite_version", "manifest_sha256", "system", "display_name"}

    parquet = pd.read_parquet(parquet_path)
    assert list(parquet.columns) == list(frame.columns) and len(parquet) == len(frame)
    assert parquet["value"].isna().sum() == frame["value"].isna().sum() > 0
    assert parquet.loc[parquet.value.notna(), "value"].tolist() == frame.loc[frame.value.notna(), "value"].tolist()


@pytest.mark.skipif(not OFFICIAL_2025.is_dir(), reason="the official URGENT scripts are not in ../shared/reference")
def test_urgent_files_match_what_the_official_intrusive_script_writes_on_the_same_audio(suite_env: Path):
    """Run calculate_intrusive_se_metrics.py itself on the files urgentbench scored and compare file by file."""
    import numpy as np
    import soundfile as sf

    from urgentbench.cli import main
    from urgentbench.suites import get_suite

    results = suite_env / "results"
    # a degraded copy of the clean speech as the outside system's outputs
    suite = get_suite("exp")
    outputs = suite_env / "outputs"
    outputs.mkdir()
    rng = np.random.default_rng(0)
    assert main(["-q", "run", "--system", "noisy", "--suite", "exp", "--metrics", "pesq", "--limit", "3",
                 "--results-dir", str(results), "--jobs", "1"]) == 0
    ids = [u.id for u in suite.utterances()[:3]]
    refs = {uid: next(results.glob(f"inputs/*/reference/{uid}.flac")) for uid in ids}
    for uid, path in refs.items():
        x, sr = sf.read(path, dtype="float32")
        sf.write(outputs / f"{uid}.flac", np.clip(x + 0.05 * rng.standard_normal(len(x)), -1, 1), sr, subtype="PCM_16")
    # only these three utterances: the others are unscored and left out of the files
    assert main(["-q", "score", "--suite", "exp", "--outputs", str(outputs), "--name", "degraded",
                 "--metrics", "pesq,estoi,lsd", "--limit", "3", "--results-dir", str(results), "--jobs", "1"]) == 0
    with ResultStore(results / "results.sqlite") as store:
        export(store, suite, [MetricSpec("pesq"), MetricSpec("estoi"), MetricSpec("lsd")], "urgent",
               suite_env / "ours", systems=["degraded"])
    ours = suite_env / "ours" / "degraded" / "score" / "se"

    ref_scp, inf_scp = suite_env / "ref.scp", suite_env / "inf.scp"
    ref_scp.write_text("".join(f"{uid} {refs[uid]}\n" for uid in sorted(ids)))
    inf_scp.write_text("".join(f"{uid} {outputs / uid}.flac\n" for uid in sorted(ids)))
    official = suite_env / "official"
    # SDR is left out (its np.linalg.solve call fails under numpy 2) and MCD (slow); the rest is the script's main
    code = (
        "import sys, types; sys.path.insert(0, sys.argv[1]); import calculate_intrusive_se_metrics as m; "
        "m.METRICS = ('PESQ', 'ESTOI', 'LSD'); "
        "m.main(types.SimpleNamespace(ref_scp=sys.argv[2], inf_scp=sys.argv[3], output_dir=sys.argv[4], nj=1, chunksize=1))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-W", "ignore", "-c", code, str(OFFICIAL_2025), str(ref_scp), str(inf_scp),
                    str(official)], check=True, capture_output=True, env=env, timeout=300)

    assert sorted(p.name for p in official.iterdir()) == sorted(p.name for p in ours.iterdir())
    # PESQ and ESTOI: the same numbers from the same audio, so the same bytes
    for name in ("PESQ.scp", "ESTOI.scp"):
        assert (official / name).read_text() == (ours / name).read_text(), name
    # LSD: the script computes it in float32 (and prints a numpy float32), urgentbench in float64
    theirs, mine = (official / "LSD.scp").read_text().splitlines(), (ours / "LSD.scp").read_text().splitlines()
    assert [line.split(" ")[0] for line in theirs] == [line.split(" ")[0] for line in mine] == sorted(ids)
    for a, b in zip(theirs, mine):
        assert len(a.split(" ")) == len(b.split(" ")) == 2
        assert float(a.split(" ")[1]) == pytest.approx(float(b.split(" ")[1]), rel=1e-5), (a, b)
    assert (official / "RESULTS.txt").read_text() == (ours / "RESULTS.txt").read_text()


def test_export_command(suite_env: Path, capsys: pytest.CaptureFixture):
    from urgentbench.cli import main

    _fill_store(suite_env / "results")
    common = ["export", "--suite", "exp", "--metrics", "pesq,estoi,si_sdr,dnsmos,wer", "--results-dir",
              str(suite_env / "results")]
    assert main([*common, "--format", "urgent", "--output", str(suite_env / "out")]) == 0
    assert _files(suite_env / "out") == _official_fixture(not_available_lines=False)
    assert "wrote 10 files of exp v1 (urgent)" in capsys.readouterr().out
    assert main([*common, "--format", "parquet", "--systems", "sys-a", "--output", str(suite_env / "pq")]) == 0
    import pandas as pd

    assert set(pd.read_parquet(suite_env / "pq" / "results.parquet")["system"]) == {"sys-a"}
    capsys.readouterr()
    assert main([*common, "--format", "csv", "--systems", "nobody", "--output", str(suite_env / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("urgentbench: error: --systems: nothing stored for 'nobody'") and err.count("\n") == 1
    assert main(["export", "--suite", "exp", "--format", "csv", "--results-dir", str(suite_env / "none")]) == 2
    assert "no results yet" in capsys.readouterr().err
