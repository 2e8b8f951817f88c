"""The broker's durable log: accepted events and per-(event, trigger) delivery state in SQLite.

An event is written together with one delivery row per Trigger it matched, in one committed
transaction, before the ingress answers 202. A delivery row moves through phases:

``subscriber`` (to the Trigger's subscriber) → ``dead_letter`` (to the dead-letter sink, after
the retries ran out) → one of the final states ``delivered``, ``dead_lettered``, ``dropped``,
``abandoned`` (its Trigger or Broker was deleted).

Times are wall-clock seconds (``Clock.wall()``) because they must survive a restart. The class
is synchronous and holds one connection; ``autoscaler.eventing.committer`` runs it on one
thread and groups concurrent writes into one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FINAL_STATES",
    "PENDING_STATES",
    "SCHEMA_VERSION",
    "DeliveryRow",
    "EventStore",
    "NewEvent",
    "StoreError",
]

SCHEMA_VERSION = 1
PENDING_STATES = ("subscriber", "dead_letter")
FINAL_STATES = ("delivered", "dead_lettered", "dropped", "abandoned")
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    broker TEXT NOT NULL,
    attributes TEXT NOT NULL,
    data BLOB,
    accepted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    event_seq INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
    trigger_key TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    error_code INTEGER,
    error_dest TEXT,
    error_data BLOB,
    finished_at REAL,
    PRIMARY KEY (event_seq, trigger_key)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_at);
"""


class StoreError(RuntimeError):
    """The database cannot be used (wrong schema version, not a database)."""


@dataclass(frozen=True)
class NewEvent:
    """An accepted event and the Triggers (``namespace/name``) it goes to."""

    namespace: str
    broker: str
    attributes_json: str
    data: bytes | None
    trigger_keys: tuple[str, ...]


@dataclass(frozen=True)
class DeliveryRow:
    """One pending delivery with the event it carries."""

    event_seq: int
    trigger_key: str
    state: str
    attempts: int
    next_attempt_at: float
    namespace: str
    broker: str
    attributes_json: str
    data: bytes | None
    accepted_at: float
    error_code: int | None
    error_dest: str | None
    error_data: bytes | None


class EventStore:
    """SQLite in WAL mode; every public method runs inside the caller's transaction."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ValueError(
                f"synchronous: {synchronous!r} is not one of {', '.join(SYNCHRONOUS_MODES)}"
            )
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so a batch is one transaction.
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{self.path}: cannot use as the broker store: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One committed transaction; rolled back if the body raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested unit inside a transaction: undone alone if its body raises."""
        self._db.execute("SAVEPOINT unit")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK TO unit")
            self._db.execute("RELEASE unit")
            raise
        self._db.execute("RELEASE unit")

    # -- writes ---------------------------------------------------------------------------

    def insert_event(self, event: NewEvent, now: float) -> int:
        """Store an accepted event and its pending deliveries, due at ``now``; its sequence."""
        cursor = self._db.execute(
            "INSERT INTO events (namespace, broker, attributes, data, accepted_at) VALUES (?, ?, ?, ?, ?)",
            (event.namespace, event.broker, event.attributes_json, event.data, now),
        )
        seq = int(cursor.lastrowid or 0)
        self._db.executemany(
            "INSERT INTO deliveries (event_seq, trigger_key, state, next_attempt_at) VALUES (?, ?, 'subscriber', ?)",
            [(seq, key, now) for key in event.trigger_keys],
        )
        return seq

    def record_retry(self, seq: int, trigger_key: str, attempts: int, next_at: float) -> None:
        """A failed attempt that will be retried at ``next_at``."""
        self._db.execute(
            "UPDATE deliveries SET attempts = ?, next_attempt_at = ? WHERE event_seq = ? AND trigger_key = ?",
            (attempts, next_at, seq, trigger_key),
        )

    def record_dead_letter(
        self,
        seq: int,
        trigger_key: str,
        *,
        now: float,
        error_code: int | None,
        error_dest: str,
        error_data: bytes | None,
    ) -> None:
        """Retries to the subscriber ran out: go to the dead-letter sink, keeping why."""
        self._db.execute(
            "UPDATE deliveries SET state = 'dead_letter', attempts = 0, next_attempt_at = ?, "
            "error_code = ?, error_dest = ?, error_data = ? WHERE event_seq = ? AND trigger_key = ?",
            (now, error_code, error_dest, error_data, seq, trigger_key),
        )

    def record_final(self, seq: int, trigger_key: str, state: str, now: float) -> None:
        """The delivery is over: ``delivered``, ``dead_lettered``, ``dropped`` or ``abandoned``."""
        if state not in FINAL_STATES:
            raise ValueError(f"state: {state!r} is not one of {', '.join(FINAL_STATES)}")
        self._db.execute(
            "UPDATE deliveries SET state = ?, finished_at = ? WHERE event_seq = ? AND trigger_key = ?",
            (state, now, seq, trigger_key),
        )

    def abandon(self, trigger_keys: Iterable[str], now: float) -> int:
        """Close the pending deliveries of deleted Triggers; how many were closed."""
        total = 0
        for key in trigger_keys:
            cursor = self._db.execute(
                "UPDATE deliveries SET state = 'abandoned', finished_at = ? "
                "WHERE trigger_key = ? AND state IN ('subscriber', 'dead_letter')",
                (now, key),
            )
            total += cursor.rowcount
        return total

    def prune(self) -> int:
        """Delete events whose deliveries are all final; how many events went."""
        cursor = self._db.execute(
            "DELETE FROM events WHERE NOT EXISTS (SELECT 1 FROM deliveries d "
            "WHERE d.event_seq = events.seq AND d.state IN ('subscriber', 'dead_letter'))"
        )
        return cursor.rowcount

    # -- reads ----------------------------------------------------------------------------

    def due(self, now: float, trigger_keys: Sequence[str], limit: int) -> list[DeliveryRow]:
        """Pending deliveries of the given Triggers due at ``now``, oldest first."""
        if not trigger_keys or limit <= 0:
            return []
        marks = ",".join("?" * len(trigger_keys))
        rows = self._db.execute(
            "SELECT d.event_seq, d.trigger_key, d.state, d.attempts, d.next_attempt_at, "
            "e.namespace, e.broker, e.attributes, e.data, e.accepted_at, "
            "d.error_code, d.error_dest, d.error_data "
            "FROM deliveries d JOIN events e ON e.seq = d.event_seq "
            f"WHERE d.state IN ('subscriber', 'dead_letter') AND d.next_attempt_at <= ? "
            f"AND d.trigger_key IN ({marks}) ORDER BY d.next_attempt_at, d.event_seq LIMIT ?",
            (now, *trigger_keys, limit),
        ).fetchall()
        return [DeliveryRow(*row) for row in rows]

    def next_due_at(
        self, trigger_keys: Sequence[str], *, after: float | None = None
    ) -> float | None:
        """When the earliest pending delivery of these Triggers is due (strictly after
        ``after`` when given), None when there is none."""
        if not trigger_keys:
            return None
        marks = ",".join("?" * len(trigger_keys))
        floor = float("-inf") if after is None else after
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE state IN ('subscriber', 'dead_letter') "
            f"AND next_attempt_at > ? AND trigger_key IN ({marks})",
            (floor, *trigger_keys),
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def state_counts(self) -> dict[str, int]:
        """How many deliveries are in each state."""
        rows = self._db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall()
        return {str(state): int(count) for state, count in rows}

    def event_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif row[0] != str(SCHEMA_VERSION):
            raise StoreError(
                f"{self.path}: schema version {row[0]} is not the supported {SCHEMA_VERSION}"
            )
