"""ruff (pyflakes, import sorting, bugbear, google-style docstrings; pyproject.toml [tool.ruff.lint]) finds nothing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None,
    reason="ruff is not installed (it is in the test extra: pip install -e '.[test]')",
)


def ruff(*args: str) -> subprocess.CompletedProcess:
    """``ruff check`` with the project's configuration, from the project root."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def test_the_tree_is_clean():
    proc = ruff("urgentbench", "tests", "benchmarks")
    assert proc.returncode == 0, f"ruff found problems (fix them; imports: ruff check --fix FILE):\n{proc.stdout}{proc.stderr}"


def test_the_rules_catch_what_they_are_for(tmp_path: Path):
    """The configuration is in force: a file with one finding of each selected family fails."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        '"""A module."""\n\n'
        "import sys\n"
        "import os\n\n\n"
        "def undocumented(items=[]):\n"
        "    return items, os.sep, sys.argv\n"
    )
    proc = ruff("--config", str(ROOT / "pyproject.toml"), str(bad))
    assert proc.returncode == 1
    found = {line.split(" ")[1] for line in proc.stdout.splitlines() if line.startswith(str(bad))}
    assert {"I001", "B006", "D103"} <= found, proc.stdout
