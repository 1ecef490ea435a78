"""The regression gate: compare a system's results with a stored baseline.

``urgentbench check --suite S --system X --baseline FILE`` reads the results of system X
(stored, or computed first with ``--run`` / ``--outputs DIR``), compares every output the
baseline has and exits 1 when one regressed.

Baseline file (JSON, written by ``urgentbench check ... --write-baseline``)::

    {
      "format": "urgentbench-baseline", "format_version": 1,
      "suite": "demo", "suite_version": "1.0", "manifest_sha256": "...",
      "system": "deepfilternet3", "config_hash": "496f12567274",
      "created": "2025-01-01T00:00:00+00:00", "urgentbench": "0.1.0",
      "metric_versions": {"pesq": "1", ...},
      "statistics": {"ci_method": "percentile bootstrap over utterances", "confidence": 0.95, ...},
      "outputs": {
        "pesq": {"metric": "pesq", "value": 1.886, "ci": [1.679, 2.130], "n_valid": 24,
                 "higher_is_better": true},
        ...
      }
    }

A leaderboard JSON (``urgentbench leaderboard --format json``) is accepted as a baseline
too: the row of the system named by ``--system`` is used.

Rules, per output of the baseline:

- ``--max-drop OUT=D``: a regression when the value falls by more than ``D``;
  ``--max-rise OUT=R``: when it rises by more than ``R`` (for lower-is-better outputs
  such as WER). Outputs without a threshold are shown but not gated ...
- ... unless ``--ci``: then every output is gated by the baseline's 95 % bootstrap
  interval (a regression when the value lies outside it on the worse side), and a
  threshold, where given, is required in addition (a minimum effect size).
- A value that is missing now, or fewer valid utterances than in the baseline (new
  failures), is always a regression. An output whose metric version changed is not
  comparable: it is reported and skipped, with a warning.

``--limit K`` gates on the suite's first K utterances only (a quick gate on a large
suite): the values cover exactly those utterances, whatever else is stored, and the
baseline records ``"limit": K``; a baseline is only compared with a check of the same
limit. ``--markdown FILE`` appends the comparison as a Markdown table and verdict to FILE
(for a CI job summary, ``$GITHUB_STEP_SUMMARY``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import urgentbench
from urgentbench.report import stats

logger = logging.getLogger(__name__)

BASELINE_FORMAT = "urgentbench-baseline"
FORMAT_VERSION = 1

OK, IMPROVED, UNCHANGED, NOT_GATED, REGRESSION, MISSING, NOT_COMPARABLE = (
    "ok", "improved", "unchanged", "not gated", "REGRESSION", "MISSING", "not comparable"
)


class BaselineError(ValueError):
    """A baseline file that cannot be used (unreadable, wrong format, other suite)."""


@dataclass
class OutputCheck:
    """The comparison of one output."""

    output: str
    higher_is_better: bool
    baseline: float | None
    baseline_ci: list[float] | None
    current: float | None
    baseline_n: int | None
    current_n: int | None
    limit: str
    status: str
    reason: str = ""

    @property
    def delta(self) -> float | None:
        """Current minus baseline value."""
        if self.current is None or self.baseline is None:
            return None
        return self.current - self.baseline


@dataclass
class CheckReport:
    """Result of a check: one line per output."""

    system: str
    suite: str
    baseline_path: str
    checks: list[OutputCheck] = field(default_factory=list)

    @property
    def regressions(self) -> list[OutputCheck]:
        """Outputs that regressed or went missing."""
        return [c for c in self.checks if c.status in (REGRESSION, MISSING)]

    @property
    def passed(self) -> bool:
        """True when nothing regressed."""
        return not self.regressions


def baseline_from_summary(
    suite: Any,
    summary: Any,
    metrics: list[Any],
    n_resamples: int = stats.N_RESAMPLES,
    seed: int = stats.SEED,
    limit: int | None = None,
) -> dict[str, Any]:
    """A baseline document (see the module docstring) from a system summary.

    ``limit``: the summary covers the suite's first ``limit`` utterances only; recorded as
    ``"limit"`` (absent for the whole suite).
    """
    from urgentbench.report.leaderboard import system_intervals

    cis = system_intervals(summary, metrics, n_resamples, seed)
    outputs = {}
    for metric in metrics:
        for o in metric.cls.outputs:
            outputs[o.name] = {
                "metric": metric.name,
                "value": summary.values.get(o.name),
                "ci": cis.get(o.name),
                "n_valid": summary.n_valid.get(o.name, 0),
                "higher_is_better": o.higher_is_better,
            }
    return {
        "format": BASELINE_FORMAT,
        "format_version": FORMAT_VERSION,
        "suite": suite.name,
        "suite_version": suite.version,
        "manifest_sha256": suite.manifest_sha256,
        "system": summary.display_name,
        "config_hash": summary.config_hash,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "urgentbench": urgentbench.__version__,
        "metric_versions": {m.name: m.cls.version for m in metrics},
        "statistics": stats.describe(n_resamples, seed),
        **({"limit": limit} if limit is not None else {}),
        "outputs": outputs,
    }


def _from_leaderboard(doc: dict[str, Any], system: str, path: Path) -> dict[str, Any]:
    rows = [r for r in doc.get("rows", []) if r.get("system") == system]
    if not rows:
        names = ", ".join(r.get("system", "?") for r in doc.get("rows", []))
        raise BaselineError(f"{path}: leaderboard has no ranked system {system!r} (it has: {names or 'none'})")
    row = rows[0]
    outputs = {}
    for name, value in row.get("values", {}).items():
        outputs[name] = {
            "metric": None,
            "value": value,
            "ci": (row.get("ci") or {}).get(name),
            "n_valid": (row.get("n_valid") or {}).get(name),
            "higher_is_better": doc.get("higher_is_better", {}).get(name, True),
        }
    return {
        "format": BASELINE_FORMAT,
        "format_version": FORMAT_VERSION,
        "suite": doc.get("suite"),
        "suite_version": doc.get("suite_version"),
        "manifest_sha256": doc.get("manifest_sha256"),
        "system": system,
        "config_hash": row.get("config_hash"),
        "metric_versions": doc.get("metric_versions", {}),
        "outputs": outputs,
    }


def load_baseline(path: str | Path, system: str) -> dict[str, Any]:
    """Read a baseline file, or a leaderboard JSON (the row of ``system``).

    Raises:
        BaselineError: When the file is missing, not JSON, or neither format.
    """
    path = Path(path)
    if not path.is_file():
        raise BaselineError(f"{path}: baseline file not found (write one with `urgentbench check ... --write-baseline`)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{path}: not a readable JSON baseline ({exc})") from exc
    if not isinstance(doc, dict):
        raise BaselineError(f"{path}: not a baseline (expected a JSON object)")
    if doc.get("format") == BASELINE_FORMAT:
        if doc.get("format_version") != FORMAT_VERSION:
            raise BaselineError(f"{path}: baseline format version {doc.get('format_version')!r}, this urgentbench reads {FORMAT_VERSION}")
        if not isinstance(doc.get("outputs"), dict):
            raise BaselineError(f"{path}: baseline has no 'outputs' object")
        if doc.get("system") != system:
            logger.warning("%s: baseline was written for system %r, checking %r against it", path, doc.get("system"), system)
        return doc
    if "rows" in doc and "suite" in doc:
        return _from_leaderboard(doc, system, path)
    raise BaselineError(f"{path}: neither an urgentbench baseline (format: {BASELINE_FORMAT}) nor a leaderboard JSON")


def check_suite(baseline: dict[str, Any], suite: Any, path: str | Path, limit: int | None = None) -> None:
    """Refuse a baseline made on another suite, suite version or utterance subset.

    Args:
        baseline: The baseline document.
        suite: The suite checked now.
        path: The baseline file (for messages).
        limit: The check's ``--limit`` (None: the whole suite); it must equal the baseline's.

    Raises:
        BaselineError: On a mismatch of suite name, version, manifest hash or limit.
    """
    made = f"{baseline.get('suite')} v{baseline.get('suite_version')}"
    if baseline.get("suite") != suite.name or str(baseline.get("suite_version")) != str(suite.version):
        raise BaselineError(f"{path}: baseline was made on {made}, not {suite.name} v{suite.version}; write a new baseline")
    sha = baseline.get("manifest_sha256")
    if sha and sha != suite.manifest_sha256:
        raise BaselineError(f"{path}: baseline's manifest sha256 {sha[:12]}… differs from the suite's {suite.manifest_sha256[:12]}…")
    made_limit = baseline.get("limit")
    if made_limit != limit:
        def covers(k: Any) -> str:
            return "the whole suite" if k is None else f"the first {k} utterances (--limit {k})"

        raise BaselineError(
            f"{path}: baseline covers {covers(made_limit)}, this check {covers(limit)}; "
            f"use the baseline's --limit or write a new baseline"
        )


def _parse_limits(limits: dict[str, float] | None, flag: str, known: dict[str, Any]) -> dict[str, float]:
    out = {}
    for name, value in (limits or {}).items():
        if name not in known:
            raise ValueError(f"{flag} names {name!r}, which the baseline does not have; it has: {', '.join(known)}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{flag} {name}={value!r}: expected a number") from None
        if number < 0:
            raise ValueError(f"{flag} {name}={value}: must not be negative")
        out[name] = number
    return out


def compare(
    baseline: dict[str, Any],
    current: dict[str, Any],
    max_drop: dict[str, float] | None = None,
    max_rise: dict[str, float] | None = None,
    use_ci: bool = False,
    baseline_path: str = "",
) -> CheckReport:
    """Compare a current result document with a baseline (both in baseline form).

    Args:
        baseline: The baseline document.
        current: The current results, from :func:`baseline_from_summary`.
        max_drop: Output -> largest allowed decrease.
        max_rise: Output -> largest allowed increase.
        use_ci: Gate every output by the baseline's confidence interval.
        baseline_path: The baseline's file, named in the report.

    Raises:
        ValueError: For a threshold on an output the baseline lacks, or a negative one.
    """
    base_outputs = baseline["outputs"]
    drops = _parse_limits(max_drop, "--max-drop", base_outputs)
    rises = _parse_limits(max_rise, "--max-rise", base_outputs)
    for name in drops:
        if not base_outputs[name].get("higher_is_better", True):
            logger.warning("--max-drop %s: lower is better for %s, so a drop is an improvement", name, name)
    for name in rises:
        if base_outputs[name].get("higher_is_better", True):
            logger.warning("--max-rise %s: higher is better for %s, so a rise is an improvement", name, name)
    report = CheckReport(current.get("system", "?"), current.get("suite", "?"), baseline_path)
    base_versions = baseline.get("metric_versions", {})
    cur_versions = current.get("metric_versions", {})
    for name, base in base_outputs.items():
        cur = current["outputs"].get(name, {})
        hib = bool(base.get("higher_is_better", True))
        metric = cur.get("metric") or base.get("metric")
        limit_parts = []
        if name in drops:
            limit_parts.append(f"drop ≤ {drops[name]:g}")
        if name in rises:
            limit_parts.append(f"rise ≤ {rises[name]:g}")
        if use_ci and base.get("ci"):
            limit_parts.append("within CI")
        check = OutputCheck(
            output=name,
            higher_is_better=hib,
            baseline=base.get("value"),
            baseline_ci=base.get("ci"),
            current=cur.get("value"),
            baseline_n=base.get("n_valid"),
            current_n=cur.get("n_valid"),
            limit=", ".join(limit_parts) or "—",
            status=OK,
        )
        report.checks.append(check)
        if metric and metric in base_versions and metric in cur_versions and str(base_versions[metric]) != str(cur_versions[metric]):
            check.status, check.reason = NOT_COMPARABLE, f"{metric} version {base_versions[metric]} → {cur_versions[metric]}"
            logger.warning("%s: not compared (%s); write a new baseline", name, check.reason)
            continue
        if check.baseline is None:
            check.status, check.reason = NOT_GATED, "no baseline value"
            continue
        if check.current is None:
            check.status, check.reason = MISSING, "no value now"
            continue
        if check.baseline_n is not None and check.current_n is not None and check.current_n < check.baseline_n:
            check.status = REGRESSION
            check.reason = f"valid utterances {check.baseline_n} → {check.current_n} (new failures)"
            continue
        delta = check.current - check.baseline
        worse_by = -delta if hib else delta
        over = []
        if name in drops and -delta > drops[name]:
            over.append(f"dropped by {-delta:.4g} > {drops[name]:g}")
        if name in rises and delta > rises[name]:
            over.append(f"rose by {delta:.4g} > {rises[name]:g}")
        thresholds = name in drops or name in rises
        ci = base.get("ci")
        outside_ci = bool(ci) and (check.current < ci[0] if hib else check.current > ci[1])
        if use_ci and ci:
            regressed = outside_ci and (bool(over) or not thresholds)
            if regressed:
                over.append(f"outside the baseline CI [{ci[0]:.4g}, {ci[1]:.4g}]")
        else:
            regressed = bool(over)
        if regressed:
            check.status, check.reason = REGRESSION, "; ".join(over)
        elif not (thresholds or (use_ci and ci)):
            check.status = NOT_GATED
        elif worse_by < 0:
            check.status = IMPROVED
        elif worse_by == 0:
            check.status = UNCHANGED
        else:
            check.status = OK
    return report


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def format_report(report: CheckReport) -> str:
    """A readable table of what moved, then a one-line verdict."""
    header = ["output", "", "baseline", "95% CI", "current", "delta", "limit", "status"]
    rows = []
    for c in report.checks:
        ci = "—" if not c.baseline_ci else f"[{c.baseline_ci[0]:.4f}, {c.baseline_ci[1]:.4f}]"
        delta = "—" if c.delta is None else f"{c.delta:+.4f}"
        status = c.status + (f": {c.reason}" if c.reason else "")
        rows.append([c.output, "↑" if c.higher_is_better else "↓", _num(c.baseline), ci, _num(c.current), delta, c.limit, status])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for r in [header, *rows]:
        lines.append("  ".join(str(v).ljust(w) for v, w in zip(r[:-1], widths)) + "  " + r[-1])
    lines.insert(1, "-" * len(lines[0]))
    regressions = report.regressions
    if regressions:
        verdict = (
            f"FAIL: {len(regressions)} regression(s) of {report.system} on {report.suite} against "
            f"{report.baseline_path}: {', '.join(c.output for c in regressions)}"
        )
    else:
        verdict = f"PASS: no regression of {report.system} on {report.suite} against {report.baseline_path}"
    return "\n".join(lines + ["", verdict]) + "\n"


def format_markdown(report: CheckReport, suite_version: str | None = None) -> str:
    """The comparison as Markdown (a heading with the verdict, the table, the regressions), e.g. for a CI job summary.

    Names from the baseline or the command line are escaped, so they cannot break the table.
    """
    from urgentbench.report.escape import markdown_escape

    regressions = report.regressions
    suite = report.suite + (f" v{suite_version}" if suite_version else "")
    verdict = "FAIL" if regressions else "PASS"
    lines = [
        f"### urgentbench check: {verdict}",
        "",
        f"{markdown_escape(report.system)} on {markdown_escape(suite)} against {markdown_escape(report.baseline_path)}",
        "",
        "| output | | baseline | 95% CI | current | delta | limit | status |",
        "|---|---|---:|---|---:|---:|---|---|",
    ]
    for c in report.checks:
        ci = "—" if not c.baseline_ci else f"[{c.baseline_ci[0]:.4f}, {c.baseline_ci[1]:.4f}]"
        delta = "—" if c.delta is None else f"{c.delta:+.4f}"
        status = f"**{c.status}**" if c.status in (REGRESSION, MISSING) else c.status
        if c.reason:
            status += f": {markdown_escape(c.reason)}"
        cells = [markdown_escape(c.output), "↑" if c.higher_is_better else "↓", _num(c.baseline), ci,
                 _num(c.current), delta, markdown_escape(c.limit), status]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if regressions:
        lines.append(f"**FAIL**: {len(regressions)} regression(s): "
                     + ", ".join(markdown_escape(c.output) for c in regressions))
    else:
        lines.append("**PASS**: no regression")
    return "\n".join(lines) + "\n\n"


def append_markdown(report: CheckReport, path: str | Path, suite_version: str | None = None) -> Path:
    """Append :func:`format_markdown` to ``path`` (created with its folder when missing), as ``$GITHUB_STEP_SUMMARY`` expects."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(format_markdown(report, suite_version))
    return path


def current_summary(
    store: Any, suite: Any, metrics: list[Any], system: str, config_hash: str | None = None, limit: int | None = None
) -> Any:
    """The stored summary of ``system`` (one configuration) on ``suite`` (its first ``limit`` utterances when given).

    Raises:
        ValueError: When nothing is stored for the system, or several configurations are
            stored and ``config_hash`` does not pick one.
    """
    from urgentbench.report.leaderboard import summarize

    summaries = [
        s for s in summarize(store, suite, metrics, utterances=suite.utterances(limit) if limit else None)
        if system in (s.system, s.display_name) and (config_hash is None or s.config_hash == config_hash)
    ]
    if not summaries:
        raise ValueError(
            f"no stored results of {system!r} on {suite.name} v{suite.version}"
            + (f" with config {config_hash}" if config_hash else "")
            + f"; run `urgentbench run --system {system} --suite {suite.name}` or pass --run"
        )
    if len(summaries) > 1:
        hashes = ", ".join(s.config_hash for s in summaries)
        raise ValueError(f"{system!r} has {len(summaries)} stored configurations ({hashes}); pick one with --config-hash")
    return summaries[0]


def write_baseline(doc: dict[str, Any], path: str | Path) -> Path:
    """Write a baseline document as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
