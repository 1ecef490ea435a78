"""The CI recipe (docs/ci.md, examples/github-workflow-quality.yml) works as written.

The steps' commands are read from the example workflow and run with bash as GitHub
Actions runs them (``bash -e``, the workflow's ``env``), on the demo suite: the model
step is replaced by a stand-in "model" whose outputs are the noisy inputs themselves (the
baseline system), then the same inputs with white noise added (a regressed model). The
gate must pass (exit 0) for the first and fail (exit 1) for the second, with the
comparison appended to ``$GITHUB_STEP_SUMMARY`` as Markdown.

Only the env values differ from the example: fewer utterances (``LIMIT``) and, in the
fast variant, cheap metrics (DNSMOS and LSD, one output gated each way) instead of
Whisper's WER/CER; the slow variant keeps the example's metrics and tolerances.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from report_helpers import write_degraded

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "github-workflow-quality.yml"
DOC = ROOT / "docs" / "ci.md"
BIN = Path(os.environ.get("VIRTUAL_ENV") or ROOT / ".venv") / "bin"


def _workflow() -> tuple[dict, dict[str, dict]]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    [job] = doc["jobs"].values()
    steps = {s["id"]: s for s in job["steps"] if "id" in s}
    return doc, steps


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A ``run:`` script as GitHub Actions runs it on Linux (``bash -e``)."""
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_workflow_shape():
    doc, steps = _workflow()
    assert {"simulate", "enhance", "write-baseline", "gate"} <= set(steps)
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads the key `on` as True
    assert {"pull_request", "workflow_dispatch"} <= set(on)
    assert "write_baseline" in on["workflow_dispatch"]["inputs"]
    # a baseline is written only when asked for; the gate runs otherwise
    assert "inputs.write_baseline" in steps["write-baseline"]["if"] and "--write-baseline" in steps["write-baseline"]["run"]
    assert "!inputs.write_baseline" in steps["gate"]["if"].replace(" ", "")
    gate = steps["gate"]["run"]
    for flag in ("--max-drop", "--max-rise", '--markdown "$GITHUB_STEP_SUMMARY"', '--limit "$LIMIT"', "--outputs"):
        assert flag in gate
    env = doc["env"]
    assert "dnsmos" in env["METRICS"] and "wer" in env["METRICS"]
    assert "dnsmos_ovrl=" in env["MAX_DROP"] and "wer=" in env["MAX_RISE"] and "cer=" in env["MAX_RISE"]
    # the documentation shows the example itself and the README points to it
    assert "examples/github-workflow-quality.yml" in DOC.read_text()
    assert "docs/ci.md" in (ROOT / "README.md").read_text()


FAST = {"METRICS": "dnsmos,lsd", "MAX_DROP": "dnsmos_ovrl=0.05", "MAX_RISE": "lsd=0.1"}


@pytest.mark.parametrize(
    "overrides",
    [pytest.param(FAST, id="dnsmos-lsd"), pytest.param({}, id="example-metrics", marks=pytest.mark.slow)],
)
def test_example_gate_passes_the_baseline_system_and_fails_a_degraded_one(tmp_path: Path, overrides: dict):
    doc, steps = _workflow()
    summary = tmp_path / "step-summary.md"
    env = {
        **os.environ,
        **{k: str(v) for k, v in doc["env"].items()},
        "LIMIT": "3",
        **overrides,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    work = tmp_path / "repo"
    work.mkdir()

    def step(name: str) -> subprocess.CompletedProcess:
        return _bash(steps[name]["run"], work, env)

    def model(degraded: bool) -> None:
        """Stand-in for the enhance step: the noisy inputs as outputs, or those with white noise added."""
        assert "outputs/" in steps["enhance"]["run"] and "inputs/noisy" in steps["enhance"]["run"]
        shutil.rmtree(work / "outputs", ignore_errors=True)
        if degraded:
            write_degraded(work / "inputs" / "noisy", work / "outputs", snr_db=0.0)
        else:
            shutil.copytree(work / "inputs" / "noisy", work / "outputs")

    done = step("simulate")
    assert done.returncode == 0, done.stderr
    assert len(list((work / "inputs" / "noisy").glob("*.flac"))) == 3

    model(degraded=False)
    done = step("write-baseline")
    assert done.returncode == 0, done.stderr
    baseline = yaml.safe_load((work / env["BASELINE"]).read_text())  # JSON is YAML
    assert baseline["suite"] == "demo" and baseline["system"] == "my-model" and baseline["limit"] == 3
    assert baseline["outputs"]["dnsmos_ovrl"]["n_valid"] == 3

    done = step("gate")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout
    passed = summary.read_text()
    assert passed.startswith("### urgentbench check: PASS") and "| dnsmos\\_ovrl | ↑ |" in passed  # Markdown-escaped

    model(degraded=True)
    done = step("gate")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL" in done.stdout
    text = summary.read_text()
    assert text.startswith(passed)  # appended, as $GITHUB_STEP_SUMMARY is meant to be used
    failed = text[len(passed):]
    assert failed.startswith("### urgentbench check: FAIL")
    row = next(line for line in failed.splitlines() if line.startswith("| dnsmos\\_ovrl |"))
    assert "**REGRESSION**: dropped by" in row
    if overrides:
        row = next(line for line in failed.splitlines() if line.startswith("| lsd |"))
        assert "**REGRESSION**: rose by" in row

    # a baseline of another utterance subset is refused (exit 2), not compared
    env["LIMIT"] = "2"
    done = step("gate")
    assert done.returncode == 2 and "baseline covers the first 3 utterances" in done.stderr


def test_markdown_summary_escapes_names_and_marks_regressions(tmp_path: Path):
    from types import SimpleNamespace

    from urgentbench.check import BaselineError, append_markdown, check_suite, compare

    def doc(value: float, system: str = "x") -> dict:
        return {"system": system, "suite": "demo", "metric_versions": {"pesq": "1"},
                "outputs": {"pesq": {"metric": "pesq", "value": value, "ci": [1.9, 2.1], "n_valid": 10,
                                     "higher_is_better": True}}}

    report = compare(doc(2.0), doc(1.8, "team|<b>x</b>"), {"pesq": 0.05}, baseline_path="base|line.json")
    path = append_markdown(report, tmp_path / "summary" / "out.md", "1.0")
    append_markdown(compare(doc(2.0), doc(2.0), {"pesq": 0.05}, baseline_path="b.json"), path)
    first, second = path.read_text().split("### urgentbench check: ")[1:]
    assert first.startswith("FAIL") and second.startswith("PASS")
    assert "team\\|&lt;b&gt;x&lt;/b&gt; on demo v1.0 against base\\|line.json" in first
    assert "| pesq | ↑ | 2.0000 | [1.9000, 2.1000] | 1.8000 | -0.2000 | drop ≤ 0.05 | **REGRESSION**: dropped by 0.2 &gt; 0.05 |" in first
    assert "**FAIL**: 1 regression(s): pesq" in first and "| unchanged |" in second
    # every table row has the header's 8 cells (names cannot add a column)
    rows = [line for line in first.splitlines() if line.startswith("|")]
    assert {line.replace("\\|", "").count("|") for line in rows} == {9}

    suite = SimpleNamespace(name="demo", version="1.0", manifest_sha256="ab" * 32)
    base = {"suite": "demo", "suite_version": "1.0", "manifest_sha256": "ab" * 32, "limit": 3}
    check_suite(base, suite, "b.json", limit=3)
    with pytest.raises(BaselineError, match=r"baseline covers the first 3 utterances \(--limit 3\), this check the whole suite"):
        check_suite(base, suite, "b.json")
    with pytest.raises(BaselineError, match="baseline covers the whole suite, this check the first 5 utterances"):
        check_suite({**base, "limit": None}, suite, "b.json", limit=5)
