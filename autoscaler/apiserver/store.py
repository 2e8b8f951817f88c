"""The object store: SQLite (WAL) underneath, an in-memory copy on top, and watch fan-out.

Every write is one SQLite transaction that stores the object, appends the change to the
history table and advances the single global ``resourceVersion`` counter; it is committed
before the write is answered. With WAL and ``synchronous=NORMAL`` a committed transaction
survives the process being killed (``kill -9``); only a power loss can lose the last ones
(pass ``durable=True`` for ``synchronous=FULL``). The history keeps the last ``history``
changes (in memory and on disk) so watches can resume from a resourceVersion across restarts;
older ones answer 410 Expired, as etcd compaction does. Each history row keeps the object's
previous state too (``old``), so a watch resumed after a restart still sees an object leave or
enter a selector, and a paged list can be read as of its first page's resourceVersion.

Reads are served from memory. Watchers get changes pushed synchronously on the writing thread
(the event loop), so a watcher that subscribed before a write sees it, and never twice.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

StorageKey = tuple[str, str]  # (group, plural)
ObjKey = tuple[str, str]  # (namespace, name)

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS objects (
    grp TEXT NOT NULL, plural TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    rv INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (grp, plural, namespace, name)
);
CREATE TABLE IF NOT EXISTS changes (
    rv INTEGER PRIMARY KEY, type TEXT NOT NULL, grp TEXT NOT NULL, plural TEXT NOT NULL,
    namespace TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, old TEXT
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


def connect(path: Path, *, durable: bool = False) -> sqlite3.Connection:
    """Open the database with the pragmas the store uses (the benchmark uses the same)."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.executescript(SCHEMA_SQL)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(changes)")}
    if "old" not in columns:  # a data directory written before ``old`` was kept
        conn.execute("ALTER TABLE changes ADD COLUMN old TEXT")
    return conn


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change. ``old`` is the previous state (for selector transitions and
    snapshots): set for MODIFIED and DELETED, None for ADDED (and for a change whose previous
    state is not known: one loaded from a data directory that predates the ``old`` column)."""

    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    storage: StorageKey
    namespace: str
    name: str
    obj: dict[str, Any]
    old: dict[str, Any] | None = None


class Expired(Exception):
    """A resourceVersion older than the retained history."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


Matcher = Callable[[dict[str, Any]], bool]


class Watcher:
    """One watch: a queue of (type, object, rv) for one storage and namespace."""

    def __init__(self, storage: StorageKey, namespace: str | None, match: Matcher) -> None:
        self.storage = storage
        self.namespace = namespace
        self.match = match
        self.queue: asyncio.Queue[tuple[str, dict[str, Any], int]] = asyncio.Queue()

    def offer(self, ch: Change) -> None:
        if self.namespace is not None and ch.namespace != self.namespace:
            return
        now = self.match(ch.obj)
        if ch.type == "MODIFIED":
            before = ch.old is not None and self.match(ch.old)
            if now and before:
                self.queue.put_nowait(("MODIFIED", ch.obj, ch.rv))
            elif now:
                self.queue.put_nowait(("ADDED", ch.obj, ch.rv))
            elif before:
                self.queue.put_nowait(("DELETED", ch.obj, ch.rv))
        elif now:
            self.queue.put_nowait((ch.type, ch.obj, ch.rv))


class Store:
    """Objects by storage key, namespace and name; one resourceVersion counter."""

    def __init__(self, path: Path, *, history: int = 10_000, durable: bool = False) -> None:
        self.path = path
        self.history_size = history
        self._conn = connect(path, durable=durable)
        self._objects: dict[StorageKey, dict[ObjKey, tuple[dict[str, Any], str]]] = {}
        self._history: deque[Change] = deque()
        self._watchers: dict[StorageKey, set[Watcher]] = {}
        self._change_waiters: list[asyncio.Future[None]] = []
        self.rv = 0
        self.compacted = 0  # every change with rv > compacted is in the history
        self._load()

    # --- loading and closing ------------------------------------------------------------------

    def _load(self) -> None:
        c = self._conn
        for grp, plural, ns, name, body in c.execute(
            "SELECT grp, plural, namespace, name, body FROM objects"
        ):
            self._objects.setdefault((grp, plural), {})[(ns, name)] = (json.loads(body), body)
        row = c.execute("SELECT v FROM meta WHERE k='rv'").fetchone()
        self.rv = int(row[0]) if row else 0
        rows = c.execute(
            "SELECT rv, type, grp, plural, namespace, name, body, old FROM changes "
            "ORDER BY rv DESC LIMIT ?",
            (self.history_size,),
        ).fetchall()
        # Rows written before the ``old`` column existed: the previous state is the object's
        # previous row, when that is still in the history.
        last: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for rv, typ, grp, plural, ns, name, body, old_text in reversed(rows):
            obj = json.loads(body)
            key = (grp, plural, ns, name)
            old = None
            if typ != "ADDED":
                old = json.loads(old_text) if old_text is not None else last.get(key)
            last[key] = obj
            self._history.append(Change(rv, typ, (grp, plural), ns, name, obj, old))
        row = c.execute("SELECT v FROM meta WHERE k='compacted'").fetchone()
        self.compacted = int(row[0]) if row else 0
        if self._history:
            self.compacted = max(self.compacted, self._history[0].rv - 1)

    def close(self) -> None:
        self._conn.close()

    def meta_get(self, key: str) -> str | None:
        row = self._conn.execute("SELECT v FROM meta WHERE k=?", (key,)).fetchone()
        return str(row[0]) if row else None

    def meta_set(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, value))

    # --- reads --------------------------------------------------------------------------------

    def get(self, storage: StorageKey, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object (shared: do not modify it; use ``get_copy`` to edit)."""
        hit = self._objects.get(storage, {}).get((namespace, name))
        return hit[0] if hit else None

    def get_copy(self, storage: StorageKey, namespace: str, name: str) -> dict[str, Any] | None:
        hit = self._objects.get(storage, {}).get((namespace, name))
        return json.loads(hit[1]) if hit else None

    def items(
        self, storage: StorageKey, namespace: str | None = None
    ) -> Iterator[tuple[ObjKey, dict[str, Any], str]]:
        """(namespace, name), object and its JSON text, sorted by namespace then name."""
        objs = self._objects.get(storage, {})
        for key in sorted(objs):
            if namespace is None or key[0] == namespace:
                obj, text = objs[key]
                yield key, obj, text

    def items_at(
        self, storage: StorageKey, rv: int, namespace: str | None = None
    ) -> Iterator[tuple[ObjKey, dict[str, Any]]]:
        """(namespace, name) and object as they were at ``rv``, sorted as ``items``: the current
        objects with the changes after ``rv`` undone. ``Expired`` if the history no longer
        holds every change after ``rv`` (or a previous state among them is unknown)."""
        first: dict[ObjKey, Change] = {}
        for ch in self.since(storage, rv):
            first.setdefault((ch.namespace, ch.name), ch)
        snapshot = {
            key: hit[0] for key, hit in self._objects.get(storage, {}).items() if key not in first
        }
        for key, ch in first.items():
            if ch.type == "ADDED":
                continue  # it did not exist at rv
            if ch.old is None:
                raise Expired(rv, self.compacted + 1)
            snapshot[key] = ch.old
        for key in sorted(snapshot):
            if namespace is None or key[0] == namespace:
                yield key, snapshot[key]

    def count(self, storage: StorageKey, namespace: str | None = None) -> int:
        objs = self._objects.get(storage, {})
        if namespace is None:
            return len(objs)
        return sum(1 for k in objs if k[0] == namespace)

    # --- writes -------------------------------------------------------------------------------

    def put(self, storage: StorageKey, obj: dict[str, Any], *, created: bool) -> Change:
        """Store ``obj`` under a new resourceVersion (set in its metadata) and tell watchers."""
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        hit = self._objects.get(storage, {}).get((ns, name))
        old, old_text = (hit[0], hit[1]) if hit is not None and not created else (None, None)
        rv = self.rv + 1
        meta["resourceVersion"] = str(rv)
        text = json.dumps(obj, separators=(",", ":"))
        typ = "ADDED" if created else "MODIFIED"
        c = self._conn
        c.execute("BEGIN")
        try:
            c.execute(
                "INSERT OR REPLACE INTO objects (grp, plural, namespace, name, rv, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (storage[0], storage[1], ns, name, rv, text),
            )
            self._log(rv, typ, storage, ns, name, text, old_text)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        self.rv = rv
        self._objects.setdefault(storage, {})[(ns, name)] = (obj, text)
        return self._publish(Change(rv, typ, storage, ns, name, obj, old))

    def delete(self, storage: StorageKey, namespace: str, name: str) -> Change | None:
        """Remove an object; its DELETED event carries the last state with a new rv."""
        hit = self._objects.get(storage, {}).get((namespace, name))
        if hit is None:
            return None
        obj = json.loads(hit[1])
        rv = self.rv + 1
        obj["metadata"]["resourceVersion"] = str(rv)
        text = json.dumps(obj, separators=(",", ":"))
        c = self._conn
        c.execute("BEGIN")
        try:
            c.execute(
                "DELETE FROM objects WHERE grp=? AND plural=? AND namespace=? AND name=?",
                (storage[0], storage[1], namespace, name),
            )
            self._log(rv, "DELETED", storage, namespace, name, text, hit[1])
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        self.rv = rv
        del self._objects[storage][(namespace, name)]
        return self._publish(Change(rv, "DELETED", storage, namespace, name, obj, hit[0]))

    def _log(
        self,
        rv: int,
        typ: str,
        storage: StorageKey,
        ns: str,
        name: str,
        text: str,
        old_text: str | None,
    ) -> None:
        c = self._conn
        c.execute(
            "INSERT INTO changes (rv, type, grp, plural, namespace, name, body, old) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (rv, typ, storage[0], storage[1], ns, name, text, old_text),
        )
        c.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('rv', ?)", (str(rv),))
        # trim in batches: every 1,000 changes drop what fell out of the window
        if rv % 1000 == 0 and rv > self.history_size:
            cut = rv - self.history_size
            c.execute("DELETE FROM changes WHERE rv <= ?", (cut,))
            c.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('compacted', ?)", (str(cut),))

    def _publish(self, ch: Change) -> Change:
        self._history.append(ch)
        while len(self._history) > self.history_size:
            gone = self._history.popleft()
            self.compacted = gone.rv
        for w in list(self._watchers.get(ch.storage, ())):
            w.offer(ch)
        waiters, self._change_waiters = self._change_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        return ch

    # --- watching -----------------------------------------------------------------------------

    def subscribe(self, watcher: Watcher) -> None:
        self._watchers.setdefault(watcher.storage, set()).add(watcher)

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.storage, set()).discard(watcher)

    def next_change(self) -> asyncio.Future[None]:
        """A future done at the next change to any storage (the running loop's)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._change_waiters.append(fut)
        return fut

    def watcher_count(self) -> int:
        return sum(len(ws) for ws in self._watchers.values())

    def since(self, storage: StorageKey, rv: int) -> list[Change]:
        """Changes to ``storage`` after ``rv``, oldest first; ``Expired`` if some were dropped."""
        if rv < self.compacted:
            raise Expired(rv, self.compacted + 1)
        out = []
        for ch in reversed(self._history):
            if ch.rv <= rv:
                break
            if ch.storage == storage:
                out.append(ch)
        out.reverse()
        return out
