"""A pure-Python reader of SQLite database files, page by page, for files SQLite itself refuses.

SQLite refuses a file it finds damaged (a truncated file fails on the first statement), so
:class:`PageScan` reads rows directly from the file's pages, following SQLite's documented
file format (https://www.sqlite.org/fileformat2.html):

* the committed frames of the ``-wal`` file (salts and checksums verified) are laid over
  the main file, as SQLite would read them (:func:`read_wal`, :class:`PageImage`);
* every table is walked from its root page (``sqlite_master``); a page that cannot be read
  (beyond the end of a truncated file, wrong type, bad pointers) is skipped with its
  subtree;
* table leaf pages cut off from their table by a damaged parent page (and not on the
  free list) are read as well and given to the table whose column count their records
  have; they are yielded after the rows reached from the roots;
* :meth:`TableDefinition.validate` keeps a row only when its values have the column's
  declared type (TEXT, REAL, INTEGER), NOT NULL columns are set and its ``*_json`` columns
  hold valid JSON; a record that does not decode completely, or whose text is invalid, is
  counted in :attr:`PageScan.bad_rows`.

It never writes to the file. :mod:`urgentbench.store_maintenance` uses it to check and
recover the results store.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_MAGIC = b"SQLite format 3\x00"
_WAL_MAGIC = (0x377F0682, 0x377F0683)
_TABLE_LEAF, _TABLE_INTERIOR = 0x0D, 0x05
_ENCODINGS = {0: "utf-8", 1: "utf-8", 2: "utf-16-le", 3: "utf-16-be"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CREATE_INDEX = re.compile(r"\s*CREATE\s+(UNIQUE\s+)?INDEX\s", re.IGNORECASE)


class _Bad(Exception):
    """A page, cell or record that cannot be decoded."""


def _u16(data: bytes, pos: int) -> int:
    if pos + 2 > len(data):
        raise _Bad("out of bounds")
    return (data[pos] << 8) | data[pos + 1]


def _u32(data: bytes, pos: int) -> int:
    if pos + 4 > len(data):
        raise _Bad("out of bounds")
    return int.from_bytes(data[pos : pos + 4], "big")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """SQLite's big-endian variable-length integer at ``pos``: ``(value, position after it)``."""
    value = 0
    for i in range(9):
        if pos + i >= len(data):
            raise _Bad("varint out of bounds")
        byte = data[pos + i]
        if i == 8:
            return (value << 8) | byte, pos + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    raise _Bad("unreachable")  # pragma: no cover


def _wal_checksum(data: bytes, big_endian: bool, s0: int, s1: int) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def read_wal(path: Path) -> tuple[int, dict[int, bytes], int]:
    """The committed pages of a ``-wal`` file: ``(page size, page number -> bytes, database pages)``.

    Frames count only up to the last valid commit frame (salts and cumulative checksums
    verified, as SQLite does when it recovers a WAL). An empty or invalid file gives no pages.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return 0, {}, 0
    if len(data) < 32:
        return 0, {}, 0
    magic, _version, page_size, _seq, salt1, salt2, c0, c1 = struct.unpack(">8I", data[:32])
    if magic not in _WAL_MAGIC or page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
        return 0, {}, 0
    big = magic == 0x377F0683
    s0, s1 = _wal_checksum(data[:24], big, 0, 0)
    if (s0, s1) != (c0, c1):
        return page_size, {}, 0
    committed: dict[int, bytes] = {}
    pending: dict[int, bytes] = {}
    db_pages = 0
    pos = 32
    while pos + 24 + page_size <= len(data):
        pgno, commit, f1, f2, k0, k1 = struct.unpack(">6I", data[pos : pos + 24])
        if (f1, f2) != (salt1, salt2) or pgno == 0:
            break
        s0, s1 = _wal_checksum(data[pos : pos + 8], big, s0, s1)
        page = data[pos + 24 : pos + 24 + page_size]
        s0, s1 = _wal_checksum(page, big, s0, s1)
        if (s0, s1) != (k0, k1):
            break
        pending[pgno] = page
        if commit:
            committed.update(pending)
            pending.clear()
            db_pages = commit
        pos += 24 + page_size
    return page_size, committed, db_pages


class PageImage:
    """The pages of a database file with its WAL's committed frames laid over it (read-only)."""

    def __init__(self, path: Path):
        self.fh = open(path, "rb")  # noqa: SIM115 (closed by close())
        size = os.fstat(self.fh.fileno()).st_size
        head = self.fh.read(100)
        wal_size, self.wal, wal_pages = read_wal(Path(f"{path}-wal"))
        page_size = 0
        if len(head) == 100 and head.startswith(_MAGIC):
            page_size = _u16(head, 16)
            page_size = 65536 if page_size == 1 else page_size
        if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
            page_size = wal_size or 4096  # a damaged header: the WAL's, else SQLite's default
        self.page_size = page_size
        first = self.wal.get(1) or head
        reserved = first[20] if len(first) > 20 else 0
        self.usable = page_size - reserved
        self.encoding = _ENCODINGS.get(_u32(first, 56) if len(first) >= 60 else 1, "utf-8")
        file_pages = -(-size // page_size)
        header_pages = _u32(first, 28) if len(first) >= 32 else 0
        if wal_pages:
            self.n_pages = wal_pages
        else:
            self.n_pages = max(file_pages, min(header_pages, file_pages + 1_000_000))
        self.file_pages = size // page_size

    def page(self, n: int) -> bytes:
        """Page ``n`` (1-based).

        Raises:
            _Bad: For a page number outside the database or beyond the end of the file.
        """
        if n in self.wal:
            return self.wal[n]
        if n < 1 or n > self.n_pages:
            raise _Bad(f"page {n} outside the database")
        if n > self.file_pages:
            raise _Bad(f"page {n} beyond the end of the file")
        self.fh.seek((n - 1) * self.page_size)
        data = self.fh.read(self.page_size)
        if len(data) < self.page_size:
            raise _Bad(f"page {n} beyond the end of the file")
        return data

    def close(self) -> None:
        """Close the file."""
        self.fh.close()


@dataclass
class TableDefinition:
    """A table of the damaged file: its definition and columns."""

    name: str
    sql: str
    root: int | None
    #: Column names, declared types (upper case), NOT NULL flags, and the rowid alias column.
    names: list[str]
    types: list[str]
    not_null: list[bool]
    rowid_column: int | None

    def validate(self, values: list[Any]) -> tuple[Any, ...] | None:
        """The row as a tuple for INSERT, or None when a value cannot be right for its column."""
        if len(values) > len(self.names):
            return None
        values = list(values) + [None] * (len(self.names) - len(values))  # columns added later
        for i, value in enumerate(values):
            declared = self.types[i]
            if value is None:
                if self.not_null[i]:
                    return None
                continue
            if declared == "TEXT" and not isinstance(value, str):
                return None
            if declared == "REAL":  # SQLite stores integral REAL values as integers
                if isinstance(value, (bytes, str)):
                    return None
                values[i] = value = float(value)
            if declared == "INTEGER" and not isinstance(value, int):
                return None
            if self.names[i].endswith("_json"):
                try:
                    json.loads(value)
                except (TypeError, ValueError):
                    return None
        return tuple(values)


def _table_from_sql(name: str, sql: str, root: int | None) -> TableDefinition | None:
    """A :class:`TableDefinition` from its ``CREATE TABLE`` text (parsed by an in-memory SQLite)."""
    if not _IDENTIFIER.match(name) or name.startswith("sqlite_"):
        return None
    mem = sqlite3.connect(":memory:")
    try:
        mem.execute(sql)
        info = mem.execute(f"PRAGMA table_info({name})").fetchall()
    except sqlite3.DatabaseError:
        return None
    finally:
        mem.close()
    if not info:
        return None
    pk = [r for r in info if r[5]]
    alias = None
    if len(pk) == 1 and str(pk[0][2]).upper() == "INTEGER":
        alias = int(pk[0][0])
    return TableDefinition(
        name=name, sql=sql, root=root, names=[r[1] for r in info], types=[str(r[2]).upper() for r in info],
        not_null=[bool(r[3]) for r in info], rowid_column=alias,
    )


class PageScan:
    """Reads the rows of a (damaged) database file page by page; see the module docstring.

    Args:
        path: The database file (its ``-wal`` file, if any, is read beside it).
        fallback_schema: ``CREATE TABLE IF NOT EXISTS`` statements for tables ``sqlite_master``
            lost: their rows are still found by shape.

    Raises:
        OSError: When the file cannot be opened.
    """

    def __init__(self, path: Path, fallback_schema: str = ""):
        self.path = path
        self.fallback_schema = fallback_schema
        self.image = PageImage(path)
        self.bad_pages: set[int] = set()
        self.visited: set[int] = set()
        self.bad_rows: dict[str, int] = {}
        self._tables: dict[str, TableDefinition] | None = None
        self._indexes: list[str] = []
        self.free = self._freelist()

    def close(self) -> None:
        """Close the file."""
        self.image.close()

    def unreadable_pages(self) -> int:
        """Pages found damaged while reading, plus those missing from the end of a truncated file."""
        image = self.image
        missing = {n for n in range(image.file_pages + 1, image.n_pages + 1) if n not in image.wal}
        return len(self.bad_pages | missing)

    # ----------------------------------------------------------------- structure
    def _freelist(self) -> set[int]:
        image = self.image
        free: set[int] = set()
        try:
            trunk = _u32(image.page(1), 32)
        except _Bad:
            return free
        while trunk and trunk not in free:
            free.add(trunk)
            try:
                data = image.page(trunk)
                count = _u32(data, 4)
                for i in range(min(count, (image.usable - 8) // 4)):
                    free.add(_u32(data, 8 + 4 * i))
                trunk = _u32(data, 0)
            except _Bad:
                break
        return free

    def tables(self) -> dict[str, TableDefinition]:
        """The tables to recover, from ``sqlite_master`` (the current schema when it is unreadable)."""
        if self._tables is not None:
            return self._tables
        tables: dict[str, TableDefinition] = {}
        master_visited: set[int] = set()
        for _rowid, values in self._walk(1, master_visited, "sqlite_master"):
            if len(values) < 5:
                continue
            kind, name, _tbl, root, sql = values[:5]
            if kind == "table" and isinstance(name, str) and isinstance(sql, str) and isinstance(root, int):
                table = _table_from_sql(name, sql, root)
                if table is not None:
                    tables[name] = table
            elif kind == "index" and isinstance(sql, str) and _CREATE_INDEX.match(sql):
                self._indexes.append(sql)  # only CREATE [UNIQUE] INDEX: nothing else runs in the new store
        self.visited |= master_visited
        for statement in self.fallback_schema.split(";"):  # tables sqlite_master lost: rows by shape
            match = re.search(r"CREATE TABLE IF NOT EXISTS (\w+)", statement)
            if match and match.group(1) not in tables:
                table = _table_from_sql(match.group(1), statement.strip().replace(" IF NOT EXISTS", ""), None)
                if table is not None:
                    tables[table.name] = table
        self._tables = tables
        return tables

    def index_sql(self) -> list[str]:
        """The ``CREATE INDEX`` statements of the file (indexes SQLite creates itself excluded)."""
        self.tables()
        return list(self._indexes)

    # ----------------------------------------------------------------- pages
    def _payload(self, data: bytes, pos: int, size: int) -> bytes:
        image = self.image
        usable = image.usable
        limit = usable - 35
        if size <= limit:
            if pos + size > len(data):
                raise _Bad("cell out of bounds")
            return data[pos : pos + size]
        small = ((usable - 12) * 32 // 255) - 23
        local = small + ((size - small) % (usable - 4))
        if local > limit:
            local = small
        if pos + local + 4 > len(data):
            raise _Bad("cell out of bounds")
        out = bytearray(data[pos : pos + local])
        following = _u32(data, pos + local)
        seen: set[int] = set()
        while len(out) < size:
            if following == 0 or following in seen:
                raise _Bad("broken overflow chain")
            seen.add(following)
            page = image.page(following)
            out += page[4:usable][: size - len(out)]
            following = _u32(page, 0)
        self.visited |= seen
        return bytes(out)

    def _record(self, payload: bytes) -> list[Any]:
        header, pos = _varint(payload, 0)
        if header < 1 or header > len(payload):
            raise _Bad("bad record header")
        types = []
        while pos < header:
            serial, pos = _varint(payload, pos)
            types.append(serial)
        if pos != header:
            raise _Bad("bad record header")
        values: list[Any] = []
        pos = header
        for serial in types:
            if serial == 0:
                values.append(None)
                continue
            if serial in (8, 9):
                values.append(serial - 8)
                continue
            if 1 <= serial <= 6:
                n = (1, 2, 3, 4, 6, 8)[serial - 1]
            elif serial == 7:
                n = 8
            elif serial >= 12:
                n = (serial - 12) // 2
            else:
                raise _Bad("reserved serial type")
            if pos + n > len(payload):
                raise _Bad("record out of bounds")
            chunk = payload[pos : pos + n]
            pos += n
            if serial <= 6:
                values.append(int.from_bytes(chunk, "big", signed=True))
            elif serial == 7:
                values.append(struct.unpack(">d", chunk)[0])
            elif serial % 2 == 0:
                values.append(bytes(chunk))
            else:
                try:
                    values.append(chunk.decode(self.image.encoding))
                except UnicodeDecodeError as exc:
                    raise _Bad("invalid text") from exc
        return values

    def _leaf(self, number: int, data: bytes, table: str) -> Iterator[tuple[int, list[Any]]]:
        offset = 100 if number == 1 else 0
        cells = _u16(data, offset + 3)
        for i in range(cells):
            try:
                pointer = _u16(data, offset + 8 + 2 * i)
                size, pos = _varint(data, pointer)
                rowid, pos = _varint(data, pos)
                values = self._record(self._payload(data, pos, size))
            except _Bad:
                self.bad_rows[table] = self.bad_rows.get(table, 0) + 1
                continue
            yield rowid, values

    def _walk(self, root: int, visited: set[int], table: str) -> Iterator[tuple[int, list[Any]]]:
        """The ``(rowid, values)`` of a table b-tree, skipping pages that cannot be read."""
        stack = [root]
        while stack:
            number = stack.pop()
            if number in visited or number in self.visited:
                self.bad_pages.add(number)  # a loop: a damaged pointer
                continue
            visited.add(number)
            try:
                data = self.image.page(number)
                offset = 100 if number == 1 else 0
                kind = data[offset]
                if kind == _TABLE_INTERIOR:
                    cells = _u16(data, offset + 3)
                    children = [_u32(data, _u16(data, offset + 12 + 2 * i)) for i in range(cells)]
                    children.append(_u32(data, offset + 8))
                    stack.extend(reversed(children))
                    continue
                if kind != _TABLE_LEAF:
                    raise _Bad(f"page {number} is not a table page")
            except _Bad:
                self.bad_pages.add(number)
                continue
            yield from self._leaf(number, data, table)

    def rows(self) -> Iterator[tuple[str, list[Any], bool]]:
        """``(table, values, orphaned)`` of every readable row: from the table roots, then cut-off leaves."""
        tables = self.tables()
        for name, table in tables.items():
            if table.root is None:
                continue
            walked: set[int] = set()
            for rowid, values in self._walk(table.root, walked, name):
                yield name, self._with_rowid(table, rowid, values), False
            self.visited |= walked
        by_width: dict[int, list[TableDefinition]] = {}
        for table in tables.values():
            by_width.setdefault(len(table.names), []).append(table)
        for number in range(2, self.image.n_pages + 1):
            if number in self.visited or number in self.free or number in self.bad_pages:
                continue
            try:
                data = self.image.page(number)
            except _Bad:
                continue
            if data[0] != _TABLE_LEAF:
                continue
            for rowid, values in self._leaf(number, data, "?"):
                table = self._owner(values, by_width)
                if table is not None:
                    yield table.name, self._with_rowid(table, rowid, values), True
        self.bad_rows.pop("?", None)  # cells of unowned pages are not rows of any table

    @staticmethod
    def _with_rowid(table: TableDefinition, rowid: int, values: list[Any]) -> list[Any]:
        if table.rowid_column is not None and table.rowid_column < len(values) and values[table.rowid_column] is None:
            values = list(values)
            values[table.rowid_column] = rowid
        return values

    @staticmethod
    def _owner(values: list[Any], by_width: dict[int, list[TableDefinition]]) -> TableDefinition | None:
        exact = by_width.get(len(values), [])
        if len(exact) == 1:
            return exact[0]
        if exact:
            return None
        wider = [t for width, ts in by_width.items() if width > len(values) for t in ts]
        return wider[0] if len(wider) == 1 else None

    def count(self) -> dict[str, int]:
        """Rows a recovery would copy, per table (valid rows, duplicates included)."""
        tables = self.tables()
        counts = {name: 0 for name in tables}
        for name, values, _orphan in self.rows():
            if tables[name].validate(values) is not None:
                counts[name] += 1
        return counts


__all__ = ["PageImage", "PageScan", "TableDefinition", "read_wal"]
