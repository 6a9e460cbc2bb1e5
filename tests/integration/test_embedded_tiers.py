"""What only the embedded tiers promise: LRU bounds and clock, SQLite schema and plans."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bruno_core.models.context import SessionContext

from bruno_memory.config.loader import load_config
from bruno_memory.core.codec import key_of
from bruno_memory.core.ops import MISS, FillWindow, Put
from bruno_memory.testing.tier_contract import msg
from bruno_memory.tiers.base import TierContext
from bruno_memory.tiers.lru import LRUTier
from bruno_memory.tiers.sql.sqlite import SQLiteTier
from bruno_memory.tiers.sql.sqlite_schema import MIGRATIONS


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def lru(clock: FakeClock, **cfg: object) -> LRUTier:
    config = load_config({"tiers": [{"kind": "lru", **cfg}, {"kind": "sqlite"}]}).tiers[0]
    tier = LRUTier(config, TierContext(clock=clock))  # type: ignore[arg-type]
    await tier.open()
    return tier


async def test_lru_ttl_expires_on_the_injected_clock() -> None:
    """Entries expire when the injected clock passes the TTL; no sleeping."""
    clock = FakeClock()
    tier = await lru(clock, ttl="60s")
    s = SessionContext(user_id="u")
    await tier.write([Put(key_of(s), s)])
    clock.now += 59
    assert key_of(s) in await tier.get([key_of(s)])
    clock.now += 2
    assert key_of(s) not in await tier.get([key_of(s)])


async def test_lru_is_bounded_by_records_with_windows_weighed_by_messages() -> None:
    """maxsize counts records; a window weighs its messages; the oldest entries go first."""
    tier = await lru(FakeClock(), maxsize=10)
    await tier.write([FillWindow("big", tuple(msg("big", i) for i in range(8)), True)])
    sessions = [SessionContext(user_id="u") for _ in range(3)]
    await tier.write([Put(key_of(s), s) for s in sessions])
    assert await tier.window("big", 8) is MISS  # evicted to make room: 8 + 3 > 10
    assert len(await tier.get([key_of(s) for s in sessions])) == 3
    await tier.write([FillWindow("huge", tuple(msg("huge", i) for i in range(50)), True)])
    assert await tier.window("huge", 5) is MISS  # larger than the whole cache: not cached
    assert len(await tier.get([key_of(s) for s in sessions])) == 3  # and nothing evicted for it


async def test_lru_window_is_trimmed_to_its_size() -> None:
    """A window keeps the newest `window` messages and stops claiming completeness."""
    tier = await lru(FakeClock(), window=5)
    await tier.write([FillWindow("c", tuple(msg("c", i) for i in range(8)), True)])
    assert [r.message.content for r in await tier.window("c", 5)] == [
        f"message number {i}" for i in range(3, 8)
    ]
    assert await tier.window("c", 6) is MISS


async def test_sqlite_schema_is_versioned_wal_and_indexed(tmp_path: Path) -> None:
    """Opening applies every migration once, in WAL mode, and hot queries use indexes."""
    cfg = load_config({"tiers": [{"kind": "sqlite", "path": str(tmp_path / "m.db")}]}).tiers[0]
    tiers = [SQLiteTier(cfg) for _ in range(3)]  # type: ignore[arg-type]
    await asyncio.gather(*(t.open() for t in tiers))  # concurrent opens are safe
    for t in tiers:
        await t.aclose()
    db = sqlite3.connect(tmp_path / "m.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    def q(table: str, where: str, order: str = "") -> str:
        return f"SELECT * FROM {table} WHERE {where}" + (f" ORDER BY {order}" if order else "")

    plans = {
        "window": q("messages", "conversation_id = ?", "ts DESC, seq DESC"),
        "session by conversation": q("sessions", "conversation_id = ?", "started DESC"),
        "latest session": q("sessions", "user_id = ? AND is_active = 1", "started DESC"),
        "memories": q("memories", "user_id = ?", "importance DESC, updated DESC"),
        "messages by user": q("messages", "user_id = ?"),
    }
    for name, sql in plans.items():
        plan = " ".join(str(r[-1]) for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", ("x",)))
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, f"{name}: {plan}"
        assert "TEMP B-TREE" not in plan, f"{name} sorts: {plan}"


def test_a_memory_is_weighed_by_its_json_whether_or_not_the_durable_row_was_made() -> None:
    """The LRU weighs a memory as twice its JSON plus 700 bytes; the length the durable
    row's serialization remembered is the same as serializing it again, and a changed
    copy is weighed afresh."""
    from bruno_core.models.memory import MemoryEntry, MemoryType

    from bruno_memory.core.codec import memory_row
    from bruno_memory.core.records import fresh, model_json
    from bruno_memory.tiers.lru import footprint

    entry = MemoryEntry(content="kiwi " * 50, memory_type=MemoryType.FACT, user_id="u1")
    expected = 2 * len(model_json(entry)) + 700
    assert footprint(entry) == expected  # never serialized for a row: serialized here
    payload = memory_row(entry)[-1]
    assert footprint(entry) == 2 * len(payload) + 700 == expected
    other = fresh(entry)
    other.content = "kiwi"
    assert footprint(other) == 2 * len(model_json(other)) + 700 < expected


async def test_tombstone_guard_hashes_no_user_for_a_write_newer_than_every_tombstone(
    tmp_path: Path,
) -> None:
    """The SQLite guard against resurrecting writes probes the tombstones' versions first:
    a write newer than every tombstone computes no keyed hash of its user; an older one is
    still dropped, by a record's tombstone and by a purge of its user."""
    from bruno_memory.tiers.sql import text as _sql

    path = str(tmp_path / "guard.db")
    tier = SQLiteTier(SQLiteTier.config_model(name="s", path=path))
    await tier.open()
    await tier.aclose()
    db = sqlite3.connect(path, isolation_level=None)
    hashed: list[str] = []

    def pseudonym(key: str | None, user: str | None) -> str | None:
        hashed.append(str(user))
        return _sql.pseudonym(key, user)

    db.create_function("bruno_pseudonym", 2, pseudonym, deterministic=True)
    insert = ("INSERT INTO messages (id, conversation_id, user_id, role, ts, content, payload, "
              "version) VALUES (?, 'c', ?, 'user', 1, 'x', '{}', ?)")
    db.execute(insert, ("fresh", "ann", 10))
    assert hashed == []
    db.execute("INSERT INTO tombstones (scope, id, version) VALUES ('message', 'gone', 20)")
    db.execute(insert, ("gone", "ann", 15))
    key = db.execute("SELECT value FROM bruno_meta WHERE name = 'pseudonym_key'").fetchone()[0]
    db.execute("INSERT INTO tombstones (scope, id, version) VALUES ('purge', ?, 30)",
               (_sql.pseudonym(key, "bob"),))
    db.execute(insert, ("bobs", "bob", 25))
    db.execute(insert, ("late", "ann", 40))
    ids = sorted(r[0] for r in db.execute("SELECT id FROM messages"))
    db.close()
    assert ids == ["fresh", "late"]
    assert "bob" in hashed


def test_a_naive_timestamp_keys_as_the_same_instant_in_utc() -> None:
    """A naive datetime is read as UTC: the same key as the aware one, to the microsecond,
    before and after the epoch."""
    from datetime import datetime, timedelta, timezone

    from bruno_memory.core.records import timestamp_key

    for naive in (datetime(2026, 11, 27, 23, 59, 59, 999_999), datetime(1969, 7, 20, 20, 17),
                  datetime(1970, 1, 1) + timedelta(microseconds=1)):
        aware = naive.replace(tzinfo=timezone.utc)
        assert timestamp_key(naive) == timestamp_key(aware) == aware.timestamp()
        paris = aware.astimezone(timezone(timedelta(hours=1)))
        assert timestamp_key(paris) == timestamp_key(naive)


async def test_the_sqlite_writer_checkpoints_after_its_configured_wal_pages(tmp_path: Path) -> None:
    """``wal_autocheckpoint`` (10,000 pages unless configured) is the writer's setting."""
    pages = []
    for extra in ({}, {"wal_autocheckpoint": 2000}):
        config = load_config(
            {"tiers": [{"kind": "sqlite", "path": str(tmp_path / f"{len(pages)}.db"), **extra}]}
        ).tiers[0]
        tier = SQLiteTier(config)  # type: ignore[arg-type]
        await tier.open()
        try:
            (row,) = await tier._writer.execute_fetchall("PRAGMA wal_autocheckpoint")
            pages.append(row[0])
        finally:
            await tier.aclose()
    assert pages == [10_000, 2000]
