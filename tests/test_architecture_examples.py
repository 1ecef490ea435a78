"""ARCHITECTURE.md's worked examples, run as written: a metric, a system, a suite and a corpus.

Each example in the "Adding things" section is a fenced block preceded by a marker comment
``<!-- example:<id> [file=<path>] -->``. A block with a ``file`` is written to that path
under a temporary folder; a ``bash`` block is run there (``set -euo pipefail``) with this
environment's ``urgentbench`` on the PATH. The tests then check what the commands did
against a computation made here, so an example that no longer works fails its test.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

from urgentbench.audio import resample, write_flac
from urgentbench.data import corpus_root
from urgentbench.data.base import CorpusError
from urgentbench.metrics import METRICS
from urgentbench.pipeline.prepare import run_system
from urgentbench.simulation.render import render_utterance
from urgentbench.store import ResultStore
from urgentbench.suites import get_suite
from urgentbench.systems.base import SystemCard

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "ARCHITECTURE.md"
MARKER = re.compile(
    r"<!-- example:(?P<id>[\w-]+)(?: file=(?P<file>\S+))? -->\n```(?P<lang>\w+)\n(?P<body>.*?)\n```\n", re.S
)
#: Every example and the test that runs it.
EXPECTED = {
    "metric": "test_example_metric",
    "metric-entry-point": "test_example_metric",
    "metric-run": "test_example_metric",
    "system-card": "test_example_system",
    "system-code": "test_example_system",
    "system-run": "test_example_system",
    "suite": "test_example_suite",
    "corpus": "test_example_corpus",
}


@dataclass(frozen=True)
class Example:
    """One marked block of ARCHITECTURE.md."""

    id: str
    file: str | None
    lang: str
    body: str

    def write(self, folder: Path) -> Path:
        """Write the block to its ``file`` under ``folder``."""
        assert self.file, f"example {self.id} names no file"
        path = folder / self.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.body + "\n", encoding="utf-8")
        return path


def examples() -> dict[str, Example]:
    """The marked blocks of ARCHITECTURE.md by id."""
    found = [Example(m["id"], m["file"], m["lang"], m["body"]) for m in MARKER.finditer(DOC.read_text(encoding="utf-8"))]
    by_id = {e.id: e for e in found}
    assert len(by_id) == len(found), "two examples share an id"
    return by_id


def run_bash(example: Example, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a ``bash`` example in ``cwd`` with this environment's ``urgentbench`` first on the PATH."""
    assert example.lang == "bash"
    clean = {k: v for k, v in os.environ.items() if k not in ("URGENTBENCH_SYSTEMS_PATH", "URGENTBENCH_SUITES_PATH")}
    full = {
        **clean,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "URGENTBENCH_DATA": str(cwd / "data-home"),
        **(env or {}),
    }
    proc = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + example.body], cwd=cwd, env=full, capture_output=True, text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"example {example.id} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def load_module(path: Path, name: str) -> ModuleType:
    """Import a file written from an example."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stored(results: Path, metric: str) -> dict[tuple[str, str], tuple[dict | None, str | None]]:
    """(system, utterance) -> (result, error) of every stored row of ``metric``."""
    with ResultStore(results / "results.sqlite") as store:
        return {
            (r[2], r[4]): (json.loads(r[8]) if r[8] else None, r[9]) for r in store.dump() if r[5] == metric
        }


def demo_renders(n: int = 2) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """``(id, noisy, reference, rate)`` of the demo suite's first ``n`` utterances, rendered."""
    suite = get_suite("demo")
    out = []
    for utt in itertools.islice(suite.utterances(), n):
        rendered = render_utterance(utt, suite.folder)
        out.append((utt.id, rendered.noisy, rendered.reference, rendered.sample_rate))
    return out


def test_every_example_is_marked_and_run():
    """The "Adding things" section has no unmarked block, and every marked one is run by a test here."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Adding things"):]
    fences = re.findall(r"^```\w*$", section, re.M)
    assert len(fences) == 2 * len(EXPECTED), "a fenced block without its <!-- example:... --> marker"
    assert set(examples()) == set(EXPECTED)
    assert all(name in globals() for name in EXPECTED.values())
    # the rule "no import cycle" names the test that keeps it
    assert "tests/test_import_graph.py::test_no_import_cycle" in text
    assert "def test_no_import_cycle(" in (ROOT / "tests" / "test_import_graph.py").read_text()


def test_example_metric(tmp_path: Path):
    """The metric, installed through its entry point, is listed and computed by `urgentbench run`."""
    ex = examples()
    site = tmp_path / "site"
    module_path = ex["metric"].write(site)
    (module_path.parent / "__init__.py").write_text("")
    # what `pip install` of a package with this pyproject section would record
    entry = ex["metric-entry-point"]
    group = re.search(r'^\[project\.entry-points\."([\w.]+)"\]$', entry.body, re.M)
    targets = re.findall(r'^(\w+) = "([\w.:]+)"$', entry.body, re.M)
    assert group and targets, entry.body
    dist = site / "my_metrics-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-metrics\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{group[1]}]\n" + "".join(f"{k} = {v}\n" for k, v in targets))

    proc = run_bash(ex["metric-run"], tmp_path, {"PYTHONPATH": str(site)})
    assert "plain_snr" in proc.stdout
    rows = stored(tmp_path / "results", "plain_snr")
    plain_snr = load_module(module_path, "example_plain_snr").PlainSNR()
    renders = demo_renders(2)
    assert {utt for _, utt in rows} == {utt for utt, *_ in renders}
    for utt_id, noisy, reference, rate in renders:
        result, error = rows[("noisy", utt_id)]
        assert error is None, error
        # the noisy system's output is its input; the metric works at 16 kHz
        direct = plain_snr.compute(resample(noisy, rate, 16000), resample(reference, rate, 16000), 16000)
        assert result["plain_snr"] == pytest.approx(direct["plain_snr"], rel=1e-12, abs=1e-12)
        assert -50 < direct["plain_snr"] < 50


def test_example_system(tmp_path: Path):
    """The system folder on $URGENTBENCH_SYSTEMS_PATH is listed, and `run` enhances with it."""
    ex = examples()
    card_path = ex["system-card"].write(tmp_path)
    code_path = ex["system-code"].write(tmp_path)
    proc = run_bash(ex["system-run"], tmp_path)
    card = SystemCard.from_yaml(card_path)
    assert "highpass" in proc.stdout and card.description in proc.stdout
    rows = stored(tmp_path / "results", "si_sdr")
    system = load_module(code_path, "example_highpass").HighPass(card=card)
    assert system.args == {"cutoff_hz": 120}
    renders = demo_renders(2)
    for utt_id, noisy, _, rate in renders:
        result, error = rows[("highpass", utt_id)]
        assert error is None and np.isfinite(result["si_sdr"])
        (path,) = (tmp_path / "results" / "enhanced").glob(f"*/highpass-*/{utt_id}.flac")
        enhanced, file_rate = sf.read(path, dtype="float32")
        expected, _ = run_system(system, noisy, rate, utt_id)  # resampled to 16 kHz, filtered, back
        assert file_rate == rate and np.array_equal(enhanced, expected)
        assert not np.array_equal(enhanced, noisy)


def test_example_suite(tmp_path: Path):
    """`suite import` of a folder pair makes a suite that `run` scores and `leaderboard` ranks."""
    renders = demo_renders(2)
    for utt_id, noisy, reference, rate in renders:
        write_flac(tmp_path / "my_set" / "noisy" / f"{utt_id}.flac", noisy, rate)
        write_flac(tmp_path / "my_set" / "clean" / f"{utt_id}.flac", reference, rate)
    run_bash(examples()["suite"], tmp_path)
    assert (tmp_path / "suites" / "my-pairs" / "card.yaml").is_file()
    si_sdr = METRICS.get("si_sdr")()
    rows = stored(tmp_path / "results", "si_sdr")
    pesq = stored(tmp_path / "results", "pesq")
    for utt_id, noisy, reference, rate in renders:
        assert pesq[("noisy", utt_id)][1] is None
        result, error = rows[("noisy", utt_id)]
        assert error is None
        assert result["si_sdr"] == pytest.approx(si_sdr.compute(noisy, reference, rate)["si_sdr"], rel=1e-9)
    board = (tmp_path / "leaderboards" / "my-pairs" / "leaderboard.md").read_text()
    assert "| 1 | noisy |" in board


def test_example_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The corpus verifies a local copy, records it, and lists every bad file at once."""
    monkeypatch.setenv("URGENTBENCH_DATA", str(tmp_path / "data-home"))
    module = load_module(examples()["corpus"].write(tmp_path), "example_my_speech")
    corpus = module.MySpeech()
    copy = tmp_path / "copy"
    copy.mkdir()
    for entry in module.FILES:
        shutil.copy(ROOT / "data_manifests" / "demo" / "clean" / entry.path, copy / entry.path)
    assert corpus.prepare(copy, progress=False) == copy.resolve()
    assert corpus_root("my-speech") == copy.resolve()

    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(copy / "gbf4_01.flac", bad / "gbf4_01.flac")
    data = bytearray((copy / "gbf4_02.flac").read_bytes())
    data[-1] ^= 0xFF
    (bad / "gbf4_02.flac").write_bytes(bytes(data))
    with pytest.raises(CorpusError) as info:
        corpus.prepare(bad, progress=False)
    assert [p.split(":")[0] for p in info.value.problems] == ["gbf4_02.flac"]
    with pytest.raises(CorpusError, match="give a local copy"):
        corpus.prepare(None, progress=False)
    assert corpus_root("my-speech") == copy.resolve()  # a failed prepare records nothing
