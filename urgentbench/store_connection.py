"""The SQLite connection of the results store: every SQLite error becomes a one-line :class:`StoreError`.

A damaged file (SQLITE_CORRUPT, SQLITE_NOTADB) gets the command that recovers its readable
rows (:func:`recover_command`); an operational failure its SQLite text.
"""

from __future__ import annotations

import contextlib
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["StoreConnection", "StoreError", "is_damage", "recover_command", "store_error"]


class StoreError(RuntimeError):
    """The results store cannot be used: a damaged file (with the recovery command) or an SQLite failure.

    The message is one line naming the file.
    """


#: SQLite primary result codes meaning the file itself is damaged: SQLITE_CORRUPT, SQLITE_NOTADB.
_DAMAGED_CODES = (11, 26)


def is_damage(exc: BaseException) -> bool:
    """Whether an sqlite3 exception says the database file is damaged (corrupt, or not a database)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _DAMAGED_CODES
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def recover_command(path: str | Path) -> str:
    """The command that recovers the readable rows of the store ``path`` into a new one."""
    import shlex

    return f"urgentbench store recover --results-dir {shlex.quote(str(Path(path).parent))}"


def store_error(path: str | Path, exc: BaseException) -> StoreError | None:
    """The :class:`StoreError` for an sqlite3 exception on ``path``, or None for a programming error.

    A damaged file (SQLITE_CORRUPT, SQLITE_NOTADB) gets the recovery command; an operational
    failure (locked, disk full, cannot open, read-only) its SQLite text; constraint and
    interface errors are bugs and are not translated.
    """
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    if is_damage(exc):
        return StoreError(
            f"{path}: the results store is damaged (sqlite: {text}); copy every readable row into a new "
            f"store with `{recover_command(path)}` (the damaged file is kept beside it)"
        )
    if isinstance(exc, sqlite3.OperationalError):
        return StoreError(f"{path}: cannot use the results store (sqlite: {text})")
    return None


class StoreConnection:
    """An sqlite3 connection to a store file whose SQLite errors become :class:`StoreError`.

    The one place where SQLite's exceptions are translated: opening, every statement, every
    row fetched (SQLite may notice damage only when it reads the page holding a row),
    commits and the transaction context (``with connection:``).

    Args:
        path: The database file.
        readonly: Open it read-only (``mode=ro``; nothing is written, not even the WAL).
    """

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        with self.guard():
            if readonly:
                uri = "file:" + urllib.parse.quote(str(self.path.resolve())) + "?mode=ro"
                self.raw = sqlite3.connect(uri, uri=True, timeout=60)
            else:
                self.raw = sqlite3.connect(str(self.path), timeout=60)

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Translate sqlite3 errors raised inside the block (see :func:`store_error`)."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            error = store_error(self.path, exc)
            if error is None:
                raise
            raise error from exc

    def execute(self, sql: str, params: Any = ()) -> _Cursor:
        """``sqlite3.Connection.execute`` with translated errors."""
        with self.guard():
            return _Cursor(self, self.raw.execute(sql, params))

    def executemany(self, sql: str, rows: Iterable[Any]) -> _Cursor:
        """``sqlite3.Connection.executemany`` with translated errors."""
        with self.guard():
            return _Cursor(self, self.raw.executemany(sql, rows))

    def executescript(self, script: str) -> None:
        """``sqlite3.Connection.executescript`` with translated errors."""
        with self.guard():
            self.raw.executescript(script)

    def commit(self) -> None:
        """Commit, with translated errors."""
        with self.guard():
            self.raw.commit()

    def close(self) -> None:
        """Close the connection (a no-op when opening failed)."""
        raw = getattr(self, "raw", None)
        if raw is not None:
            with self.guard():
                raw.close()

    def __enter__(self) -> StoreConnection:
        self.raw.__enter__()
        return self

    def __exit__(self, *exc: Any) -> bool:
        with self.guard():
            return bool(self.raw.__exit__(*exc))


class _Cursor:
    """A cursor whose fetches translate sqlite3 errors like :class:`StoreConnection`."""

    def __init__(self, connection: StoreConnection, cursor: sqlite3.Cursor):
        self._connection = connection
        self._cursor = cursor

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        with self._connection.guard():
            return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        with self._connection.guard():
            return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        while True:
            with self._connection.guard():
                row = self._cursor.fetchone()
            if row is None:
                return
            yield row
