"""Names from submissions made safe for the report formats: one line, LaTeX, Markdown.

Every name, description and metadata value on a leaderboard or table comes from a
submission; these functions keep it from breaking a table row or running as markup.
(HTML escaping is :func:`html.escape`, see :mod:`urgentbench.report.html`; CSV cells are
guarded by :func:`urgentbench.report.render.csv_text`.)
"""

from __future__ import annotations

import unicodedata

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
}
_MD_SPECIAL = set("\\`*_[]|#~")
_MD_ENTITY = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def one_line(text: str) -> str:
    """Control characters (newlines, tabs, ...) as single spaces: a name never spans lines."""
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in str(text))


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text (control characters become spaces)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in one_line(text))


def markdown_escape(text: str) -> str:
    """Escape Markdown's inline specials, ``|`` (it would split a table cell) and HTML.

    ``< > &`` become entities, so no raw HTML (``<script>``) reaches the page; backslash,
    backtick, ``* _ [ ] | # ~`` are backslash-escaped; control characters (a newline would
    end a table row) become spaces.
    """
    return "".join(
        _MD_ENTITY.get(ch) or (f"\\{ch}" if ch in _MD_SPECIAL else ch) for ch in one_line(text)
    )
