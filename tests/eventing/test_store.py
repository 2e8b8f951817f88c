"""The SQLite store and the broker settings: versioning, bad files, parsing from strings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from autoscaler.eventing import BrokerSettings, SettingsError
from autoscaler.eventing.store import EventStore, NewEvent, StoreError


def test_store_uses_wal_and_refuses_another_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    EventStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version 99"):
        EventStore(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="cannot use as the broker store"):
        EventStore(path)


def test_due_orders_by_time_and_filters_by_trigger(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "b.db")
    with store.transaction():
        a = store.insert_event(NewEvent("ns", "b", "{}", None, ("ns/t1", "ns/t2")), now=10.0)
        store.record_retry(a, "ns/t1", attempts=1, next_at=12.0)
    assert [(r.trigger_key, r.attempts) for r in store.due(11.0, ["ns/t1", "ns/t2"], 10)] == [
        ("ns/t2", 0)
    ]
    assert [r.trigger_key for r in store.due(12.0, ["ns/t1"], 10)] == ["ns/t1"]
    assert store.next_due_at(["ns/t1", "ns/t2"], after=10.0) == 12.0
    store.close()


def test_settings_parse_from_strings_and_name_the_bad_key() -> None:
    settings = BrokerSettings.from_strings(
        {"port": "8180", "request_timeout_s": "2.5", "sqlite_synchronous": "normal"}
    )
    assert (settings.port, settings.request_timeout_s) == (8180, 2.5)
    assert BrokerSettings.from_strings({}) == BrokerSettings()
    with pytest.raises(
        SettingsError, match=r"max_inflight_deliveries: 0 is outside the allowed range \[1, 10000\]"
    ):
        BrokerSettings.from_strings({"max_inflight_deliveries": "0"})
    with pytest.raises(SettingsError, match="port: 'eighty' is not a int"):
        BrokerSettings.from_strings({"port": "eighty"})
    with pytest.raises(SettingsError, match="colour: unknown broker setting"):
        BrokerSettings.from_strings({"colour": "blue"})
