"""Paper tables (LaTeX with booktabs, or Markdown) of chosen systems and metric outputs.

Each column header carries the metric's direction (↑ higher is better, ↓ lower is better);
the best value of each column is in bold (every system whose printed value equals the
best printed value); ``ci`` adds ``± h`` where ``h`` is half the width of the 95 %
percentile-bootstrap interval over utterances; with a reference system, values that
differ significantly from it (two-sided paired permutation test over utterances,
``p < alpha``) are marked with a dagger. See :mod:`urgentbench.report.stats`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from urgentbench.report import stats
from urgentbench.report.escape import latex_escape, markdown_escape
from urgentbench.report.summary import MISSING_POLICIES, UNRANKED, WORST, fill_worst

logger = logging.getLogger(__name__)

FORMATS = ("latex", "markdown")


@dataclass
class TableCell:
    """One system's value of one output."""

    value: float | None
    ci: stats.Interval | None = None
    p_value: float | None = None


@dataclass
class Table:
    """Everything a paper table shows; rendered by :func:`to_latex` or :func:`to_markdown`."""

    suite: str
    suite_version: str
    systems: list[str]
    outputs: list[str]
    higher_is_better: dict[str, bool]
    cells: dict[str, dict[str, TableCell]]
    show_ci: bool = False
    reference: str | None = None
    alpha: float = stats.ALPHA
    test: str = "permutation"
    digits: int = 3
    notes: list[str] = field(default_factory=list)
    #: Systems whose values are shown but never marked best (outputs missing, ``missing="unranked"``)
    not_comparable: list[str] = field(default_factory=list)
    #: The missing-value policy the values follow (:data:`urgentbench.report.summary.MISSING_POLICIES`)
    missing: str = UNRANKED


def resolve_outputs(names: list[str], metric_classes: list[Any]) -> list[tuple[str, Any]]:
    """``(output, metric class)`` for names that are metric outputs or metric names (all its outputs).

    Raises:
        ValueError: For a name that is neither, listing the known outputs.
    """
    out: list[tuple[str, Any]] = []
    for name in names:
        # an output name wins over a metric of the same name (the ``wer`` metric outputs wer and cer)
        owner = next((cls for cls in metric_classes if any(o.name == name for o in cls.outputs)), None)
        metric = next((cls for cls in metric_classes if name in (cls.name, *getattr(cls, "aliases", ()))), None)
        if owner is not None:
            out.append((name, owner))
        elif metric is not None:
            out += [(o.name, metric) for o in metric.outputs]
        else:
            known = sorted({o.name for cls in metric_classes for o in cls.outputs})
            raise ValueError(f"unknown metric or output {name!r}; known outputs: {', '.join(known)}")
    seen: set[str] = set()
    return [(o, c) for o, c in out if not (o in seen or seen.add(o))]


def build_table(
    suite: Any,
    summaries: dict[str, Any],
    outputs: list[tuple[str, Any]],
    show_ci: bool = False,
    reference: str | None = None,
    test: str = "permutation",
    alpha: float = stats.ALPHA,
    n_resamples: int = stats.N_RESAMPLES,
    seed: int = stats.SEED,
    digits: int = 3,
    missing: str = UNRANKED,
    metrics: list[Any] | None = None,
) -> Table:
    """Compute a table's cells from system summaries.

    Args:
        suite: The suite (name and version for the caption).
        summaries: Display name -> :class:`~urgentbench.report.leaderboard.SystemSummary`, in row order.
        outputs: ``(output, metric class)`` columns.
        show_ci: Add the 95 % bootstrap interval.
        reference: Mark values that differ significantly from this system's.
        test: Paired test (``permutation`` or ``wilcoxon``).
        alpha: Significance level of the marks against ``reference``.
        n_resamples: Bootstrap resamples and most random swaps of the permutation test.
        seed: Seed of both.
        digits: Decimals shown.
        missing: The leaderboard's missing-value policy: ``"unranked"`` shows the values of
            a system with missing or unusable outputs (or utterances not scored) with a note
            and never marks them best; ``"worst"`` fills each such value with the worst
            value of the other rows on that utterance, as the leaderboard does.
        metrics: The :class:`~urgentbench.runner.MetricSpec` of the columns (needed by
            ``"worst"``).

    Raises:
        ValueError: When the reference is not one of the systems, or for an unknown policy.
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(f"unknown missing-value policy {missing!r}; use one of {', '.join(MISSING_POLICIES)}")
    if reference is not None and reference not in summaries:
        raise ValueError(f"reference system {reference!r} is not in the table; systems: {', '.join(summaries)}")
    if missing == WORST:
        if metrics is None:
            raise ValueError("missing='worst' needs the metric specs of the columns")
        summaries = dict(zip(summaries, fill_worst(list(summaries.values()), metrics)))
    cells: dict[str, dict[str, TableCell]] = {}
    notes = []
    not_comparable = []
    for name, summary in summaries.items():
        if missing == WORST and any(summary.filled.values()):
            filled = ", ".join(f"{m} {n}" for m, n in summary.filled.items() if n)
            notes.append(f"{name}: missing values filled with the worst of the other systems ({filled})")
        elif missing != WORST and not summary.complete:
            notes.append(f"{name} is not comparable ({summary.shortfall()}); its values are never marked best")
            not_comparable.append(name)
            logger.warning("%s", notes[-1])
        row: dict[str, TableCell] = {}
        for output, cls in outputs:
            per_utt = summary.per_utterance.get(cls.name, {})
            cell = TableCell(summary.values.get(output))
            if show_ci:
                cell.ci = stats.output_ci(cls, output, list(per_utt.values()), n_resamples, seed=seed)
            if reference is not None and name != reference:
                result = stats.compare_systems(
                    cls, output, per_utt, summaries[reference].per_utterance.get(cls.name, {}), test, n_resamples, seed
                )
                cell.p_value = None if result is None else result.p_value
            row[output] = cell
        cells[name] = row
    return Table(
        suite=suite.name,
        suite_version=suite.version,
        systems=list(summaries),
        outputs=[o for o, _ in outputs],
        higher_is_better={o: cls.output(o).higher_is_better for o, cls in outputs},
        cells=cells,
        show_ci=show_ci,
        reference=reference,
        alpha=alpha,
        test=test,
        digits=digits,
        notes=notes,
        not_comparable=not_comparable,
        missing=missing,
    )


def _best(table: Table, output: str) -> str | None:
    """The printed form of the best value of a column."""
    values = [
        table.cells[s][output].value
        for s in table.systems
        if table.cells[s][output].value is not None and s not in table.not_comparable
    ]
    if not values:
        return None
    best = max(values) if table.higher_is_better[output] else min(values)
    return f"{best:.{table.digits}f}"


def _significant(table: Table, cell: TableCell) -> bool:
    return cell.p_value is not None and cell.p_value < table.alpha


def _half_width(ci: stats.Interval) -> float:
    return (ci.high - ci.low) / 2.0


def _legend(table: Table, name: Any = str) -> str:
    """The caption; ``name`` escapes the reference system's name for the output format."""
    parts = [
        f"{table.suite} v{table.suite_version}.",
        "Arrows: higher (↑) or lower (↓) is better; best value in bold.",
    ]
    if table.show_ci:
        parts.append("± is half the width of the 95 % percentile-bootstrap interval over utterances.")
    if table.reference is not None:
        test = "paired permutation test" if table.test == "permutation" else "Wilcoxon signed-rank test"
        parts.append(
            f"† differs significantly from {name(table.reference)} (two-sided {test} over utterances, "
            f"p < {table.alpha:g})."
        )
    return " ".join(parts)


@dataclass(frozen=True)
class CellStyle:
    """How one output format writes a table: header words, the missing value and the cell marks.

    ``bold`` and ``ci`` are :meth:`str.format` patterns (``{}`` is the value, the half
    width); ``dagger`` is appended as it is.
    """

    system: str
    arrows: dict[bool, str]
    missing: str
    bold: str
    ci: str
    dagger: str
    escape: Any


LATEX = CellStyle(
    system="System", arrows={True: r"$\uparrow$", False: r"$\downarrow$"}, missing="--",
    bold="\\textbf{{{}}}", ci="\\,{{\\scriptsize$\\pm${}}}", dagger="$^{\\dagger}$", escape=latex_escape,
)
MARKDOWN = CellStyle(
    system="system", arrows={True: "↑", False: "↓"}, missing="—",
    bold="**{}**", ci=" ± {}", dagger=" †", escape=markdown_escape,
)


def cell_text(table: Table, system: str, output: str, style: CellStyle, best: str | None = None) -> str:
    """One cell: the value (bold when it is the column's best printed value), ``± h`` with ``show_ci``, a dagger when significant.

    ``best`` is the column's best printed value (:func:`_best`; computed when not given).
    """
    cell = table.cells[system][output]
    if cell.value is None:
        return style.missing
    best = _best(table, output) if best is None else best
    text = f"{cell.value:.{table.digits}f}"
    if text == best:
        text = style.bold.format(text)
    if table.show_ci and cell.ci is not None:
        text += style.ci.format(f"{_half_width(cell.ci):.{table.digits}f}")
    if _significant(table, cell):
        text += style.dagger
    return text


def table_rows(table: Table, style: CellStyle) -> list[list[str]]:
    """The header row and one row per system, every cell rendered by :func:`cell_text`."""
    best = {o: _best(table, o) for o in table.outputs}
    header = [style.system] + [f"{style.escape(o)} {style.arrows[table.higher_is_better[o]]}" for o in table.outputs]
    return [header] + [
        [style.escape(name)] + [cell_text(table, name, o, style, best[o]) for o in table.outputs]
        for name in table.systems
    ]


def to_latex(table: Table) -> str:
    r"""A ``table`` environment with a booktabs ``tabular`` (needs ``\usepackage{booktabs}``)."""
    header, *body = table_rows(table, LATEX)
    lines = [
        "% generated by urgentbench; needs \\usepackage{booktabs}",
        "\\begin{table}[t]",
        "\\centering",
        "\\begin{tabular}{l" + "r" * len(table.outputs) + "}",
        "\\toprule",
        " & ".join(header) + " \\\\",
        "\\midrule",
    ]
    lines += [" & ".join(cells) + " \\\\" for cells in body]
    legend = latex_escape(_legend(table)).replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$")
    legend = legend.replace("±", r"$\pm$").replace("†", r"$^{\dagger}$").replace(r"\textless{}", "$<$")
    legend += "".join(f" Note: {latex_escape(n)}." for n in table.notes)
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{legend}}}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table followed by its legend."""
    header, *body = table_rows(table, MARKDOWN)
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(table.outputs) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    lines += ["", _legend(table, markdown_escape)]
    lines += [f"Note: {markdown_escape(n)}." for n in table.notes]
    return "\n".join(lines) + "\n"


def render(table: Table, fmt: str) -> str:
    """Render in ``latex`` or ``markdown``.

    Raises:
        ValueError: For an unknown format.
    """
    if fmt == "latex":
        return to_latex(table)
    if fmt in ("markdown", "md"):
        return to_markdown(table)
    raise ValueError(f"unknown table format {fmt!r}; use one of {', '.join(FORMATS)}")
