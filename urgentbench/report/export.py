"""Export stored results in the formats people compare against (``urgentbench export``).

Formats (:data:`FORMATS`):

- ``urgent``: the files URGENT's ``evaluation_metrics/`` scripts write, one folder per
  system (:mod:`urgentbench.report.urgent_format`).
- ``csv`` and ``parquet``: one row per utterance x system x metric output with the
  provenance of the number; a missing value stays missing, with its reason
  (:mod:`urgentbench.report.long_table`).

Values are the stored rows of the suite's current version under the same metric keys
(metric version, options and checkpoints) the leaderboard reads, and the means are the
leaderboard's (:mod:`urgentbench.report.export_rows`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from urgentbench.pipeline.specs import MetricSpec
from urgentbench.report.export_rows import ExportError, SystemResults, collect, select_systems
from urgentbench.report.long_table import (
    COLUMNS,
    FAILED,
    NO_VALUE,
    NOT_SCORED,
    OK,
    results_frame,
    write_table,
)
from urgentbench.report.urgent_format import (
    EMPTY_WER_LINES_PROTOCOLS,
    OFFICIAL_OUTPUTS,
    OfficialOutput,
    asr_operations,
    edit_operations,
    write_urgent,
)
from urgentbench.store import ResultStore
from urgentbench.suites import Suite

#: ``urgentbench export --format`` values.
FORMATS = ("urgent", "csv", "parquet")


def export(
    store: ResultStore,
    suite: Suite,
    metrics: list[MetricSpec],
    fmt: str,
    output_dir: str | os.PathLike,
    systems: Iterable[str] | None = None,
    protocol: str | None = None,
) -> list[Path]:
    """Write the stored results of ``suite`` in format ``fmt`` under ``output_dir``.

    ``urgent`` writes ``<output_dir>/<system>/score/<group>/...`` (module docstring),
    ``csv`` ``<output_dir>/results.csv`` and ``parquet`` ``<output_dir>/results.parquet``.

    Args:
        store: The results store.
        suite: The suite (its current version's rows).
        metrics: The metrics to export (as the leaderboard resolves them).
        fmt: One of :data:`FORMATS`.
        output_dir: Destination folder (created).
        systems: Only these systems (stored or display names); default all.
        protocol: The protocol the metrics follow (``urgent2025`` changes how utterances
            without a transcript appear in ``WER.scp``).

    Returns:
        The files written.

    Raises:
        ExportError: For an unknown format, nothing stored, an unknown system, or WER rows
            whose edit operations cannot be recovered (``urgent``).
    """
    if fmt not in FORMATS:
        raise ExportError(f"--format: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    results = collect(store, suite, metrics, systems)
    output_dir = Path(output_dir)
    if fmt == "urgent":
        return write_urgent(results, suite, metrics, output_dir, protocol=protocol)
    frame = results_frame(results, suite, metrics, store.runs())
    return [write_table(frame, output_dir / f"results.{fmt}", fmt)]


__all__ = [
    "COLUMNS", "EMPTY_WER_LINES_PROTOCOLS", "FAILED", "FORMATS", "NOT_SCORED", "NO_VALUE", "OFFICIAL_OUTPUTS", "OK",
    "ExportError", "OfficialOutput", "SystemResults", "asr_operations", "collect", "edit_operations", "export",
    "results_frame", "select_systems", "write_table", "write_urgent",
]
