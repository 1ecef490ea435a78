"""The results store: one SQLite file per results directory, written by a single process.

One row per (suite, suite version, system, system-config hash, utterance, metric,
metric version, metric-options hash) holds the metric's outputs (JSON) or the error
text with whose failure it is (``failure``: the participant's or the metric's), and the
seconds it took. Rows of one utterance are written in one transaction,
so an interrupted run leaves either all or none of them; rerunning computes only what
is missing. A ``runs`` table records the provenance of every invocation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from urgentbench.store_connection import StoreConnection, StoreError, is_damage, recover_command, store_error

__all__ = [
    "FAILURE_KINDS", "LEGACY_SETUP_FAILURE", "METRIC", "PARTICIPANT", "SCHEMA", "ResultStore", "ScoreKey", "ScoreRow",
    "StoreConnection", "StoreError", "is_damage", "recover_command", "store_error",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    suite TEXT NOT NULL,
    suite_version TEXT NOT NULL,
    system TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    utt_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    metric_version TEXT NOT NULL,
    metric_config TEXT NOT NULL,
    result_json TEXT,
    error TEXT,
    seconds REAL NOT NULL,
    run_id INTEGER NOT NULL,
    failure TEXT,
    PRIMARY KEY (suite, suite_version, system, config_hash, utt_id, metric, metric_version, metric_config)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started TEXT NOT NULL,
    finished TEXT,
    suite TEXT NOT NULL,
    suite_version TEXT NOT NULL,
    command TEXT NOT NULL,
    provenance_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS systems (
    suite TEXT NOT NULL,
    suite_version TEXT NOT NULL,
    system TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    display_name TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    PRIMARY KEY (suite, suite_version, system, config_hash)
);
"""


#: ``failure`` of a row whose output is missing or unusable: the system's (participant's) failure.
PARTICIPANT = "participant"
#: ``failure`` of a row where the metric failed on a valid output (or the suite's own input
#: could not be rendered): not the participant's fault.
METRIC = "metric"
FAILURE_KINDS = (PARTICIPANT, METRIC)
#: How rows written before the ``failure`` column existed are classified (once, when the
#: store is opened): the runner wrote a participant's failure with this error prefix.
_LEGACY_PARTICIPANT_PREFIX = "no enhanced audio:"


@dataclass(frozen=True)
class ScoreKey:
    """Identifies what a score row belongs to, apart from the utterance."""

    suite: str
    suite_version: str
    system: str
    config_hash: str
    metric: str
    metric_version: str
    metric_config: str


@dataclass
class ScoreRow:
    """One metric computed (or failed) on one utterance.

    ``failure`` says whose failure an error row is: :data:`PARTICIPANT` (no usable output:
    missing, unreadable, wrong length or rate, NaN, silent, the system crashed) or
    :data:`METRIC` (the metric failed on a valid output). None on a row with a value. An
    error row written without a kind is taken as the metric's.
    """

    key: ScoreKey
    utt_id: str
    result: dict[str, Any] | None
    error: str | None
    seconds: float
    failure: str | None = None

    def __post_init__(self) -> None:
        if self.error is None:
            self.failure = None
        elif self.failure is None:
            self.failure = METRIC
        elif self.failure not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {self.failure!r}; use one of {', '.join(FAILURE_KINDS)}")


def _clean_json(value: Any) -> Any:
    """Replace NaN/Inf floats (not valid JSON) by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    return value



#: Error prefix of the rows older versions stored on every utterance when a metric could not be
#: set up (a corrupt model file, say). Such a failure is the environment's, not the
#: utterance's: the runner now stores nothing for it, and these rows are ignored (recomputed).
LEGACY_SETUP_FAILURE = "metric setup failed:"
_NOT_LEGACY_SETUP_FAILURE = f"AND (error IS NULL OR substr(error, 1, {len(LEGACY_SETUP_FAILURE)}) != '{LEGACY_SETUP_FAILURE}')"


class ResultStore:
    """SQLite-backed, resumable results store.

    Every SQLite error that means the file is damaged or unusable, when opening it or in
    any later query, is raised as a one-line :class:`StoreError` naming the file and the
    fix (``urgentbench store recover``, see :mod:`urgentbench.store_maintenance`).

    Args:
        path: The database file (created with its folder when missing).

    Raises:
        StoreError: When the file cannot be opened or is damaged.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = StoreConnection(self.path)
        try:
            # WAL + synchronous=FULL: a transaction is either wholly in the file or not at all,
            # whenever the process is killed (tested by killing writers mid-transaction)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self._migrate()
            self._db.commit()
        except BaseException:
            self._db.close()
            raise

    def _migrate(self) -> None:
        """Bring a store written by an older urgentbench up to the current schema, in place.

        Adds the ``failure`` column and classifies the error rows already stored: the older
        runner wrote a missing or unusable output as ``no enhanced audio: ...``; every other
        error was the metric's. Done once (in one transaction); later opens find the column.
        """
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(scores)")}
        if "failure" in columns:
            return
        with self._db:
            self._db.execute("ALTER TABLE scores ADD COLUMN failure TEXT")
            self._db.execute(
                "UPDATE scores SET failure = CASE WHEN substr(error, 1, ?) = ? THEN ? ELSE ? END "
                "WHERE error IS NOT NULL",
                (len(_LEGACY_PARTICIPANT_PREFIX), _LEGACY_PARTICIPANT_PREFIX, PARTICIPANT, METRIC),
            )

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_run(self, suite: str, suite_version: str, command: str, provenance: dict[str, Any]) -> int:
        """Record the start of a run and return its id."""
        cur = self._db.execute(
            "INSERT INTO runs (started, suite, suite_version, command, provenance_json) VALUES (?,?,?,?,?)",
            (_now(), suite, suite_version, command, json.dumps(provenance, sort_keys=True, default=str)),
        )
        self._db.commit()
        return int(cur.lastrowid)

    def finish_run(self, run_id: int) -> None:
        """Mark a run as finished."""
        self._db.execute("UPDATE runs SET finished=? WHERE run_id=?", (_now(), run_id))
        self._db.commit()

    def register_system(
        self, suite: str, suite_version: str, system: str, config_hash: str, display_name: str, metadata: dict
    ) -> None:
        """Record a system configuration (name shown on leaderboards, metadata)."""
        self._db.execute(
            "INSERT OR REPLACE INTO systems VALUES (?,?,?,?,?,?)",
            (suite, suite_version, system, config_hash, display_name, json.dumps(metadata, default=str)),
        )
        self._db.commit()

    def systems(self, suite: str, suite_version: str) -> list[dict[str, Any]]:
        """Registered system configurations of a suite version."""
        rows = self._db.execute(
            "SELECT system, config_hash, display_name, metadata_json FROM systems "
            "WHERE suite=? AND suite_version=? ORDER BY system, config_hash",
            (suite, suite_version),
        ).fetchall()
        return [
            {"system": s, "config_hash": h, "display_name": d, "metadata": json.loads(m)} for s, h, d, m in rows
        ]

    def suites(self) -> list[tuple[str, str]]:
        """``(suite, suite version)`` of every suite with a registered system, sorted."""
        rows = self._db.execute("SELECT DISTINCT suite, suite_version FROM systems ORDER BY suite, suite_version")
        return [(s, v) for s, v in rows.fetchall()]

    def stored_metrics(self, suite: str, suite_version: str) -> set[tuple[str, str, str]]:
        """``(metric, metric version, metric config)`` of every metric key with rows on a suite version."""
        rows = self._db.execute(
            "SELECT DISTINCT metric, metric_version, metric_config FROM scores WHERE suite=? AND suite_version=? "
            + _NOT_LEGACY_SETUP_FAILURE,
            (suite, suite_version),
        )
        return {(m, v, c) for m, v, c in rows.fetchall()}

    def done(self, key: ScoreKey, include_errors: bool = True) -> set[str]:
        """Utterance ids that already have a row for ``key`` (errors count unless excluded).

        Rows an older urgentbench wrote for a metric that could not be set up (an environment
        failure, see :data:`LEGACY_SETUP_FAILURE`) never count: they are recomputed.
        """
        sql = (
            "SELECT utt_id FROM scores WHERE suite=? AND suite_version=? AND system=? AND config_hash=? "
            "AND metric=? AND metric_version=? AND metric_config=? " + _NOT_LEGACY_SETUP_FAILURE
        )
        if not include_errors:
            sql += " AND error IS NULL"
        return {r[0] for r in self._db.execute(sql, _key_tuple(key))}

    def write(self, rows: Iterable[ScoreRow], run_id: int) -> None:
        """Write rows atomically (one transaction); existing rows for the same key are replaced."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO scores (suite, suite_version, system, config_hash, utt_id, metric, "
                "metric_version, metric_config, result_json, error, seconds, run_id, failure) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        r.key.suite,
                        r.key.suite_version,
                        r.key.system,
                        r.key.config_hash,
                        r.utt_id,
                        r.key.metric,
                        r.key.metric_version,
                        r.key.metric_config,
                        None if r.result is None else json.dumps(_clean_json(r.result), sort_keys=True),
                        r.error,
                        float(r.seconds),
                        run_id,
                        r.failure,
                    )
                    for r in rows
                ],
            )

    def rows(self, key: ScoreKey) -> list[ScoreRow]:
        """All rows stored for ``key``, ordered by utterance id (legacy set-up failures left out, as in :meth:`done`)."""
        out = []
        for utt_id, result, error, seconds, failure in self._db.execute(
            "SELECT utt_id, result_json, error, seconds, failure FROM scores WHERE suite=? AND suite_version=? "
            "AND system=? AND config_hash=? AND metric=? AND metric_version=? AND metric_config=? "
            + _NOT_LEGACY_SETUP_FAILURE + " ORDER BY utt_id",
            _key_tuple(key),
        ):
            out.append(ScoreRow(key, utt_id, None if result is None else json.loads(result), error, seconds, failure))
        return out

    def row_runs(self, key: ScoreKey) -> dict[str, int]:
        """Utterance id -> id of the run that wrote the row stored for ``key`` (for provenance)."""
        return {
            utt_id: int(run_id)
            for utt_id, run_id in self._db.execute(
                "SELECT utt_id, run_id FROM scores WHERE suite=? AND suite_version=? AND system=? AND config_hash=? "
                "AND metric=? AND metric_version=? AND metric_config=?",
                _key_tuple(key),
            )
        }

    def other_configs(self, key: ScoreKey) -> list[tuple[str, str, int]]:
        """Other (metric version, metric config) pairs stored for the same system and metric.

        Scores made with other metric options, another metric version or other model
        checkpoints live under their own key; this finds them, so that a leaderboard can say
        why a system has no scores for the current key instead of ranking mixed results.

        Returns:
            ``(metric_version, metric_config, n_rows)`` for each other key, most rows first.
        """
        rows = self._db.execute(
            "SELECT metric_version, metric_config, COUNT(*) FROM scores WHERE suite=? AND suite_version=? "
            "AND system=? AND config_hash=? AND metric=? AND NOT (metric_version=? AND metric_config=?) "
            "GROUP BY metric_version, metric_config ORDER BY COUNT(*) DESC",
            (key.suite, key.suite_version, key.system, key.config_hash, key.metric, key.metric_version, key.metric_config),
        ).fetchall()
        return [(v, c, n) for v, c, n in rows]

    def dump(self) -> list[tuple]:
        """Every score row without timing or run ids, sorted (to compare two stores)."""
        return sorted(
            self._db.execute(
                "SELECT suite, suite_version, system, config_hash, utt_id, metric, metric_version, "
                "metric_config, result_json, error FROM scores"
            ).fetchall()
        )

    def package_versions(
        self, suite: str, suite_version: str, systems: list[tuple[str, str]] | None = None
    ) -> dict[str, list[str]]:
        """Package -> the versions recorded by the runs whose scores are stored for a suite.

        Only runs that wrote score rows count (for ``systems``, a list of ``(system,
        config_hash)``, only rows of those). More than one version of a package means the
        stored values were computed with different library versions.
        """
        rows = self._db.execute(
            "SELECT DISTINCT run_id, system, config_hash FROM scores WHERE suite=? AND suite_version=?",
            (suite, suite_version),
        ).fetchall()
        wanted = None if systems is None else set(systems)
        run_ids = sorted({r[0] for r in rows if wanted is None or (r[1], r[2]) in wanted})
        versions: dict[str, set[str]] = {}
        for run_id in run_ids:
            found = self._db.execute("SELECT provenance_json FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if found is None:
                continue
            for name, version in json.loads(found[0]).get("packages", {}).items():
                if version is not None:
                    versions.setdefault(name, set()).add(str(version))
        return {name: sorted(v) for name, v in sorted(versions.items())}

    def runs(self) -> list[dict[str, Any]]:
        """All run records."""
        rows = self._db.execute(
            "SELECT run_id, started, finished, suite, suite_version, command, provenance_json FROM runs"
        ).fetchall()
        return [
            {
                "run_id": r[0],
                "started": r[1],
                "finished": r[2],
                "suite": r[3],
                "suite_version": r[4],
                "command": r[5],
                "provenance": json.loads(r[6]),
            }
            for r in rows
        ]


def _key_tuple(key: ScoreKey) -> tuple[str, ...]:
    return (
        key.suite,
        key.suite_version,
        key.system,
        key.config_hash,
        key.metric,
        key.metric_version,
        key.metric_config,
    )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
