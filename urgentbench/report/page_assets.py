"""The HTML leaderboard's inline style sheet and script (sorting, the utterance picker); no data in either."""

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
