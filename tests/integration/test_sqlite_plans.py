"""Every user-scoped statement over SQLite memories seeks an index by the user: none scans
the table (schema 8 keeps one index per write less, not a slower purge or statistics)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from bruno_core.models.memory import MemoryQuery, MemoryType

from bruno_memory.tiers.sql import text as _sql
from bruno_memory.tiers.sql.durable import PURGE, PURGE_VERSIONED
from bruno_memory.tiers.sql.sqlite import DIALECT, SQLiteConfig, SQLiteTier

_FILTERED, _ = _sql.query_memories(
    DIALECT, MemoryQuery(user_id="u", memory_types=[MemoryType.FACT], limit=5), [], time.time()
)
STATEMENTS = {
    "purge": PURGE[2],
    "purge, versioned": PURGE_VERSIONED[2],
    "statistics": _sql.STATISTICS,
    "memories by type": _sql.MEMORIES_BY_TYPE,
    "memories of some types": _FILTERED,
}


@pytest.fixture
async def path(tmp_path: Path) -> Path:
    """A file holding the newest schema."""
    tier = SQLiteTier(SQLiteConfig(name="plans", path=str(tmp_path / "plans.db")))
    await tier.open()
    await tier.aclose()
    return tmp_path / "plans.db"


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_user_scoped_memory_statement_seeks_an_index(path: Path, name: str) -> None:
    sql = STATEMENTS[name]
    db = sqlite3.connect(path)
    db.create_function("bruno_pseudonym", 2, _sql.pseudonym, deterministic=True)
    plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, [None] * sql.count("?"))]
    db.close()
    on_memories = [step for step in plan if " memories" in step or " m " in step + " "]
    assert on_memories, plan
    assert all(step.startswith("SEARCH") and "(user_id=?" in step for step in on_memories), plan
