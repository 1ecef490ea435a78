"""Leaderboard renderers: Markdown, CSV and JSON of a :class:`~urgentbench.report.schema.Leaderboard`.

The HTML page is :mod:`urgentbench.report.html`; paper tables are :mod:`urgentbench.report.tables`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from urgentbench.report.escape import markdown_escape
from urgentbench.report.schema import NOT_RANKED, Leaderboard
from urgentbench.report.summary import WORST

#: The formats :func:`write_leaderboard` writes (``leaderboard.<format>``).
FORMATS = ("md", "csv", "json")


def fmt_value(value: float | None, digits: int = 3) -> str:
    """A value with ``digits`` decimals, or ``—`` when missing."""
    return "—" if value is None else f"{value:.{digits}f}"


def fmt_rank(rank: float | None) -> str:
    """`` (2)`` or `` (1.5)`` after a value; empty without a rank."""
    if rank is None:
        return ""
    return f" ({int(rank)})" if float(rank).is_integer() else f" ({rank:.1f})"


def provenance_notes(lb: Leaderboard, code: str = "`", strong: str = "**") -> list[str]:
    """Protocol, checkpoints, absent protocol metrics and mixed package versions, one note each.

    ``code`` and ``strong`` wrap names and warnings (Markdown by default; HTML callers pass
    empty strings and escape the text themselves).
    """
    notes = []
    if lb.protocol:
        notes.append(f"Protocol: {code}{lb.protocol}{code} ({code}urgentbench protocols show {lb.protocol}{code}).")
        if lb.not_computed:
            notes.append(
                "Ranked by the protocol but without values here (left out of the categories): "
                + ", ".join(lb.not_computed) + "."
            )
    models = [
        f"{metric}: {name} {code}{digest[:16]}…{code}" if digest else f"{metric}: {name} (no digest)"
        for metric, files in lb.metric_models.items()
        for name, digest in files.items()
    ]
    if models:
        notes.append("Model checkpoints (sha256): " + "; ".join(models) + ".")
    if lb.mixed_packages:
        notes.append(
            f"{strong}Mixed package versions{strong}: these values were computed with "
            + "; ".join(f"{name} {', '.join(v)}" for name, v in lb.mixed_packages.items())
            + " (rescore with one environment to compare like with like)."
        )
    return notes


def failure_lines(lb: Leaderboard) -> list[tuple[str, str, int, str]]:
    """``(system, metric, count, example)`` of every metric failure on a ranked system's valid outputs."""
    return [
        (row.system, metric, n, row.failure_examples.get(metric, ""))
        for row in lb.rows for metric, n in row.failures.items() if n
    ]


def to_markdown(lb: Leaderboard) -> str:
    """The leaderboard as a Markdown table: ``value (rank)`` cells, grouped by category."""
    cols = lb.columns()
    header = ["#", "system"] + [f"{h}<br>*{g}*" for g, _, h in cols] + [f"{c}<br>*score*" for c in lb.categories] + ["overall ↓"]
    lines = [
        f"# Leaderboard: {lb.suite} v{lb.suite_version}",
        "",
        f"{lb.n_utterances} utterances · manifest sha256 `{lb.manifest_sha256[:16]}…` · "
        f"ties: {lb.tie_method} · urgentbench {lb.urgentbench}",
        "",
        *[line for note in provenance_notes(lb) for line in (note, "")],
        "Cells show `system mean (rank)`; a category score is the mean of its metrics' ranks and "
        "the overall score the mean of the category scores (lower is better).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * len(header)) + "|",
    ]
    esc = markdown_escape
    for i, row in enumerate(lb.rows, 1):
        cells = [str(i), esc(row.system)]
        for group, output, _ in cols:
            rank = row.ranks.get(output) if group != NOT_RANKED else None
            cells.append(fmt_value(row.values.get(output)) + fmt_rank(rank))
        cells += [fmt_value(row.categories.get(c), 2) for c in lb.categories]
        cells.append(f"**{fmt_value(row.overall, 3)}**")
        lines.append("| " + " | ".join(cells) + " |")
    failures = [f"- {esc(s)}: {esc(m)} failed on {n} utterance(s), e.g. {esc(e)}" for s, m, n, e in failure_lines(lb)]
    if failures:
        lines += ["", "Missing values (failures are excluded from means, never counted as 0):", *failures]
    if lb.missing_policy == WORST:
        lines += [
            "",
            "Missing outputs (`--missing worst`): a value a system lacks by its own failure (output missing, "
            "unusable or silent) or never scored takes the worst value of the other systems on that utterance.",
        ]
        for row in lb.rows:
            filled = row.filled or {}
            if filled or row.participant_failures:
                lines.append(
                    f"- {esc(row.system)}: "
                    + (", ".join(f"{esc(m)} {n}" for m, n in filled.items()) or "no")
                    + " value(s) filled"
                    + "".join(f"; {esc(m)}: {esc(e)}" for m, e in list((row.participant_examples or {}).items())[:1])
                )
    if lb.incomplete:
        lines += ["", "Not ranked (incomplete): " + ", ".join(esc(r.system) for r in lb.incomplete)]
        lines += [f"- {esc(r.system)}: {esc(r.reason)}" for r in lb.incomplete if r.reason]
        lines += [f"- {esc(r.system)}: {esc(reason)}" for r in lb.incomplete for reason in r.stale.values()]
    return "\n".join(lines) + "\n"


def csv_text(text: str) -> str:
    """A text cell that a spreadsheet will not run as a formula (a leading ``'`` before ``= + - @``)."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(lb: Leaderboard) -> str:
    """One row per system: values, ranks, category scores, overall."""
    cols = lb.columns()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["position", "system", "config_hash"]
    for group, o, _ in cols:
        header.append(o)
        if group != NOT_RANKED:
            header.append(f"{o}_rank")
    header += [f"score_{c}" for c in lb.categories] + ["overall"]
    writer.writerow(header)
    for i, row in enumerate(lb.rows, 1):
        line: list[Any] = [i, csv_text(row.system), csv_text(row.config_hash)]
        for group, o, _ in cols:
            v = row.values.get(o)
            line.append("" if v is None else f"{v:.6g}")
            if group != NOT_RANKED:
                line.append(row.ranks.get(o, ""))
        line += [f"{row.categories[c]:.4f}" if c in row.categories else "" for c in lb.categories]
        line.append("" if row.overall is None else f"{row.overall:.4f}")
        writer.writerow(line)
    return buf.getvalue()


def to_json(lb: Leaderboard) -> str:
    """``leaderboard.json`` (:meth:`~urgentbench.report.schema.Leaderboard.to_json`)."""
    return lb.to_json()


def write_leaderboard(
    lb: Leaderboard, out_dir: str | Path, formats: tuple[str, ...] | list[str] = FORMATS
) -> list[Path]:
    """Write ``leaderboard.md``, ``.csv`` and/or ``.json`` (those in ``formats``) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = {"md": to_markdown, "csv": to_csv, "json": to_json}
    paths = []
    for fmt, render in writers.items():
        if fmt in formats:
            path = out_dir / f"leaderboard.{fmt}"
            path.write_text(render(lb), encoding="utf-8")
            paths.append(path)
    return paths
