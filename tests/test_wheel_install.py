"""The wheel and sdist build, and the wheel alone runs the demo suite in a fresh virtual environment.

``python -m build`` makes both; the wheel is installed into a new venv (no system
site-packages) with pip and the project's constraints, the way a user would (pip reuses
its cache of downloaded and built wheels). From outside the checkout, ``urgentbench ls``
and a two-utterance ``run`` must work with nothing but what the wheel carries: the system
cards, the suite cards, the demo suite's manifest and clean audio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(cmd, cwd, timeout, env=None):
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], ROOT, 900)
    (wheel,) = out.glob("urgentbench-*.whl")
    (sdist,) = out.glob("urgentbench-*.tar.gz")
    return wheel, sdist


def test_the_wheel_and_sdist_carry_cards_manifests_and_demo_audio(dist):
    wheel, sdist = dist
    names = set(zipfile.ZipFile(wheel).namelist())
    demo = json.loads("[" + ",".join(
        line for line in (ROOT / "data_manifests" / "demo" / "manifest.jsonl").read_text().splitlines() if line
    ) + "]")
    assert {f"urgentbench/suites_data/demo/clean/{Path(u['clean']).name}" for u in demo} <= names
    assert {"urgentbench/suites_data/demo/card.yaml", "urgentbench/suites_data/demo/manifest.jsonl"} <= names
    cards = {f"urgentbench/systems/cards/{p.name}" for p in (ROOT / "urgentbench" / "systems" / "cards").glob("*.yaml")}
    assert cards and cards <= names
    suite_cards = {p.relative_to(ROOT / "data_manifests").as_posix() for p in (ROOT / "data_manifests").rglob("card.yaml")}
    assert {f"urgentbench/suites_data/{c}" for c in suite_cards} <= names
    assert not any("results/" in n or n.endswith(".pyc") for n in names)
    with tarfile.open(sdist) as tf:
        members = tf.getnames()
    assert any(m.endswith("suites_data/demo/manifest.jsonl") for m in members)
    size_mib = wheel.stat().st_size / 2**20
    print(f"wheel {wheel.name}: {size_mib:.2f} MiB; sdist {sdist.stat().st_size / 2**20:.2f} MiB")
    assert size_mib < 10


def test_the_wheel_runs_the_demo_suite_in_a_fresh_venv(dist, tmp_path):
    wheel, _ = dist
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, 300)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["URGENTBENCH_CACHE"] = str(tmp_path / "cache")  # no asset of this machine's cache
    started = time.monotonic()
    _run([str(bin_dir / "pip"), "install", "-c", str(ROOT / "constraints.txt"), str(wheel)], tmp_path, 1800, env)
    print(f"fresh-venv install of the core from the wheel: {time.monotonic() - started:.0f} s")
    freeze = _run([str(bin_dir / "pip"), "freeze"], tmp_path, 120, env).stdout.lower()
    assert "torch==" not in freeze  # the core needs no torch
    work = tmp_path / "work"  # outside the checkout: only the installed package is found
    work.mkdir()
    listing = _run([str(bin_dir / "urgentbench"), "ls", "suites"], work, 300, env).stdout
    assert "demo" in listing and "v1.0, 44100 Hz" in listing
    systems = _run([str(bin_dir / "urgentbench"), "ls", "systems"], work, 300, env).stdout
    assert "noisy" in systems and "deepfilternet3" in systems
    results = tmp_path / "results"
    run = _run(
        [str(bin_dir / "urgentbench"), "run", "--system", "noisy", "--suite", "demo", "--metrics", "pesq,estoi",
         "--limit", "2", "--results-dir", str(results)],
        work, 900, env,
    )
    assert "2 utterance jobs, 4 rows written" in run.stderr + run.stdout
    doctor = _run([str(bin_dir / "urgentbench"), "doctor"], work, 300, env).stdout
    assert "torch\n    install: pip install torch==2.13.0" in doctor
    check = _run(
        [str(bin_dir / "python"), "-c",
         "import urgentbench, sys; from pathlib import Path; p = Path(urgentbench.__file__).resolve(); "
         "print(p); sys.exit(0 if 'site-packages' in str(p) else 1)"],
        work, 120, env,
    )
    assert str(ROOT) not in check.stdout
