"""The HTML leaderboard: one self-contained static page (inline CSS, JavaScript and SVG).

The page needs no network: charts are inline SVG drawn here, sorting and the utterance
picker are a few lines of inline JavaScript, and audio clips and spectrograms are small
files written next to the page (``audio/<utterance>/<clip>.ogg`` and ``.png``) and
referenced by relative paths. Audio clips are Ogg Vorbis previews for listening (the
scored audio is the 16-bit FLAC in ``results/``). Every name, description and metadata
value comes from submissions and is HTML-escaped (a team called ``<script>`` is shown as
text), and no data is embedded in the script.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from urgentbench.report.breakdown import Breakdown, utterance_tags
from urgentbench.report.clips import AUDIO_DIR, AudioItem, Clip, pick_utterances, prepare_audio
from urgentbench.report.ogg import fixed_ogg_serial
from urgentbench.report.ogg import ogg_crc as _ogg_crc  # noqa: F401 (the name tests have always used)
from urgentbench.report.page_assets import CSS, JS
from urgentbench.report.png import png_bytes
from urgentbench.report.render import failure_lines, fmt_rank, fmt_value, provenance_notes
from urgentbench.report.schema import NOT_RANKED, Leaderboard
from urgentbench.report.spectrogram import spectrogram_png
from urgentbench.suites import Suite

__all__ = [
    "AUDIO_DIR", "DEFAULT_TAGS", "AudioItem", "Clip", "audio_section", "bar_chart", "breakdown_table", "default_tags",
    "esc", "fixed_ogg_serial", "pick_utterances", "png_bytes", "prepare_audio", "ranking_table", "render_page",
    "spectrogram_png", "systems_table", "write_html",
]

#: Tags broken down on the page by default (those with 2 to 15 groups on the suite).
DEFAULT_TAGS = ("condition", "snr_bin", "rt60_bin", "clip_threshold", "cutoff_hz")


def esc(value: Any) -> str:
    """HTML-escape any value's text (quotes included, safe in attributes)."""
    return html.escape(str(value), quote=True)


def default_tags(suite: Suite) -> list[str]:
    """Tags of :data:`DEFAULT_TAGS` that split the suite into 2 to 15 groups."""
    counts: dict[str, set[str]] = {}
    for utt in suite.utterances():
        for tag, value in utterance_tags(utt).items():
            counts.setdefault(tag, set()).add(value)
    return [t for t in DEFAULT_TAGS if 2 <= len(counts.get(t, ())) <= 15]


def _data(value: Any) -> str:
    """A ``data-value`` attribute (empty for missing values, which sort last)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return 'data-value=""'
    return f'data-value="{esc(value if isinstance(value, str) else repr(float(value)))}"'


def _sortable(label: str, col: int, first: str, title: str = "", cls: str = "") -> str:
    t = f' title="{esc(title)}"' if title else ""
    return (
        f'<th class="sortable {cls}" tabindex="0" data-col="{col}" data-first="{first}"{t}>{label}</th>'
    )


def _arrow(hib: bool) -> str:
    return "↑" if hib else "↓"


def ranking_table(lb: Leaderboard) -> str:
    """The ranked table: category-grouped ``value (rank)`` cells, CIs, category and overall scores."""
    cols = lb.columns()
    hib = lb.higher_is_better
    alpha = lb.statistics.alpha
    first = lb.rows[0].system if lb.rows else ""
    groups: list[tuple[str, int]] = []
    for group, _, _ in cols:
        if groups and groups[-1][0] == group:
            groups[-1] = (group, groups[-1][1] + 1)
        else:
            groups.append((group, 1))
    top = ['<th rowspan="2">#</th>', '<th rowspan="2" class="name">system</th>']
    top += [f'<th colspan="{n}">{esc(g)}</th>' for g, n in groups]
    if lb.categories:
        top.append(f'<th colspan="{len(lb.categories)}">category scores</th>')
    top.append('<th rowspan="1">overall</th>')
    second = []
    col = 2
    for _, output, _ in cols:
        second.append(_sortable(f"{esc(output)} {_arrow(hib[output])}", col, "descending" if hib[output] else "ascending",
                                lb.descriptions.get(output, "")))
        col += 1
    for c in lb.categories:
        second.append(_sortable(f"{esc(c)} ↓", col, "ascending", "mean rank of the category's metrics"))
        col += 1
    second.append(_sortable("score ↓", col, "ascending", "mean of the category scores (lower is better)"))
    # the "#" and "system" headers span both rows; make them sortable in the second row's flow via the first
    top[0] = _sortable("#", 0, "ascending").replace("<th ", '<th rowspan="2" ', 1)
    top[1] = _sortable("system", 1, "ascending", cls="name").replace("<th ", '<th rowspan="2" ', 1)
    body = []
    for i, row in enumerate(lb.rows, 1):
        cells = [f'<td {_data(i)}>{i}</td>', f'<td class="name" {_data(row.system)}>{esc(row.system)}</td>']
        for group, output, _ in cols:
            value = row.values.get(output)
            rank = row.ranks.get(output) if group != NOT_RANKED else None
            ci = row.ci.get(output)
            p = (row.p_vs_first or {}).get(output)
            mark = ""
            title = ""
            if p is not None:
                title = f"paired test vs {first}: p = {p:.3g}"
                if p < alpha:
                    mark = '<span class="sig">†</span>'
            text = esc(fmt_value(value) + fmt_rank(rank)) + mark
            if ci:
                text += f"<small>[{ci[0]:.3f}, {ci[1]:.3f}]</small>"
            t = f' title="{esc(title)}"' if title else ""
            cells.append(f"<td {_data(value)}{t}>{text}</td>")
        for c in lb.categories:
            v = row.categories.get(c)
            cells.append(f"<td {_data(v)}>{esc(fmt_value(v, 2))}</td>")
        cells.append(f'<td class="overall" {_data(row.overall)}>{esc(fmt_value(row.overall))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<div class="scroll"><table class="sortable-table" id="ranking">'
        f"<thead><tr>{''.join(top)}</tr><tr>{''.join(second)}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def systems_table(lb: Leaderboard) -> str:
    """System metadata (team, description, submission fields), escaped."""
    entries = [(r.system, r.config_hash, r.metadata or {}, "ranked") for r in lb.rows]
    for r in lb.incomplete:  # with the reason, as the Markdown and JSON give it
        reasons = [x for x in (r.reason, *r.stale.values()) if x]
        entries.append((r.system, "", {}, "; ".join(["not ranked (incomplete)", *reasons])))
    rows = []
    for system, config_hash, meta, status in entries:
        items = "".join(f"<div><b>{esc(k)}</b>: {esc(v)}</div>" for k, v in meta.items() if v not in (None, ""))
        rows.append(
            f'<tr><td class="name">{esc(system)}</td><td class="name">{esc(config_hash)}</td>'
            f'<td class="name">{esc(status)}</td><td class="name">{items or "—"}</td></tr>'
        )
    return (
        '<div class="scroll"><table><thead><tr><th class="name">system</th><th class="name">config</th>'
        f'<th class="name">status</th><th class="name">metadata</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


def breakdown_table(lb: Leaderboard, tag: str, rows: list[dict[str, Any]]) -> str:
    """One sortable table per tag: a row per (group, system), a column per output (:meth:`Breakdown.page_rows`)."""
    outputs = [o for _, o, _ in lb.columns()]
    hib = lb.higher_is_better
    head = [_sortable(esc(tag), 0, "ascending", cls="name"), _sortable("n", 1, "descending"),
            _sortable("system", 2, "ascending", cls="name")]
    head += [
        _sortable(f"{esc(o)} {_arrow(hib[o])}", i + 3, "descending" if hib[o] else "ascending") for i, o in enumerate(outputs)
    ]
    body = []
    for order, r in enumerate(rows):
        cells = [
            f'<td class="name" data-value="{order:06d}">{esc(r["group"])}</td>',
            f"<td {_data(r['n'])}>{r['n']}</td>",
            f'<td class="name" {_data(r["system"])}>{esc(r["system"])}</td>',
        ]
        cells += [f"<td {_data(r['values'].get(o))}>{esc(fmt_value(r['values'].get(o)))}</td>" for o in outputs]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table class="sortable-table breakdown" data-tag="{esc(tag)}">'
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _nice_ticks(low: float, high: float, n: int = 4) -> list[float]:
    span = high - low
    if span <= 0:
        return [low]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(low / step) * step
    ticks = []
    t = start
    while t <= high + 1e-9 * span:
        ticks.append(round(t, 10))
        t += step
    return ticks


def bar_chart(lb: Leaderboard, output: str) -> str:
    """An inline SVG: one horizontal bar per system with its 95 % CI whisker."""
    rows = [r for r in lb.rows if r.values.get(output) is not None]
    hib = lb.higher_is_better[output]
    desc = lb.descriptions.get(output, "")
    caption = f"<figcaption>{esc(output)} {_arrow(hib)}<span>{esc(desc)}</span></figcaption>"
    if not rows:
        return f'<figure class="chart">{caption}<p class="note">no values</p></figure>'
    lows, highs = [], []
    for r in rows:
        v = r.values[output]
        ci = r.ci.get(output) or [v, v]
        lows.append(min(v, ci[0]))
        highs.append(max(v, ci[1]))
    lo, hi = min(0.0, min(lows)), max(0.0, max(highs))
    if hi == lo:
        hi = lo + 1.0
    pad = 0.04 * (hi - lo)
    lo, hi = (lo - pad if lo < 0 else lo), hi + pad
    label_w, plot_w, bar_h, gap, top = 130, 230, 18, 8, 6
    height = top + len(rows) * (bar_h + gap) + 22
    width = label_w + plot_w + 10

    def x(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{esc(output)} by system with 95% confidence intervals">'
    ]
    axis_y = height - 20
    for t in _nice_ticks(lo, hi):
        parts.append(f'<line x1="{x(t):.1f}" y1="{top - 2}" x2="{x(t):.1f}" y2="{axis_y}" stroke="#e3e7ee"/>')
        parts.append(f'<text x="{x(t):.1f}" y="{axis_y + 14}" text-anchor="middle">{t:g}</text>')
    zero = x(0.0)
    for i, r in enumerate(rows):
        y = top + i * (bar_h + gap)
        v = r.values[output]
        ci = r.ci.get(output)
        name = r.system if len(r.system) <= 20 else r.system[:19] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_h * 0.7:.1f}" text-anchor="end"><title>{esc(r.system)}</title>{esc(name)}</text>')
        x0, x1 = sorted((zero, x(v)))
        parts.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 0.5):.1f}" height="{bar_h}" fill="#7aa5ef">'
                     f"<title>{esc(r.system)}: {v:.4f}"
                     + (f" (95% CI {ci[0]:.4f} to {ci[1]:.4f})" if ci else "") + "</title></rect>")
        if ci:
            cy = y + bar_h / 2
            parts.append(f'<line x1="{x(ci[0]):.1f}" y1="{cy}" x2="{x(ci[1]):.1f}" y2="{cy}" stroke="#1d2430" stroke-width="1.5"/>')
            for end in ci:
                parts.append(f'<line x1="{x(end):.1f}" y1="{y + 3}" x2="{x(end):.1f}" y2="{y + bar_h - 3}" stroke="#1d2430" stroke-width="1.5"/>')
    parts.append(f'<line x1="{zero:.1f}" y1="{top - 2}" x2="{zero:.1f}" y2="{axis_y}" stroke="#5b6575"/>')
    parts.append("</svg>")
    return f'<figure class="chart" data-output="{esc(output)}">{caption}{"".join(parts)}</figure>'


def audio_section(items: list[AudioItem]) -> str:
    """The utterance picker and, per utterance, every clip with its player and spectrogram."""
    if not items:
        return '<p class="note">No audio (rerun with --audio-utterances N to include some).</p>'
    options = "".join(
        f'<option value="{esc(it.utt_id)}">{esc(it.utt_id)}{" · " + esc(it.condition) if it.condition else ""}</option>'
        for it in items
    )
    panels = []
    for it in items:
        clips = []
        for clip in it.clips:
            if clip.audio:
                media = (
                    f'<audio controls preload="none" src="{esc(clip.audio)}"></audio>'
                    f'<img src="{esc(clip.spectrogram)}" alt="spectrogram: {esc(clip.label)}" width="360" height="140">'
                )
            else:
                media = f'<p class="note">{esc(clip.note)}</p>'
            clips.append(f'<div class="clip" data-kind="{esc(clip.kind)}"><h4>{esc(clip.label)}</h4>{media}</div>')
        text = f'<p class="note">“{esc(it.text)}”</p>' if it.text else ""
        panels.append(
            f'<div class="utterance" data-utterance="{esc(it.utt_id)}">{text}<div class="clips">{"".join(clips)}</div></div>'
        )
    return (
        '<p><label for="utterance-picker">Utterance: </label>'
        f'<select id="utterance-picker">{options}</select> '
        '<span class="note">Ogg Vorbis previews; spectrograms share one level scale per utterance '
        "(80 dB range).</span></p>" + "".join(panels)
    )


def render_page(lb: Leaderboard, breakdowns: list[Breakdown] | None = None, audio: list[AudioItem] | None = None) -> str:
    """The whole page as a string."""
    st = lb.statistics
    title = f"Leaderboard: {lb.suite} v{lb.suite_version}"
    meta = (
        f"{lb.n_utterances} utterances · manifest sha256 <code>{esc(lb.manifest_sha256[:16])}…</code> · "
        f"ties: {esc(lb.tie_method)} · urgentbench {esc(lb.urgentbench)}"
    )
    explain = (
        "Cells show <i>system mean (rank)</i> with its 95 % confidence interval below "
        f"({esc(st.ci_method)}, {esc(st.n_resamples)} resamples, seed {esc(st.seed)}). "
        "A category score is the mean of its metrics' ranks, the overall score the mean of the category scores "
        "(lower is better). Click a column header to sort. "
        f"<span class='sig'>†</span>: differs significantly from {esc(st.paired_reference or 'the first system')} "
        f"({esc(st.paired_test)}, p &lt; {esc(st.alpha)})."
    )
    notes = "".join(f"<li>{esc(note)}</li>" for note in provenance_notes(lb, code="", strong=""))
    failures = [
        f"<li>{esc(system)}: {esc(m)} failed on {n} utterance(s), e.g. {esc(example)}</li>"
        for system, m, n, example in failure_lines(lb)
    ]
    sections = [
        f'<section id="ranking-section"><h2>Ranking</h2><p class="note">{explain}</p>{ranking_table(lb)}'
        + (f'<ul class="note provenance">{notes}</ul>' if notes else "")
        + (f"<p>Missing values (excluded from means, never counted as 0):</p><ul>{''.join(failures)}</ul>" if failures else "")
        + (f"<p>Not ranked (incomplete): {esc(', '.join(r.system for r in lb.incomplete))}</p>" if lb.incomplete else "")
        + "</section>",
        f'<section id="systems"><h2>Systems</h2>{systems_table(lb)}</section>',
        '<section id="charts"><h2>Metrics with 95 % confidence intervals</h2><div class="charts">'
        + "".join(bar_chart(lb, o) for _, o, _ in lb.columns())
        + "</div></section>",
    ]
    if breakdowns:
        parts = []
        for i, b in enumerate(breakdowns):
            table = breakdown_table(lb, b.tag, b.page_rows())
            parts.append(f"<details{' open' if i == 0 else ''}><summary>by {esc(b.tag)}</summary>{table}</details>")
        sections.append(f'<section id="breakdowns"><h2>Per-condition breakdowns</h2>{"".join(parts)}</section>')
    sections.append(f'<section id="audio"><h2>Listen</h2>{audio_section(audio or [])}</section>')
    nav = "".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in [("ranking-section", "ranking"), ("systems", "systems"), ("charts", "charts"),
                     ("breakdowns", "breakdowns"), ("audio", "audio")]
        if a != "breakdowns" or breakdowns
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p class=\"meta\">{meta}</p><nav>{nav}</nav></header>"
        + "".join(sections)
        + f"<script>{JS}</script></body></html>\n"
    )


def write_html(
    lb: Leaderboard, out_dir: str | Path, breakdowns: list[Breakdown] | None = None, audio: list[AudioItem] | None = None
) -> Path:
    """Write ``leaderboard.html`` into ``out_dir`` (audio files must already be there)."""
    path = Path(out_dir) / "leaderboard.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(lb, breakdowns, audio), encoding="utf-8")
    return path
