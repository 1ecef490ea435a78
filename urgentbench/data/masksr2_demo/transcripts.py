"""The transcripts of the page's 'Improved Intelligibility' table, read from the checkout's ``index.md``.

The demo page's ``index.md`` is Markdown with HTML tables. The intelligibility table is the
one whose header has a ``Transcription`` column; each body row has the unprocessed clip in
an ``<audio><source src=...>`` cell and the clip's transcription as text in the
``Transcription`` cell. :func:`parse_transcripts` reads it with :mod:`html.parser`.
"""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

#: The file of the checkout the transcripts are read from.
INDEX_FILE = "index.md"
#: Header of the column holding the transcription, and of the column holding the input clip.
TRANSCRIPTION_HEADER = "Transcription"
UNPROCESSED_HEADER = "Unprocessed"


class TranscriptError(ValueError):
    """``index.md`` has no intelligibility table, or a row of it lacks its clip or transcript (one line)."""


class _Cell:
    def __init__(self) -> None:
        self.text: list[str] = []
        self.sources: list[str] = []

    @property
    def value(self) -> str:
        return " ".join("".join(self.text).split())


class _TableReader(HTMLParser):
    """Collects every table as a list of rows, each a list of cells (text and ``<source src>``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[tuple[int, list[_Cell]]]] = []
        self._depth = 0
        self._row: list[_Cell] | None = None
        self._cell: _Cell | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._depth += 1
            if self._depth == 1:
                self.tables.append([])
        elif self._depth != 1:
            return
        elif tag == "tr":
            self._row = []
            self.tables[-1].append((self.getpos()[0], self._row))
        elif tag in ("td", "th") and self._row is not None:
            self._cell = _Cell()
            self._row.append(self._cell)
        elif tag == "source" and self._cell is not None:
            src = dict(attrs).get("src")
            if src:
                self._cell.sources.append(src)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._depth = max(0, self._depth - 1)
            self._row = self._cell = None
        elif tag in ("td", "th"):
            self._cell = None
        elif tag == "tr":
            self._row = self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.text.append(data)


def parse_transcripts(path: str | os.PathLike) -> dict[str, str]:
    """The transcription of every clip of the 'Improved Intelligibility' table of ``index.md``.

    Args:
        path: The page's ``index.md`` (or the checkout folder holding it).

    Returns:
        Clip name (the unprocessed file's stem, e.g. ``2_simulated``) -> transcription
        (whitespace collapsed), in table order.

    Raises:
        TranscriptError: One line naming the file and the problem: the file is missing, no
            table has a ``Transcription`` column, or a row has no unprocessed clip, no (or an
            empty) transcription cell, or repeats a clip.
    """
    path = Path(path)
    if path.is_dir():
        path = path / INDEX_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(f"{path}: cannot read the page ({type(exc).__name__}: {exc})") from exc
    reader = _TableReader()
    reader.feed(text)
    reader.close()
    for table in reader.tables:
        if not table:
            continue
        header = [c.value for c in table[0][1]]
        if TRANSCRIPTION_HEADER in header:
            break
    else:
        raise TranscriptError(
            f"{path}: no table with a {TRANSCRIPTION_HEADER!r} column (the 'Improved Intelligibility' table)"
        )
    if UNPROCESSED_HEADER not in header:
        raise TranscriptError(f"{path}:{table[0][0]}: the intelligibility table has no {UNPROCESSED_HEADER!r} column")
    col_clip, col_text = header.index(UNPROCESSED_HEADER), header.index(TRANSCRIPTION_HEADER)
    transcripts: dict[str, str] = {}
    for line, cells in table[1:]:
        if not cells:
            continue
        if col_clip >= len(cells) or not cells[col_clip].sources:
            raise TranscriptError(f"{path}:{line}: intelligibility table row without an unprocessed clip")
        clip = PurePosixPath(cells[col_clip].sources[0]).stem
        if col_text >= len(cells) or not cells[col_text].value:
            raise TranscriptError(f"{path}:{line}: intelligibility table row of {clip!r} has no transcription")
        if clip in transcripts:
            raise TranscriptError(f"{path}:{line}: clip {clip!r} appears twice in the intelligibility table")
        transcripts[clip] = cells[col_text].value
    if not transcripts:
        raise TranscriptError(f"{path}:{table[0][0]}: the intelligibility table has no rows")
    return transcripts
