"""Plug-in registries: discovery, aliases, did-you-mean errors, unavailable plug-ins, entry points."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from urgentbench.registry import Registry, UnknownNameError

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the urgentbench CLI in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "urgentbench.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or ROOT,
        timeout=300,
    )


def test_registry_aliases_and_did_you_mean():
    reg: Registry[int] = Registry("thing")
    reg.register("deepfilternet3", 3, aliases=["dfn3"])
    reg.register("noisy", 0)
    assert reg.get("DFN3") == 3
    assert reg.canonical("dfn3") == "deepfilternet3"
    with pytest.raises(UnknownNameError) as err:
        reg.get("deepfilternet")
    assert "Did you mean 'deepfilternet3'" in str(err.value)
    assert "Known things: deepfilternet3, dfn3, noisy" in str(err.value)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("noisy", 1)


def test_lazy_targets_are_imported_only_when_used():
    reg: Registry[object] = Registry("thing")
    reg.register("join", "os.path:join")
    assert isinstance(reg.entry("join").target, str)
    assert reg.get("join") is os.path.join


def test_builtin_plugins_are_registered():
    from urgentbench.metrics import METRICS
    from urgentbench.suites import SUITES
    from urgentbench.systems import SYSTEMS

    assert {"noisy", "deepfilternet3"} <= set(SYSTEMS.names())
    assert {"pesq", "estoi", "sdr", "si_sdr", "lsd", "mcd", "dnsmos", "spk_sim", "wer"} <= set(METRICS.names())
    assert "demo" in SUITES.names()
    assert METRICS.canonical("cer") == "wer"


@pytest.fixture()
def broken_systems(tmp_path: Path) -> Path:
    folder = tmp_path / "systems" / "needs-missing"
    folder.mkdir(parents=True)
    (folder / "card.yaml").write_text(
        textwrap.dedent(
            """
            name: needs-missing
            description: a system whose package is not installed
            sample_rate: 16000
            entry: system.py:Missing
            packages:
              - module: urgentbench_no_such_package
                install: pip install urgentbench-no-such-package==1.0
            """
        )
    )
    (folder / "system.py").write_text("import urgentbench_no_such_package\n")
    return tmp_path / "systems"


def test_unavailable_system_is_listed_with_its_fix(broken_systems: Path):
    proc = cli("ls", "systems", env={"URGENTBENCH_SYSTEMS_PATH": str(broken_systems)})
    assert proc.returncode == 0, proc.stderr
    assert "needs-missing" in proc.stdout
    assert "fix: pip install urgentbench-no-such-package==1.0" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_using_an_unavailable_system_fails_before_work_with_one_line(broken_systems: Path, tmp_path: Path):
    proc = cli(
        "run", "--system", "needs-missing", "--suite", "demo", "--results-dir", str(tmp_path / "r"),
        env={"URGENTBENCH_SYSTEMS_PATH": str(broken_systems)},
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "needs-missing" in proc.stderr and "pip install urgentbench-no-such-package==1.0" in proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--system", "deepfiltrnet3", "--suite", "demo"], "Did you mean 'deepfilternet3'"),
        (["run", "--system", "noisy", "--suite", "dmeo"], "Did you mean 'demo'"),
        (["run", "--system", "noisy", "--suite", "demo", "--metrics", "pesqq"], "Did you mean 'pesq'"),
    ],
)
def test_unknown_names_fail_before_any_work(args: list[str], message: str, tmp_path: Path):
    proc = cli(*args, "--results-dir", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_entry_point_plugins_are_discovered(tmp_path: Path):
    """A third-party package's metric and system, declared as entry points, are found."""
    site = tmp_path / "site"
    pkg = site / "thirdparty_plugin"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            from urgentbench.metrics.base import Metric, Output
            from urgentbench.systems.base import System, SystemCard

            class Loudness(Metric):
                name = "loudness"
                description = "mean square level"
                category = "non-intrusive"
                needs_reference = False
                outputs = (Output("loudness", True, "mean square"),)

                def compute(self, estimate, reference, sample_rate, *, transcript=None):
                    return {"loudness": float((estimate ** 2).mean())}

            class Halve(System):
                card = SystemCard(name="halve", description="halves the level", sample_rate=16000, entry="")

                def enhance(self, waveform, sample_rate):
                    return waveform * 0.5, sample_rate
            """
        )
    )
    dist = site / "thirdparty_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[urgentbench.metrics]\nloudness = thirdparty_plugin:Loudness\n\n"
        "[urgentbench.systems]\nhalve = thirdparty_plugin:Halve\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    metrics = cli("ls", "metrics", env=env)
    systems = cli("ls", "systems", env=env)
    assert "loudness" in metrics.stdout and "mean square level" in metrics.stdout
    assert "halve" in systems.stdout and "halves the level" in systems.stdout
