"""Maintenance of the results store: ``urgentbench store check`` and ``urgentbench store recover``.

:func:`check_store` runs SQLite's ``PRAGMA integrity_check`` on a read-only connection and
counts the stored rows per suite, system and metric.

:func:`recover_store` copies every readable row of a damaged store into a new one and
keeps the damaged file beside it (renamed ``results.sqlite.damaged-<UTC time>``, with its
``-wal`` file); it never deletes or writes the damaged file. SQLite itself refuses a file
it finds damaged (a truncated file fails on the first statement), so rows are read
directly from the file's pages, in pure Python, by :mod:`urgentbench.sqlite_pages`
(following SQLite's documented file format, https://www.sqlite.org/fileformat2.html):

* the committed frames of the ``-wal`` file (salts and checksums verified) are laid over
  the main file, as SQLite would read them;
* every table is walked from its root page (``sqlite_master``); a page that cannot be read
  (beyond the end of a truncated file, wrong type, bad pointers) is skipped with its
  subtree;
* table leaf pages cut off from their table by a damaged parent page (and not on the
  free list) are read as well and given to the table whose column count their records
  have; they are inserted after the rows reached from the roots, so they never replace
  one of those;
* a row is kept only when its record decodes completely, its text is valid, its values
  have the column's declared type (TEXT, REAL, INTEGER), NOT NULL columns are set and its
  ``*_json`` columns hold valid JSON. Everything else is counted as unreadable.

The new store is built in a temporary file next to the old one from the old file's own
table definitions, then opened as a :class:`~urgentbench.store.ResultStore` (which brings
an older schema up to date) and checked with ``PRAGMA integrity_check`` before the two
files are swapped by renaming.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from urgentbench.sqlite_pages import PageScan, read_wal
from urgentbench.store import SCHEMA, ResultStore
from urgentbench.store_connection import StoreConnection, StoreError, is_damage, recover_command

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- reports


@dataclass
class StoreCounts:
    """Rows stored per suite, suite version, system, config hash and metric."""

    #: ``(suite, suite_version, system, config_hash, metric, rows, failed rows)``.
    scores: list[tuple[str, str, str, str, str, int, int]] = field(default_factory=list)
    runs: int = 0
    systems: int = 0


@dataclass
class CheckReport:
    """What :func:`check_store` found."""

    path: Path
    #: ``PRAGMA integrity_check``'s lines (``["ok"]`` for a healthy file) or the error that stopped it.
    problems: list[str]
    #: The counts, when SQLite could read them.
    counts: StoreCounts | None = None
    #: For a damaged file: the rows a recovery would copy, per table (from the pages).
    readable: dict[str, int] | None = None

    @property
    def ok(self) -> bool:
        """True when ``PRAGMA integrity_check`` says ``ok``."""
        return self.problems == ["ok"]


@dataclass
class RecoveryReport:
    """What :func:`recover_store` did."""

    path: Path
    #: Where the damaged file was moved to (None when nothing was done).
    kept: Path | None
    #: Rows copied into the new store, per table.
    recovered: dict[str, int] = field(default_factory=dict)
    #: Rows found but not copied (undecodable, wrong types, duplicates), per table.
    unreadable: dict[str, int] = field(default_factory=dict)
    #: Of the recovered rows, those read from pages cut off from their table.
    orphaned: int = 0
    #: Pages that could not be read (damaged, or cut off a truncated file), and the file's page count.
    damaged_pages: int = 0
    pages: int = 0
    #: The integrity check found nothing wrong and ``force`` was not given: nothing was done.
    healthy: bool = False


# --------------------------------------------------------------------------- check


def integrity_problems(path: str | Path) -> list[str]:
    """``PRAGMA integrity_check`` of ``path`` on a read-only connection: ``["ok"]`` or the problems found.

    A file SQLite cannot read at all gives one line with SQLite's error.

    Raises:
        StoreError: When the file does not exist or cannot be opened.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no results store here")
    connection = StoreConnection(path, readonly=True)
    try:
        return [str(r[0]) for r in connection.raw.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise StoreError(f"{path}: cannot check the results store (sqlite: {exc})") from exc
        return [f"sqlite: {exc}"]
    finally:
        try:
            connection.close()
        except StoreError:
            pass


def store_counts(path: str | Path) -> StoreCounts:
    """Rows per suite, suite version, system, config hash and metric (and run and system records).

    Raises:
        StoreError: When SQLite cannot read them.
    """
    connection = StoreConnection(Path(path), readonly=True)
    try:
        scores = connection.execute(
            "SELECT suite, suite_version, system, config_hash, metric, COUNT(*), "
            "SUM(CASE WHEN error IS NULL THEN 0 ELSE 1 END) FROM scores "
            "GROUP BY suite, suite_version, system, config_hash, metric "
            "ORDER BY suite, suite_version, system, config_hash, metric"
        ).fetchall()
        runs = connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        systems = connection.execute("SELECT COUNT(*) FROM systems").fetchone()[0]
    finally:
        connection.close()
    return StoreCounts([tuple(r[:5]) + (int(r[5]), int(r[6] or 0)) for r in scores], int(runs), int(systems))


def check_store(path: str | Path) -> CheckReport:
    """Check a results store: integrity, counts, and for a damaged file what a recovery would save.

    Never writes to the file.

    Raises:
        StoreError: When there is no file or it cannot be opened.
    """
    path = Path(path)
    report = CheckReport(path, integrity_problems(path))
    try:
        report.counts = store_counts(path)
    except StoreError as exc:
        logger.debug("counts unreadable: %s", exc)
    if not report.ok:
        scan = _scan(path)
        try:
            report.readable = {name: n for name, n in scan.count().items()}
        finally:
            scan.close()
    return report


def _scan(path: Path) -> PageScan:
    """A page reader of the store ``path``, the current schema standing in for tables ``sqlite_master`` lost.

    Raises:
        StoreError: When the file cannot be opened.
    """
    try:
        return PageScan(path, fallback_schema=SCHEMA)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the results store ({exc})") from exc


# --------------------------------------------------------------------------- recover


def recover_store(path: str | Path, force: bool = False) -> RecoveryReport:
    """Copy every readable row of the store ``path`` into a new store; keep the damaged file beside it.

    Args:
        path: The store file (``results/results.sqlite``). Nothing else may use the store
            meanwhile.
        force: Rebuild it even when ``PRAGMA integrity_check`` finds nothing wrong.

    Returns:
        The report; ``healthy`` (and nothing done) for a sound file without ``force``.

    Raises:
        StoreError: When there is no file, or the new store cannot be written.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no results store here")
    if not force and integrity_problems(path) == ["ok"]:
        return RecoveryReport(path, None, healthy=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    kept = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while any(Path(f"{kept}{s}").exists() for s in ("", "-wal", "-shm")):
        kept = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
        n += 1
    tmp = path.with_name(f".{path.name}.recovering")
    for suffix in ("", "-wal", "-shm", "-journal"):  # a previous, interrupted recovery's output
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)

    scan = _scan(path)
    try:
        report = RecoveryReport(path, kept)
        _build(scan, tmp, report)
    finally:
        scan.close()
    report.damaged_pages, report.pages = scan.unreadable_pages(), scan.image.n_pages

    ResultStore(tmp).close()  # brings an older schema up to date, as any open does; closing empties the WAL
    problems = integrity_problems(tmp)
    if problems != ["ok"]:
        raise StoreError(f"{tmp}: the recovered store fails its integrity check ({problems[0]}); {path} is unchanged")
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            os.rename(f"{path}{suffix}", f"{kept}{suffix}")
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)  # empty after the checkpoint; SQLite recreates them
    os.rename(tmp, path)
    return report


def _build(scan: PageScan, tmp: Path, report: RecoveryReport) -> None:
    """Create the tables of ``scan``'s file in ``tmp`` and insert every valid row."""
    db = sqlite3.connect(str(tmp))
    try:
        tables = scan.tables()
        db.executescript("".join(f"{t.sql};\n" for t in tables.values()))
        db.commit()
        statements = {
            name: f"INSERT OR IGNORE INTO {name} ({', '.join(t.names)}) VALUES ({', '.join('?' * len(t.names))})"
            for name, t in tables.items()
        }
        for name in tables:
            report.recovered[name] = 0
            report.unreadable[name] = 0
        with db:
            for name, values, orphan in scan.rows():
                table = tables[name]
                row = table.validate(values)
                if row is None:
                    report.unreadable[name] += 1
                    continue
                if db.execute(statements[name], row).rowcount == 1:
                    report.recovered[name] += 1
                    report.orphaned += orphan
                else:
                    report.unreadable[name] += 1
            for name, count in scan.bad_rows.items():
                report.unreadable[name] = report.unreadable.get(name, 0) + count
        for sql in scan.index_sql():
            try:
                db.execute(sql)
            except sqlite3.DatabaseError as exc:  # e.g. a UNIQUE index the recovered rows violate
                logger.warning("index not recreated (%s): %s", exc, sql)
        db.commit()
    finally:
        db.close()


__all__ = [
    "CheckReport",
    "RecoveryReport",
    "StoreCounts",
    "check_store",
    "integrity_problems",
    "read_wal",
    "recover_command",
    "recover_store",
    "store_counts",
]
