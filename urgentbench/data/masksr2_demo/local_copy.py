"""A local copy of the demo repository: checked against the inventory, or downloaded file by file.

The inventory pins no sha256, so a file is checked for presence, readability, sample rate,
channel count and duration (within :data:`~urgentbench.data.masksr2_demo.recipe.DURATION_TOLERANCE_S`).
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from urgentbench.data.download import download
from urgentbench.data.masksr2_demo.recipe import (
    CORPUS_NAME,
    DURATION_TOLERANCE_S,
    RAW_BASE_URL,
    InventoryRow,
    load_inventory,
)


def check_file(root: Path, row: InventoryRow) -> str | None:
    """Check one file against its inventory row; None when it is fine, else the problem."""
    path = root / row.path
    if not path.is_file():
        return f"{row.path}: missing"
    try:
        data, sr = sf.read(path, dtype="int16", always_2d=True)
    except Exception as exc:  # libsndfile raises several types for broken files
        lines = str(exc).strip().splitlines()
        return f"{row.path}: unreadable ({type(exc).__name__}{': ' + lines[0] if lines else ''})"
    problems = []
    if sr != row.sample_rate:
        problems.append(f"{sr} Hz, expected {row.sample_rate} Hz")
    if data.shape[1] != row.channels:
        problems.append(f"{data.shape[1]} channel(s), expected {row.channels}")
    duration = data.shape[0] / sr if sr else 0.0
    if abs(duration - row.duration_s) > DURATION_TOLERANCE_S:
        problems.append(f"{duration:.4f} s ({data.shape[0]} frames), expected {row.duration_s} s")
    return f"{row.path}: " + "; ".join(problems) if problems else None


def verify_copy(root: str | os.PathLike, rows: list[InventoryRow] | None = None, progress: bool = False) -> list[str]:
    """Every problem of a copy of the demo repository (empty when it matches the inventory)."""
    root = Path(root)
    rows = load_inventory() if rows is None else rows
    problems = []
    for row in tqdm(rows, disable=not progress, unit="file", desc=f"verify {CORPUS_NAME}"):
        problem = check_file(root, row)
        if problem:
            problems.append(problem)
    return problems


def fetch_file(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` with the project's resuming, retrying downloader.

    The inventory pins no sha256 or size, so the downloader only guarantees a complete
    transfer; the file is then checked like a local copy (rate, channels, duration).

    Raises:
        urgentbench.data.download.DownloadError: When the download fails for good.
    """
    download(url, dest, progress=False)


def download_copy(
    dest: str | os.PathLike,
    rows: list[InventoryRow] | None = None,
    progress: bool = True,
    fetch: Callable[[str, Path], None] | None = None,
) -> list[str]:
    """Fetch every inventory file missing or wrong under ``dest`` from the repository's raw URLs.

    Args:
        dest: The download folder.
        rows: Inventory rows (default: the committed inventory).
        progress: Show a progress bar.
        fetch: Downloads one URL to a path (default :func:`fetch_file`).

    Returns:
        One problem per file that could not be fetched (the others are in place).
    """
    fetch = fetch_file if fetch is None else fetch
    dest = Path(dest)
    rows = load_inventory() if rows is None else rows
    problems = []
    for row in tqdm(rows, disable=not progress, unit="file", desc=f"download {CORPUS_NAME}"):
        target = dest / row.path
        if target.is_file() and check_file(dest, row) is None:
            continue
        url = RAW_BASE_URL + urllib.parse.quote(row.path)
        try:
            fetch(url, target)
        except Exception as exc:  # network errors come in many types; list them all
            problems.append(f"{row.path}: download from {url} failed ({type(exc).__name__}: {exc})")
    return problems
