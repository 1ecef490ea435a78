"""benchmarks/vs_official.py: its parsing and comparison helpers on files in the official scripts' format.

No side environment and no official script run here: the fixtures are written exactly as
``calculate_intrusive_se_metrics.py`` (``<METRIC>.scp``, ``f"{uid} {value}"``) and
``calculate_nonintrusive_dnsmos.py`` with ``--nsplits 2`` (``DNSMOS_OVRL.1.scp``, ``.2.scp``) write them.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sqlite3
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "vs_official.py"
_spec = importlib.util.spec_from_file_location("vs_official", _PATH)
vs = importlib.util.module_from_spec(_spec)
sys.modules["vs_official"] = vs
_spec.loader.exec_module(vs)


def _official_fixture(root: Path) -> tuple[Path, Path]:
    intrusive, dnsmos = root / "intrusive", root / "dnsmos"
    intrusive.mkdir()
    dnsmos.mkdir()
    (intrusive / "PESQ.scp").write_text("u1 1.2169568538665771\nu2 nan\n")
    (intrusive / "ESTOI.scp").write_text("u1 0.541249890430502\nu2 0.7227387199536375\n")
    (intrusive / "SDR.scp").write_text("u1 1.6365\nu2 3.8846\n")
    (intrusive / "LSD.scp").write_text("u1 5.143113703524168\nu2 12.546936010285172\n")
    (intrusive / "MCD.scp").write_text("u1 8.714451717959516\nu2 16.437383336530864\n")
    (intrusive / "RESULTS.txt").write_text("PESQ: 1.2170\n")
    (dnsmos / "DNSMOS_OVRL.1.scp").write_text("u1 1.0924787190055407\n")
    (dnsmos / "DNSMOS_OVRL.2.scp").write_text("u2 1.362702435145101\n")
    return intrusive, dnsmos


def test_reads_the_official_output_files_split_dnsmos_included(tmp_path):
    intrusive, dnsmos = _official_fixture(tmp_path)
    values = vs.read_official([intrusive, dnsmos], prefix="noisy/")
    assert set(values) == {"PESQ", "ESTOI", "SDR", "LSD", "MCD", "DNSMOS_OVRL"}
    assert values["ESTOI"] == {"noisy/u1": 0.541249890430502, "noisy/u2": 0.7227387199536375}
    assert values["DNSMOS_OVRL"] == {"noisy/u1": 1.0924787190055407, "noisy/u2": 1.362702435145101}
    assert values["PESQ"]["noisy/u1"] == 1.2169568538665771
    assert math.isnan(values["PESQ"]["noisy/u2"])


def test_split_files_are_read_in_numeric_order_and_duplicates_refused(tmp_path):
    for k in (1, 2, 10):
        (tmp_path / f"DNSMOS_OVRL.{k}.scp").write_text(f"u{k} {k}.5\n")
    (tmp_path / "DNSMOS_OVRL.bak.scp").write_text("junk line here\n")  # not a split file: ignored
    assert [p.name for p in vs.official_files(tmp_path, "DNSMOS_OVRL")] == [
        "DNSMOS_OVRL.1.scp", "DNSMOS_OVRL.2.scp", "DNSMOS_OVRL.10.scp"]
    assert vs.read_official_scores(tmp_path, "DNSMOS_OVRL") == {"u1": 1.5, "u2": 2.5, "u10": 10.5}
    (tmp_path / "DNSMOS_OVRL.3.scp").write_text("u1 3.0\n")
    with pytest.raises(ValueError, match=r"DNSMOS_OVRL.3.scp:1: utterance 'u1' appears twice"):
        vs.read_official_scores(tmp_path, "DNSMOS_OVRL")


def test_malformed_official_lines_name_file_and_line(tmp_path):
    (tmp_path / "MCD.scp").write_text("u1 1.0\nu2\n")
    with pytest.raises(ValueError, match=r"MCD.scp:2: expected '<uid> <value>'"):
        vs.read_official_scores(tmp_path, "MCD")
    (tmp_path / "MCD.scp").write_text("u1 np.float64(1.0)\n")
    with pytest.raises(ValueError, match=r"MCD.scp:1: 'np.float64\(1.0\)' is not a number"):
        vs.read_official_scores(tmp_path, "MCD")
    with pytest.raises(ValueError, match="no LSD.scp"):
        vs.read_official_scores(tmp_path, "LSD")
    # a PESQ function that returned None is written as "None": a missing value
    (tmp_path / "PESQ.scp").write_text("u1 None\n")
    assert math.isnan(vs.read_official_scores(tmp_path, "PESQ")["u1"])


def test_store_rows_map_to_official_names():
    rows = [
        ("noisy", "u1", "pesq", json.dumps({"pesq": 1.2}), ),
        ("noisy", "u1", "dnsmos", json.dumps({"dnsmos_ovrl": 1.09, "dnsmos_sig": 1.2, "dnsmos_bak": 1.1})),
        ("noisy", "u2", "pesq", None),  # stored as a failure with its reason
        ("noisy", "u1", "si_sdr", json.dumps({"si_sdr": 3.0})),  # no official counterpart here
    ]
    values = vs.ours_from_rows(rows, prefix_system=True)
    assert values["PESQ"]["noisy/u1"] == 1.2
    assert math.isnan(values["PESQ"]["noisy/u2"])
    assert values["DNSMOS_OVRL"] == {"noisy/u1": 1.09}
    assert set(values) == {"PESQ", "DNSMOS_OVRL"}


def test_read_ours_reads_a_results_store(tmp_path):
    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        db.execute("CREATE TABLE scores (system TEXT, utt_id TEXT, metric TEXT, result_json TEXT, seconds REAL)")
        db.execute("INSERT INTO scores VALUES ('wiener', 'u1', 'mcd', ?, 0.5)", (json.dumps({"mcd": 8.7145}),))
        db.execute("INSERT INTO scores VALUES ('wiener', 'u1', 'lsd', ?, 0.25)", (json.dumps({"lsd": 5.1}),))
    assert vs.read_ours(tmp_path) == {"MCD": {"u1": 8.7145}, "LSD": {"u1": 5.1}}
    assert vs.read_ours(tmp_path, prefix_system=True)["MCD"] == {"wiener/u1": 8.7145}


def test_comparison_against_the_fixture(tmp_path):
    intrusive, dnsmos = _official_fixture(tmp_path)
    official = vs.read_official([intrusive, dnsmos])
    ours = {
        "PESQ": {"u1": 1.2169568538665771, "u2": math.nan},  # both missing u2: agreement
        "ESTOI": {"u1": 0.541249890430502, "u2": 0.7227387199536375 + 5e-4},  # over 1e-4
        "MCD": {"u1": 8.714451717959516 + 2e-4, "u2": 16.437383336530864 - 4e-4},  # within 1e-3
        "SDR": {"u1": 1.6365 + 0.04, "u2": 3.8846},
        "LSD": {"u1": 5.143113703524168},  # u2 missing on our side
        "DNSMOS_OVRL": {"u1": 1.0924787190055407, "u2": 1.362702435145101},
    }
    diffs = vs.compare_all(official, ours)
    assert diffs["PESQ"].compared == 1 and diffs["PESQ"].missing_both == 1 and diffs["PESQ"].within is True
    assert diffs["ESTOI"].within is False and diffs["ESTOI"].worst == "u2"
    assert diffs["ESTOI"].max_abs == pytest.approx(5e-4, rel=1e-6)
    assert diffs["MCD"].within is True
    assert diffs["MCD"].max_abs == pytest.approx(4e-4, rel=1e-6)
    assert diffs["MCD"].mean_abs == pytest.approx(3e-4, rel=1e-6)
    assert diffs["SDR"].within is None and diffs["SDR"].above_1e3 == 1
    assert diffs["LSD"].only_official == ["u2"] and diffs["LSD"].within is False
    assert diffs["DNSMOS_OVRL"].max_abs == 0.0 and diffs["DNSMOS_OVRL"].within is True
    assert json.loads(json.dumps(diffs["LSD"].to_dict()))["only_official"] == ["u2"]


def test_ratios_of_minima_and_medians():
    fig = vs.ratios([30.0, 32.0, 40.0], [10.0, 8.0, 12.0])
    assert fig["official_min_s"] == 30.0 and fig["urgentbench_min_s"] == 8.0
    assert fig["ratio_min"] == pytest.approx(30.0 / 8.0)
    assert fig["ratio_median"] == pytest.approx(32.0 / 10.0)
