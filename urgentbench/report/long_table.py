"""The ``csv`` and ``parquet`` export formats: one long table of every stored number with its provenance.

One row per utterance x system x metric output (through pandas; parquet needs pyarrow),
for every utterance the metric applies to, with the provenance of the number: suite,
suite version and manifest sha256; system, display name and config hash; metric, metric
version, options hash, output and how it aggregates (``mean``, or ``corpus`` for
WER/CER: total edits over total reference length, whose counts are in ``details``); the
run that wrote the row (id, start, the urgentbench version and git commit, protocol,
package versions, the metric's options and the checkpoint digests recorded for the
metric and the system); the utterance's sample rate and tags (``tag_<name>``). A value
that is missing stays missing (NaN in ``value``, an empty CSV cell), never 0: ``status``
says why (``failed``, with ``failure`` = ``participant`` or ``metric`` and the reason in
``error``; ``not scored``; ``no value`` when the metric returned none for that output).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from urgentbench.pipeline.specs import MetricSpec
from urgentbench.report.export_rows import ExportError, SystemResults
from urgentbench.suites import Suite

#: Leading columns of :func:`results_frame` (``tag_<name>`` columns follow).
COLUMNS = (
    "suite", "suite_version", "manifest_sha256",
    "system", "display_name", "config_hash",
    "utt_id", "sample_rate",
    "metric", "metric_version", "options_hash", "output", "aggregate", "higher_is_better",
    "value", "status", "failure", "error", "seconds", "details",
    "run_id", "run_started", "urgentbench_version", "git_commit", "protocol", "packages",
    "metric_options", "metric_checkpoints", "system_checkpoints",
)
OK, FAILED, NOT_SCORED, NO_VALUE = "ok", "failed", "not scored", "no value"


def results_frame(
    results: list[SystemResults], suite: Suite, metrics: list[MetricSpec], runs: list[dict[str, Any]] | None = None
) -> Any:
    """A pandas DataFrame with one row per utterance x system x metric output (module docstring).

    Args:
        results: From :func:`collect`.
        suite: The suite.
        metrics: The exported metrics.
        runs: The store's run records (:meth:`urgentbench.store.ResultStore.runs`) for the
            provenance columns; without them those columns are empty.
    """
    import pandas as pd

    run_info = {r["run_id"]: r for r in runs or []}
    utterances = suite.utterances()
    tag_names = sorted({k for u in utterances for k in u.tags})
    records = []
    for system in results:
        s = system.summary
        for metric in metrics:
            cls = metric.cls
            rows = system.rows.get(metric.name, {})
            run_ids = system.runs.get(metric.name, {})
            for utt in utterances:
                if not metric.applies_to(utt):
                    continue
                row = rows.get(utt.id)
                run = run_info.get(run_ids.get(utt.id)) if row is not None else None
                provenance = _run_columns(run, s.system, s.config_hash, metric)
                details = None
                if row is not None and row.result is not None:
                    extra = {k: v for k, v in row.result.items() if k not in {o.name for o in cls.outputs}}
                    details = _json(extra) if extra else None
                for output in cls.outputs:
                    value = None if row is None or row.result is None else row.result.get(output.name)
                    if row is None:
                        status = NOT_SCORED
                    elif row.error is not None:
                        status = FAILED
                    elif value is None or (isinstance(value, float) and math.isnan(value)):
                        status = NO_VALUE
                    else:
                        status = OK
                    record = {
                        "suite": suite.name,
                        "suite_version": suite.version,
                        "manifest_sha256": suite.manifest_sha256,
                        "system": s.system,
                        "display_name": s.display_name,
                        "config_hash": s.config_hash,
                        "utt_id": utt.id,
                        "sample_rate": utt.sample_rate,
                        "metric": metric.name,
                        "metric_version": str(cls.version),
                        "options_hash": metric.options_hash,
                        "output": output.name,
                        "aggregate": output.aggregate,
                        "higher_is_better": output.higher_is_better,
                        "value": float("nan") if status != OK else float(value),
                        "status": status,
                        "failure": None if row is None else row.failure,
                        "error": None if row is None else row.error,
                        "seconds": None if row is None else float(row.seconds),
                        "details": details,
                        **provenance,
                    }
                    record.update({f"tag_{k}": utt.tags.get(k) for k in tag_names})
                    records.append(record)
    columns = list(COLUMNS) + [f"tag_{k}" for k in tag_names]
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame["value"] = frame["value"].astype("float64")
    frame["seconds"] = frame["seconds"].astype("float64")
    frame["sample_rate"] = frame["sample_rate"].astype("Int64")
    frame["run_id"] = frame["run_id"].astype("Int64")
    return frame


def _run_columns(run: dict[str, Any] | None, system: str, config_hash: str, metric: MetricSpec) -> dict[str, Any]:
    """Provenance columns from the run that wrote a row (all None without one)."""
    empty = dict.fromkeys(
        ("run_id", "run_started", "urgentbench_version", "git_commit", "protocol", "packages",
         "metric_options", "metric_checkpoints", "system_checkpoints")
    )
    if run is None:
        return empty
    prov = run.get("provenance") or {}
    metric_entry = next(
        (m for m in prov.get("metrics", []) if m.get("name") == metric.name and m.get("options_hash") == metric.options_hash),
        None,
    ) or next((m for m in prov.get("metrics", []) if m.get("name") == metric.name), None)
    system_entry = next(
        (p for p in prov.get("systems", []) if p.get("name") == system and p.get("config_hash") == config_hash), None
    )
    packages = {k: v for k, v in (prov.get("packages") or {}).items() if v is not None}
    protocol = prov.get("protocol")
    system_digests = _digests(system_entry) if system_entry else {}
    return {
        **empty,
        "run_id": run.get("run_id"),
        "run_started": run.get("started"),
        "urgentbench_version": prov.get("urgentbench"),
        "git_commit": prov.get("git_commit"),
        "protocol": protocol.get("name") if isinstance(protocol, dict) else protocol,
        "packages": _json(packages) if packages else None,
        "metric_options": _json(metric_entry["options"]) if metric_entry and "options" in metric_entry else None,
        "metric_checkpoints": _json(metric_entry["models"]) if metric_entry and metric_entry.get("models") else None,
        "system_checkpoints": _json(system_digests) if system_digests else None,
    }


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _digests(obj: Any, path: str = "") -> dict[str, str]:
    """Every sha256 recorded in a provenance entry: dotted key path -> digest."""
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(value, str) and _SHA256.match(value):
                out[sub] = value
            else:
                out.update(_digests(value, sub))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out.update(_digests(value, f"{path}[{i}]"))
    return out


def write_table(frame: Any, path: Path, fmt: str) -> Path:
    """Write the long table as ``csv`` or ``parquet`` (atomically: a temporary file, then a rename).

    Raises:
        ExportError: For parquet without pyarrow (with the install command).
    """
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ExportError(
                "--format parquet needs pyarrow: pip install 'urgentbench[export]' (or pip install pyarrow)"
            ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if fmt == "csv":
            frame.to_csv(tmp, index=False)
        elif fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            raise ExportError(f"unknown table format {fmt!r}; use csv or parquet")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
