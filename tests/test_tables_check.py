"""Paper tables (arrows, bold best, CI, significance marks) and the `urgentbench check` regression gate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from report_helpers import FAST_METRICS, enhanced_dir, make_report_suite, write_degraded

from urgentbench.check import MISSING, NOT_COMPARABLE, NOT_GATED, REGRESSION, compare
from urgentbench.cli import main
from urgentbench.metrics.intrusive import LSD, PESQ
from urgentbench.report.leaderboard import SystemSummary
from urgentbench.report.tables import build_table, latex_escape, to_latex, to_markdown


def _summary(name: str, pesq: list[float], lsd: list[float]) -> SystemSummary:
    s = SystemSummary(name, "h" + name[:3], name, {})
    s.per_utterance = {
        "pesq": {f"u{i}": {"pesq": v} for i, v in enumerate(pesq)},
        "lsd": {f"u{i}": {"lsd": v} for i, v in enumerate(lsd)},
    }
    s.values = {"pesq": float(np.mean(pesq)), "lsd": float(np.mean(lsd))}
    s.expected = {"pesq": len(pesq), "lsd": len(lsd)}
    s.scored = dict(s.expected)
    return s


@pytest.fixture()
def table_inputs():
    rng = np.random.default_rng(0)
    base = rng.uniform(1.5, 2.5, 20)
    summaries = {
        "noisy": _summary("noisy", list(base), list(rng.uniform(3, 4, 20))),
        "good_sys": _summary("good_sys", list(base + 0.8), list(rng.uniform(1, 2, 20))),
        "same-ish": _summary("same-ish", list(base + rng.normal(0, 0.01, 20)), list(rng.uniform(3, 4, 20))),
    }
    suite = SimpleNamespace(name="demo", version="1.0")
    return suite, summaries, [("pesq", PESQ), ("lsd", LSD)]


def test_markdown_table_arrows_bold_best_ci_and_significance(table_inputs):
    suite, summaries, columns = table_inputs
    table = build_table(suite, summaries, columns, show_ci=True, reference="noisy")
    md = to_markdown(table)
    lines = md.splitlines()
    assert lines[0] == "| system | pesq ↑ | lsd ↓ |"
    good = next(line for line in lines if line.startswith("| good\\_sys"))
    cells = [c.strip() for c in good.strip("|").split("|")]
    # good_sys is best on both (higher PESQ, lower LSD), differs significantly from noisy
    assert cells[1].startswith(f"**{summaries['good_sys'].values['pesq']:.3f}** ± ") and cells[1].endswith("†")
    assert cells[2].startswith(f"**{summaries['good_sys'].values['lsd']:.3f}**")
    same = next(line for line in lines if line.startswith("| same-ish"))
    assert "**" not in same.split("|")[2] and "†" not in same.split("|")[2]  # not better on PESQ, not significant
    noisy = next(line for line in lines if line.startswith("| noisy"))
    assert "†" not in noisy  # the reference itself is never marked
    assert "± is half the width of the 95 % percentile-bootstrap interval" in md
    # the ± is half the bootstrap interval's width
    ci = table.cells["good_sys"]["pesq"].ci
    assert cells[1].split("± ")[1].split()[0] == f"{(ci.high - ci.low) / 2:.3f}"


def test_latex_table_escapes_and_marks(table_inputs):
    suite, summaries, columns = table_inputs
    summaries = {"team_<x>&%": summaries["good_sys"], "noisy": summaries["noisy"]}
    tex = to_latex(build_table(suite, summaries, columns, reference="noisy"))
    assert r"pesq $\uparrow$ & lsd $\downarrow$ \\" in tex
    assert r"team\_\textless{}x\textgreater{}\&\%" in tex
    row = next(line for line in tex.splitlines() if line.startswith("team"))
    assert row.count(r"\textbf{") == 2 and row.count(r"$^{\dagger}$") == 2
    assert "\\toprule" in tex and "\\bottomrule" in tex and "\\caption{" in tex
    assert latex_escape("a_b{c}~^\\") == r"a\_b\{c\}\textasciitilde{}\textasciicircum{}\textbackslash{}"
    with pytest.raises(ValueError, match="reference system 'nobody'"):
        build_table(suite, summaries, columns, reference="nobody")


def _doc(values: dict, ci: dict | None = None, n: dict | None = None, versions: dict | None = None) -> dict:
    hib = {"pesq": True, "wer": False}
    return {
        "system": "x", "suite": "demo", "metric_versions": versions or {"pesq": "1", "wer": "2"},
        "outputs": {
            k: {"metric": k, "value": v, "ci": (ci or {}).get(k), "n_valid": (n or {}).get(k, 10), "higher_is_better": hib[k]}
            for k, v in values.items()
        },
    }


def test_compare_thresholds_ci_missing_and_versions():
    base = _doc({"pesq": 2.0, "wer": 0.20}, ci={"pesq": [1.9, 2.1], "wer": [0.15, 0.25]})
    # within thresholds
    report = compare(base, _doc({"pesq": 1.97, "wer": 0.205}), {"pesq": 0.05}, {"wer": 0.01})
    assert report.passed
    # beyond them
    report = compare(base, _doc({"pesq": 1.9, "wer": 0.22}), {"pesq": 0.05}, {"wer": 0.01})
    assert [c.output for c in report.regressions] == ["pesq", "wer"]
    # no thresholds: nothing is gated
    report = compare(base, _doc({"pesq": 1.0, "wer": 0.9}))
    assert report.passed and {c.status for c in report.checks} == {NOT_GATED}
    # --ci gates everything by the baseline interval
    assert compare(base, _doc({"pesq": 1.95, "wer": 0.24}), use_ci=True).passed
    report = compare(base, _doc({"pesq": 1.85, "wer": 0.24}), use_ci=True)
    assert [c.output for c in report.regressions] == ["pesq"]
    # --ci with a threshold: both must be exceeded
    assert compare(base, _doc({"pesq": 1.85, "wer": 0.2}), {"pesq": 0.2}, use_ci=True).passed
    # improvements never fail
    assert compare(base, _doc({"pesq": 3.0, "wer": 0.01}), {"pesq": 0.0}, {"wer": 0.0}, use_ci=True).passed
    # a missing value or new failures are regressions; a new metric version is not comparable
    report = compare(base, _doc({"pesq": 2.0}), {"pesq": 0.1})
    assert report.checks[1].status == MISSING and not report.passed
    report = compare(base, _doc({"pesq": 2.0, "wer": 0.2}, n={"pesq": 9}))
    assert report.checks[0].status == REGRESSION and "new failures" in report.checks[0].reason
    report = compare(base, _doc({"pesq": 1.0, "wer": 0.2}, versions={"pesq": "2", "wer": "2"}), {"pesq": 0.1})
    assert report.checks[0].status == NOT_COMPARABLE and report.passed
    with pytest.raises(ValueError, match="does not have"):
        compare(base, base, {"sdr": 0.1})
    with pytest.raises(ValueError, match="expected a number"):
        compare(base, base, {"pesq": "a lot"})


@pytest.fixture()
def scored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    suites = make_report_suite(tmp_path)
    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(suites))
    from urgentbench.suites import SUITES

    SUITES.rescan()
    results = tmp_path / "results"
    assert main(["-q", "run", "--system", "noisy", "--suite", "rep", "--metrics", FAST_METRICS,
                 "--results-dir", str(results), "--jobs", "1"]) == 0
    yield tmp_path
    monkeypatch.undo()
    SUITES.rescan()


@pytest.mark.slow
def test_check_passes_against_its_own_baseline_and_fails_on_degraded_outputs(scored: Path, capsys):
    results = scored / "results"
    base = scored / "baseline.json"
    common = ["--suite", "rep", "--system", "noisy", "--results-dir", str(results), "--metrics", FAST_METRICS]
    assert main(["-q", "check", *common, "--baseline", str(base), "--write-baseline"]) == 0
    doc = json.loads(base.read_text())
    assert doc["format"] == "urgentbench-baseline" and doc["outputs"]["pesq"]["n_valid"] == 6
    assert doc["outputs"]["pesq"]["ci"][0] <= doc["outputs"]["pesq"]["value"] <= doc["outputs"]["pesq"]["ci"][1]
    capsys.readouterr()

    assert main(["-q", "check", *common, "--baseline", str(base), "--max-drop", "pesq=0.05", "--ci"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "pesq" in out and "unchanged" in out

    # the leaderboard JSON works as a baseline too
    lb_dir = scored / "lb"
    assert main(["-q", "leaderboard", "--suite", "rep", "--results-dir", str(results), "--output-dir", str(lb_dir),
                 "--metrics", FAST_METRICS, "--format", "json"]) == 0
    assert not (lb_dir / "rep" / "leaderboard.md").exists()
    lb_json = lb_dir / "rep" / "leaderboard.json"
    assert main(["-q", "check", *common, "--baseline", str(lb_json), "--ci"]) == 0
    capsys.readouterr()

    # the table command reads the same store
    table = scored / "table.tex"
    assert main(["-q", "table", "--suite", "rep", "--systems", "noisy", "--metrics", "pesq,lsd", "--format", "latex",
                 "--ci", "--results-dir", str(results), "-o", str(table)]) == 0
    tex = table.read_text()
    assert r"pesq $\uparrow$ & lsd $\downarrow$" in tex
    assert f"\\textbf{{{doc['outputs']['pesq']['value']:.3f}}}" in tex

    # the system's own outputs, degraded with noise, scored as the system: a regression
    degraded = write_degraded(enhanced_dir(results, "rep@1", "noisy"), scored / "degraded", snr_db=5.0)
    assert main(["-q", "check", *common, "--baseline", str(base), "--outputs", str(degraded),
                 "--max-drop", "pesq=0.05,estoi=0.02", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "REGRESSION: dropped by" in out
    pesq_line = next(line for line in out.splitlines() if line.startswith("pesq "))
    assert "REGRESSION" in pesq_line
    # beyond the confidence interval too (scoring again computes nothing new)
    assert main(["-q", "check", *common, "--baseline", str(lb_json), "--outputs", str(degraded), "--ci",
                 "--jobs", "1"]) == 1
    # a loose threshold lets it pass
    assert main(["-q", "check", *common, "--baseline", str(base), "--outputs", str(degraded),
                 "--max-drop", "pesq=10", "--jobs", "1"]) == 0
    capsys.readouterr()
    # two configurations of "noisy" are stored now: the gate asks which one
    assert main(["-q", "check", *common, "--baseline", str(base)]) == 2
    assert "--config-hash" in capsys.readouterr().err
    # a baseline of another suite is refused
    other = json.loads(base.read_text())
    other["suite_version"] = "0.9"
    (scored / "other.json").write_text(json.dumps(other))
    assert main(["-q", "check", *common, "--baseline", str(scored / "other.json"), "--config-hash",
                 doc["config_hash"]]) == 2
    assert "write a new baseline" in capsys.readouterr().err


def test_table_columns_resolve_outputs_before_metric_names():
    from urgentbench.metrics.asr import WhisperErrorRate
    from urgentbench.metrics.dnsmos import DNSMOS
    from urgentbench.report.tables import resolve_outputs

    classes = [DNSMOS, PESQ, WhisperErrorRate]
    assert [o for o, _ in resolve_outputs(["wer", "pesq"], classes)] == ["wer", "pesq"]
    assert [o for o, _ in resolve_outputs(["dnsmos", "dnsmos_ovrl"], classes)] == [
        "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"]
    with pytest.raises(ValueError, match="unknown metric or output 'pesqq'"):
        resolve_outputs(["pesqq"], classes)
