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

import hashlib
import html
import io
import logging
import math
import re
import shutil
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from urgentbench.report import stats

logger = logging.getLogger(__name__)

AUDIO_DIR = "audio"
_MARKER = ".generated-by-urgentbench"
#: Tags broken down on the page by default (those with 2 to 15 groups on the suite).
DEFAULT_TAGS = ("condition", "snr_bin", "rt60_bin", "clip_threshold", "cutoff_hz")


def esc(value: Any) -> str:
    """HTML-escape any value's text (quotes included, safe in attributes)."""
    return html.escape(str(value), quote=True)


# --------------------------------------------------------------------------- data collection


@dataclass
class Clip:
    """One playable signal of an utterance (unprocessed, reference or a system's output)."""

    label: str
    kind: str
    audio: str | None = None
    spectrogram: str | None = None
    note: str = ""


@dataclass
class AudioItem:
    """An utterance of the audio section."""

    utt_id: str
    condition: str
    text: str
    clips: list[Clip] = field(default_factory=list)


def collect_breakdowns(
    store: Any, suite: Any, metrics: list[Any], tags: list[str], systems: list[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Per tag, one row per (group, system): utterance count and system values.

    Tags no utterance has are skipped with a warning.
    """
    from urgentbench.report.breakdown import group_utterances
    from urgentbench.report.leaderboard import summarize

    out: dict[str, list[dict[str, Any]]] = {}
    for tag in tags:
        try:
            groups = group_utterances(suite.utterances(), tag)
        except ValueError as exc:
            logger.warning("no breakdown by %s: %s", tag, exc)
            continue
        rows = []
        for group, utts in groups.items():
            for s in summarize(store, suite, metrics, systems=systems, utterances=utts):
                rows.append({"group": group, "n": len(utts), "system": s.display_name, "values": s.values})
        out[tag] = rows
    return out


def default_tags(suite: Any) -> list[str]:
    """Tags of :data:`DEFAULT_TAGS` that split the suite into 2 to 15 groups."""
    from urgentbench.report.breakdown import utterance_tags

    counts: dict[str, set[str]] = {}
    for utt in suite.utterances():
        for tag, value in utterance_tags(utt).items():
            counts.setdefault(tag, set()).add(value)
    return [t for t in DEFAULT_TAGS if 2 <= len(counts.get(t, ())) <= 15]


def pick_utterances(utterances: list[Any], n: int) -> list[Any]:
    """Up to ``n`` utterances, one per distinct ``condition`` tag first (in manifest order)."""
    chosen, seen = [], set()
    for utt in utterances:
        cond = utt.tags.get("condition", "")
        if cond not in seen:
            chosen.append(utt)
            seen.add(cond)
        if len(chosen) >= n:
            return chosen
    for utt in utterances:
        if len(chosen) >= n:
            break
        if utt not in chosen:
            chosen.append(utt)
    return chosen


def _slug(text: str) -> str:
    """A safe file name for any text (a hash keeps distinct names distinct)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:40] or "x"
    return f"{base}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


def _system_audio(results_dir: Path, suite: Any, row: dict[str, Any], summary: Any, utt_id: str) -> Path | None:
    from urgentbench.runner import ProducerSpec, enhanced_path, find_output

    path = enhanced_path(results_dir, suite.key, ProducerSpec(summary.system, summary.config_hash), utt_id)
    if path.exists():
        return path
    outputs = (summary.metadata or {}).get("outputs")
    if outputs:
        for folder in (Path(outputs), Path(outputs) / "enhanced"):
            if folder.is_dir():
                found = find_output(folder, utt_id)
                if found is not None:
                    return found
    return None


def prepare_audio(
    suite: Any,
    rows: list[dict[str, Any]],
    summaries: dict[str, Any],
    results_dir: str | Path,
    out_dir: str | Path,
    n_utterances: int = 3,
) -> list[AudioItem]:
    """Write Ogg previews and spectrogram PNGs of a few utterances into ``out_dir/audio``.

    Args:
        suite: The suite.
        rows: Leaderboard rows (system display names, in rank order).
        summaries: Display name -> system summary (for where its outputs are).
        results_dir: The results folder (cached inputs, enhanced audio).
        out_dir: The page's folder.
        n_utterances: How many utterances to include.

    Returns:
        The utterances with their clips; a clip whose audio cannot be found or read has
        no files and a note saying why.
    """
    import soundfile as sf

    from urgentbench.audio import read_audio
    from urgentbench.runner import load_inputs

    results_dir = Path(results_dir).resolve()
    audio_root = Path(out_dir) / AUDIO_DIR
    if audio_root.exists() and (audio_root / _MARKER).exists():
        shutil.rmtree(audio_root)
    audio_root.mkdir(parents=True, exist_ok=True)
    (audio_root / _MARKER).write_text("files here are rewritten by `urgentbench leaderboard --format html`\n")
    items = []
    for utt in pick_utterances(suite.utterances(), n_utterances):
        item = AudioItem(utt.id, utt.tags.get("condition", ""), utt.text or "")
        signals: list[tuple[Clip, np.ndarray | None, int]] = []
        try:
            noisy, reference = load_inputs(utt, suite.folder, results_dir, suite.key)
        except Exception as exc:  # a corpus not prepared, an unreadable cache: the page still renders
            logger.warning("%s: no input audio for the page: %s", utt.id, exc)
            noisy, reference = None, None
        signals.append((Clip("unprocessed", "input"), noisy, utt.sample_rate))
        if utt.has_reference:
            signals.append((Clip("reference", "reference"), reference, utt.sample_rate))
        for row in rows:
            summary = summaries.get(row["system"])
            path = None if summary is None else _system_audio(results_dir, suite, row, summary, utt.id)
            wave, rate = None, utt.sample_rate
            if path is not None:
                try:
                    wave, rate = read_audio(path)
                except Exception as exc:
                    logger.warning("%s: cannot read %s: %s", row["system"], path, exc)
            signals.append((Clip(row["system"], "system"), wave, rate))
        top = max((_peak_db(w, r) for _, w, r in signals if w is not None), default=0.0)
        folder = audio_root / _slug(utt.id)
        folder.mkdir(parents=True, exist_ok=True)
        for clip, wave, rate in signals:
            if wave is None:
                clip.note = "audio not available"
            else:
                name = _slug(f"{clip.kind}:{clip.label}")
                ogg = io.BytesIO()
                sf.write(ogg, np.clip(wave, -1.0, 1.0), rate, format="OGG", subtype="VORBIS")
                (folder / f"{name}.ogg").write_bytes(fixed_ogg_serial(ogg.getvalue()))
                (folder / f"{name}.png").write_bytes(spectrogram_png(wave, rate, top_db=top))
                clip.audio = f"{AUDIO_DIR}/{folder.name}/{name}.ogg"
                clip.spectrogram = f"{AUDIO_DIR}/{folder.name}/{name}.png"
            item.clips.append(clip)
        items.append(item)
    return items


# --------------------------------------------------------------------------- reproducible Ogg files

#: CRC-32 of Ogg pages: polynomial 0x04C11DB7, MSB first, initial value 0, no final xor.
_OGG_CRC_TABLE = []
for _byte in range(256):
    _crc = _byte << 24
    for _ in range(8):
        _crc = ((_crc << 1) ^ 0x04C11DB7) if _crc & 0x80000000 else (_crc << 1)
    _OGG_CRC_TABLE.append(_crc & 0xFFFFFFFF)


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC_TABLE[((crc >> 24) ^ b) & 0xFF]
    return crc


def fixed_ogg_serial(data: bytes, serial: int = 1) -> bytes:
    """Ogg bytes with every page's stream serial number set to ``serial`` (CRCs recomputed).

    libvorbis' encoder is deterministic but libsndfile draws a random serial number per
    file, so the same leaderboard would differ byte for byte on every regeneration.
    Single-stream files only (which is what :func:`soundfile.write` produces).

    Raises:
        ValueError: If ``data`` is not a well-formed Ogg stream.
    """
    out = bytearray(data)
    pos = 0
    while pos < len(out):
        if out[pos : pos + 4] != b"OggS" or pos + 27 > len(out):
            raise ValueError(f"not an Ogg page at byte {pos}")
        n_segments = out[pos + 26]
        header_len = 27 + n_segments
        page_len = header_len + sum(out[pos + 27 : pos + header_len])
        if pos + page_len > len(out):
            raise ValueError(f"truncated Ogg page at byte {pos}")
        out[pos + 14 : pos + 18] = serial.to_bytes(4, "little")
        out[pos + 22 : pos + 26] = b"\0\0\0\0"
        out[pos + 22 : pos + 26] = _ogg_crc(bytes(out[pos : pos + page_len])).to_bytes(4, "little")
        pos += page_len
    return bytes(out)


# --------------------------------------------------------------------------- spectrograms


def _stft_db(wave: np.ndarray, rate: int) -> np.ndarray:
    n_fft = 1 << max(8, int(round(math.log2(0.032 * rate))))
    hop = n_fft // 4
    x = np.asarray(wave, dtype=np.float64)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return 10.0 * np.log10(power + 1e-12)


def _peak_db(wave: np.ndarray, rate: int) -> float:
    return float(_stft_db(wave, rate).max())


#: Anchors of a dark-to-bright colour map (black, indigo, crimson, orange, pale yellow).
_ANCHORS = np.array(
    [[0, 0, 4], [60, 15, 110], [180, 55, 80], [250, 150, 40], [252, 253, 191]], dtype=np.float64
)


def _colour(level: np.ndarray) -> np.ndarray:
    """Map levels in [0, 1] to RGB through :data:`_ANCHORS`."""
    pos = np.clip(level, 0.0, 1.0) * (len(_ANCHORS) - 1)
    low = np.minimum(pos.astype(int), len(_ANCHORS) - 2)
    frac = (pos - low)[..., None]
    return (_ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac).round().astype(np.uint8)


def spectrogram_png(
    wave: np.ndarray, rate: int, width: int = 360, height: int = 140, top_db: float | None = None, range_db: float = 80.0
) -> bytes:
    """A log-power spectrogram (0 Hz at the bottom) as PNG bytes.

    Args:
        wave: Mono waveform.
        rate: Its sample rate.
        width: Image width (frames are max-pooled or repeated to fit).
        height: Image height (frequency bins likewise).
        top_db: The level shown brightest (share it between clips to compare them);
            default: this signal's maximum.
        range_db: Levels more than this below ``top_db`` are black.
    """
    spec = _stft_db(wave, rate).T  # (freq, time)
    top = spec.max() if top_db is None else top_db
    level = (spec - (top - range_db)) / range_db
    # max-pool (or repeat) bins into pixels: reduceat over non-decreasing start indices
    cols = np.minimum(np.linspace(0, spec.shape[1], width, endpoint=False).astype(int), spec.shape[1] - 1)
    rows = np.minimum(np.linspace(0, spec.shape[0], height, endpoint=False).astype(int), spec.shape[0] - 1)
    image = np.maximum.reduceat(np.maximum.reduceat(level, cols, axis=1), rows, axis=0)[::-1]
    # 64 colour levels in a palette image: a fraction of the size of true colour
    index = np.clip(np.round(image * 63), 0, 63).astype(np.uint8)
    return png_bytes(index, palette=_colour(np.linspace(0.0, 1.0, 64)))


def png_bytes(pixels: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """Encode an image as a PNG file.

    Args:
        pixels: ``(height, width, 3)`` uint8 RGB, or ``(height, width)`` uint8 palette indices.
        palette: ``(n, 3)`` uint8 colours (n <= 256) for an index image.

    Raises:
        ValueError: For arrays of another shape or type, or an index image without a palette.
    """
    indexed = pixels.ndim == 2
    if pixels.dtype != np.uint8 or not (indexed or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"png_bytes needs (h, w, 3) or (h, w) uint8 pixels, got {pixels.shape} {pixels.dtype}")
    if indexed and (palette is None or palette.ndim != 2 or palette.shape[1] != 3 or len(palette) > 256):
        raise ValueError("an index image needs a palette of at most 256 RGB colours")
    h, w = pixels.shape[:2]
    raw = b"".join(b"\x00" + pixels[i].tobytes() for i in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 3 if indexed else 2, 0, 0, 0)
    body = chunk(b"IHDR", header)
    if indexed:
        body += chunk(b"PLTE", np.asarray(palette, dtype=np.uint8).tobytes())
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------- rendering

CSS = """
:root { --fg:#1d2430; --muted:#5b6575; --line:#d8dde5; --head:#f1f4f8; --accent:#2f6fdb; --bar:#7aa5ef; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); margin: 0; padding: 0 1.5rem 3rem; }
header { padding: 1.2rem 0 .4rem; border-bottom: 2px solid var(--line); }
h1 { margin: 0 0 .3rem; font-size: 1.6rem; } h2 { margin-top: 2rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
.meta, .note { color: var(--muted); } nav a { margin-right: 1rem; color: var(--accent); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .6rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: right; white-space: nowrap; vertical-align: top; }
th { background: var(--head); } td.name, th.name { text-align: left; white-space: normal; min-width: 8rem; max-width: 22rem; overflow-wrap: break-word; }
th.sortable { cursor: pointer; user-select: none; } th.sortable:hover { background: #e3e9f2; }
th[aria-sort=ascending]::after { content: " \\25B2"; font-size: .7em; } th[aria-sort=descending]::after { content: " \\25BC"; font-size: .7em; }
td small { display: block; color: var(--muted); font-size: .78em; }
td.overall { font-weight: 700; } .sig { color: #b5322b; }
details { margin: .5rem 0; } summary { cursor: pointer; font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 1rem; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: .5rem; }
figcaption { font-weight: 600; } figcaption span { font-weight: 400; color: var(--muted); font-size: .85em; display: block; }
svg text { font: 11px system-ui, sans-serif; fill: var(--fg); }
.clips { display: grid; grid-template-columns: repeat(auto-fill, minmax(370px, 1fr)); gap: .8rem; }
.clip { border: 1px solid var(--line); border-radius: 6px; padding: .5rem; }
.clip h4 { margin: 0 0 .3rem; overflow-wrap: anywhere; } .clip audio { width: 100%; } .clip img { width: 100%; image-rendering: auto; display: block; margin-top: .3rem; }
"""

JS = """
(function () {
  function key(cell) {
    var v = cell ? cell.getAttribute('data-value') : null;
    if (v === null || v === '') return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function sortBy(th) {
    var table = th.closest('table');
    var col = Number(th.getAttribute('data-col'));
    var current = th.getAttribute('aria-sort');
    var asc = current ? current !== 'ascending' : th.getAttribute('data-first') !== 'descending';
    table.querySelectorAll('th[aria-sort]').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null && y === null) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      var c = x < y ? -1 : x > y ? 1 : 0;
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll('th.sortable').forEach(function (th) {
    th.addEventListener('click', function () { sortBy(th); });
    th.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sortBy(th); } });
  });
  var picker = document.getElementById('utterance-picker');
  if (picker) {
    var show = function () {
      document.querySelectorAll('.utterance').forEach(function (p) {
        p.hidden = p.getAttribute('data-utterance') !== picker.value;
        if (p.hidden) p.querySelectorAll('audio').forEach(function (a) { a.pause(); });
      });
    };
    picker.addEventListener('change', show);
    show();
  }
})();
"""


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _rank(r: float | None) -> str:
    if r is None:
        return ""
    return f" ({int(r)})" if float(r).is_integer() else f" ({r:.1f})"


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


def ranking_table(lb: dict[str, Any]) -> str:
    """The ranked table: category-grouped ``value (rank)`` cells, CIs, category and overall scores."""
    from urgentbench.report.leaderboard import table_columns

    cols = table_columns(lb)
    hib = lb["higher_is_better"]
    alpha = lb.get("statistics", {}).get("alpha", stats.ALPHA)
    first = lb["rows"][0]["system"] if lb["rows"] else ""
    groups: list[tuple[str, int]] = []
    for group, _, _ in cols:
        if groups and groups[-1][0] == group:
            groups[-1] = (group, groups[-1][1] + 1)
        else:
            groups.append((group, 1))
    top = ['<th rowspan="2">#</th>', '<th rowspan="2" class="name">system</th>']
    top += [f'<th colspan="{n}">{esc(g)}</th>' for g, n in groups]
    if lb["categories"]:
        top.append(f'<th colspan="{len(lb["categories"])}">category scores</th>')
    top.append('<th rowspan="1">overall</th>')
    second = []
    col = 2
    for _, output, _ in cols:
        second.append(_sortable(f"{esc(output)} {_arrow(hib[output])}", col, "descending" if hib[output] else "ascending",
                                lb.get("descriptions", {}).get(output, "")))
        col += 1
    for c in lb["categories"]:
        second.append(_sortable(f"{esc(c)} ↓", col, "ascending", "mean rank of the category's metrics"))
        col += 1
    second.append(_sortable("score ↓", col, "ascending", "mean of the category scores (lower is better)"))
    # the "#" and "system" headers span both rows; make them sortable in the second row's flow via the first
    top[0] = _sortable("#", 0, "ascending").replace("<th ", '<th rowspan="2" ', 1)
    top[1] = _sortable("system", 1, "ascending", cls="name").replace("<th ", '<th rowspan="2" ', 1)
    body = []
    for i, row in enumerate(lb["rows"], 1):
        cells = [f'<td {_data(i)}>{i}</td>', f'<td class="name" {_data(row["system"])}>{esc(row["system"])}</td>']
        for group, output, _ in cols:
            value = row["values"].get(output)
            rank = row["ranks"].get(output) if group != "not ranked" else None
            ci = (row.get("ci") or {}).get(output)
            p = (row.get("p_vs_first") or {}).get(output)
            mark = ""
            title = ""
            if p is not None:
                title = f"paired test vs {first}: p = {p:.3g}"
                if p < alpha:
                    mark = '<span class="sig">†</span>'
            text = esc(_fmt(value) + _rank(rank)) + mark
            if ci:
                text += f"<small>[{ci[0]:.3f}, {ci[1]:.3f}]</small>"
            t = f' title="{esc(title)}"' if title else ""
            cells.append(f"<td {_data(value)}{t}>{text}</td>")
        for c in lb["categories"]:
            v = row["categories"].get(c)
            cells.append(f"<td {_data(v)}>{esc(_fmt(v, 2))}</td>")
        cells.append(f'<td class="overall" {_data(row["overall"])}>{esc(_fmt(row["overall"]))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<div class="scroll"><table class="sortable-table" id="ranking">'
        f"<thead><tr>{''.join(top)}</tr><tr>{''.join(second)}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def systems_table(lb: dict[str, Any]) -> str:
    """System metadata (team, description, submission fields), escaped."""
    rows = []
    for row in lb["rows"] + [{"system": r["system"], "metadata": {}, "config_hash": "", "incomplete": True} for r in lb["incomplete"]]:
        meta = row.get("metadata") or {}
        items = "".join(f"<div><b>{esc(k)}</b>: {esc(v)}</div>" for k, v in meta.items() if v not in (None, ""))
        status = "not ranked (incomplete)" if row.get("incomplete") else "ranked"
        rows.append(
            f'<tr><td class="name">{esc(row["system"])}</td><td class="name">{esc(row.get("config_hash", ""))}</td>'
            f'<td class="name">{status}</td><td class="name">{items or "—"}</td></tr>'
        )
    return (
        '<div class="scroll"><table><thead><tr><th class="name">system</th><th class="name">config</th>'
        f'<th class="name">status</th><th class="name">metadata</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


def breakdown_table(lb: dict[str, Any], tag: str, rows: list[dict[str, Any]]) -> str:
    """One sortable table per tag: a row per (group, system), a column per output."""
    outputs = [o for _, o, _ in _value_columns(lb)]
    hib = lb["higher_is_better"]
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
        cells += [f"<td {_data(r['values'].get(o))}>{esc(_fmt(r['values'].get(o)))}</td>" for o in outputs]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table class="sortable-table breakdown" data-tag="{esc(tag)}">'
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _value_columns(lb: dict[str, Any]) -> list[tuple[str, str, str]]:
    from urgentbench.report.leaderboard import table_columns

    return table_columns(lb)


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


def bar_chart(lb: dict[str, Any], output: str) -> str:
    """An inline SVG: one horizontal bar per system with its 95 % CI whisker."""
    rows = [r for r in lb["rows"] if r["values"].get(output) is not None]
    hib = lb["higher_is_better"][output]
    desc = lb.get("descriptions", {}).get(output, "")
    caption = f"<figcaption>{esc(output)} {_arrow(hib)}<span>{esc(desc)}</span></figcaption>"
    if not rows:
        return f'<figure class="chart">{caption}<p class="note">no values</p></figure>'
    lows, highs = [], []
    for r in rows:
        v = r["values"][output]
        ci = (r.get("ci") or {}).get(output) or [v, v]
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
        v = r["values"][output]
        ci = (r.get("ci") or {}).get(output)
        name = r["system"] if len(r["system"]) <= 20 else r["system"][:19] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_h * 0.7:.1f}" text-anchor="end"><title>{esc(r["system"])}</title>{esc(name)}</text>')
        x0, x1 = sorted((zero, x(v)))
        parts.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 0.5):.1f}" height="{bar_h}" fill="#7aa5ef">'
                     f"<title>{esc(r['system'])}: {v:.4f}"
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


def render_page(
    lb: dict[str, Any], breakdowns: dict[str, list[dict[str, Any]]] | None = None, audio: list[AudioItem] | None = None
) -> str:
    """The whole page as a string."""
    st = lb.get("statistics", {})
    title = f"Leaderboard: {lb['suite']} v{lb['suite_version']}"
    meta = (
        f"{lb['n_utterances']} utterances · manifest sha256 <code>{esc(lb['manifest_sha256'][:16])}…</code> · "
        f"ties: {esc(lb['tie_method'])} · urgentbench {esc(lb['urgentbench'])}"
    )
    explain = (
        "Cells show <i>system mean (rank)</i> with its 95 % confidence interval below "
        f"({esc(st.get('ci_method', stats.CI_METHOD))}, {esc(st.get('n_resamples', ''))} resamples, seed {esc(st.get('seed', ''))}). "
        "A category score is the mean of its metrics' ranks, the overall score the mean of the category scores "
        "(lower is better). Click a column header to sort. "
        f"<span class='sig'>†</span>: differs significantly from {esc(st.get('paired_reference') or 'the first system')} "
        f"({esc(st.get('paired_test', stats.TEST_METHOD))}, p &lt; {esc(st.get('alpha', stats.ALPHA))})."
    )
    from urgentbench.report.leaderboard import provenance_notes

    notes = "".join(f"<li>{esc(note)}</li>" for note in provenance_notes(lb, code="", strong=""))
    failures = [
        f"<li>{esc(row['system'])}: {esc(m)} failed on {n} utterance(s), e.g. {esc(row['failure_examples'].get(m, ''))}</li>"
        for row in lb["rows"] for m, n in row["failures"].items() if n
    ]
    sections = [
        f'<section id="ranking-section"><h2>Ranking</h2><p class="note">{explain}</p>{ranking_table(lb)}'
        + (f'<ul class="note provenance">{notes}</ul>' if notes else "")
        + (f"<p>Missing values (excluded from means, never counted as 0):</p><ul>{''.join(failures)}</ul>" if failures else "")
        + (f"<p>Not ranked (incomplete): {esc(', '.join(r['system'] for r in lb['incomplete']))}</p>" if lb["incomplete"] else "")
        + "</section>",
        f'<section id="systems"><h2>Systems</h2>{systems_table(lb)}</section>',
        '<section id="charts"><h2>Metrics with 95 % confidence intervals</h2><div class="charts">'
        + "".join(bar_chart(lb, o) for _, o, _ in _value_columns(lb))
        + "</div></section>",
    ]
    if breakdowns:
        parts = []
        for i, (tag, rows) in enumerate(breakdowns.items()):
            parts.append(f"<details{' open' if i == 0 else ''}><summary>by {esc(tag)}</summary>{breakdown_table(lb, tag, rows)}</details>")
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
    lb: dict[str, Any],
    out_dir: str | Path,
    breakdowns: dict[str, list[dict[str, Any]]] | None = None,
    audio: list[AudioItem] | None = None,
) -> Path:
    """Write ``leaderboard.html`` into ``out_dir`` (audio files must already be there)."""
    path = Path(out_dir) / "leaderboard.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(lb, breakdowns, audio), encoding="utf-8")
    return path
