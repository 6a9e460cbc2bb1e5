"""The PyPI bruno-memory 0.1.5 under ``peers.py``' jobs, in an interpreter of its own.

    /path/to/venv/bin/python -I benchmarks/_legacy_peer.py

Run by ``peers.py --legacy-python PATH`` (never imported: this package and 0.1.5 share the
import name ``bruno_memory``; ``-I`` keeps this checkout off the path). Its first stdin line
is the store, as JSON: ``{"backend": "sqlite", "path": FILE}`` or ``{"backend": "postgres",
"dsn": URL, "schema": NAME, "pool": 10}`` (the schema exists; the caller drops it). Then
one line per round, ``{"writes": N, "round": R, "tag": T}``, answered by one JSON line on
stdout: the jobs' results as ``_peer_jobs.round_jobs`` returns them, or ``{"error": ...}``.
End of input closes the store.

How 0.1.5 answers the jobs, through its public calls only:

- messages: ``store_message`` (SQLite: the message carries its conversation; PostgreSQL:
  ``store_message(message, conversation_id)``, a transaction with a counter update).
- memories: ``store_memory``. The PostgreSQL backend gives each memory a new id.
- newest 20: neither backend has a "newest n" read (both return the oldest first), so the
  whole conversation is read (``get_messages`` / ``retrieve_messages``) and its last 20
  taken. The PostgreSQL backend hands out messages without their stored ids: they are
  recognised by their text.
- point get: ``get_memory`` (SQLite; it also writes ``last_accessed``). The PostgreSQL
  backend has no get by id: no figure.
- filtered memories: ``search_memories`` (SQLite) / ``retrieve_memories(user, type, n)``
  (PostgreSQL, which also writes ``last_accessed``).
- keyword search: ``search_messages(word, conversation_id=the user's, limit)``: neither
  backend scopes by user; the user owns one conversation here. Neither matches any word of
  a query (SQLite takes ``q`` as one substring, ``LIKE``; PostgreSQL needs all of its words,
  ``plainto_tsquery``), so the job's query ("<word> please", which this package answers by
  any word) found nothing: each word is asked alone, in order, the first with hits answers
  (here always the first: one call, in 0.1.5's favour).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _peer_jobs only

from _peer_jobs import T0, TYPES, Side, Workload, round_jobs, text
from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

NOTE_SQLITE = {
    "newest_20": "no newest-n read: the whole conversation is read, its last 20 kept",
    "keyword_search": "LIKE '%word%' over the conversation, one word of the query at a time "
    "until one has hits (the whole query as one substring finds nothing)",
}
NOTE_POSTGRES = {
    "newest_20": "no newest-n read: the whole conversation is read, its last 20 kept",
    "point_get": "the PostgreSQL backend has no get by id",
    "keyword_search": "plainto_tsquery over the conversation, one word of the query at a "
    "time until one has hits (it needs every word: the whole query finds nothing)",
}


class Legacy(Side):
    """0.1.5's SQLite or PostgreSQL backend."""

    def __init__(self, backend: Any, postgres: bool) -> None:
        self.backend, self.postgres = backend, postgres
        self.kind = f"bruno-memory 0.1.5 {'PostgreSQL' if postgres else 'SQLite'}"
        self.unsupported = frozenset({"point_get"}) if postgres else frozenset()
        self.notes = NOTE_POSTGRES if postgres else NOTE_SQLITE
        self.by_text: dict[str, str] = {}  # message text -> the id the job gave it
        self.memory_ids: dict[str, str] = {}  # the job's memory id -> the backend's
        self.conv_of: dict[str, str] = {}  # user -> their conversation

    async def conversation(self, user: str) -> str:
        conv = str(uuid.uuid4())
        await self.backend.create_session(user, uuid.UUID(conv) if self.postgres else conv)
        self.conv_of[user] = conv
        return conv

    async def put_message(self, user: str, conv: str, mid: str, i: int) -> None:
        content = text(i)
        self.by_text[content] = mid
        m = Message(
            id=uuid.UUID(mid),
            role=MessageRole.USER,
            content=content,
            timestamp=T0 + timedelta(milliseconds=i),
            conversation_id=conv,
        )
        if self.postgres:
            await self.backend.store_message(m, uuid.UUID(conv))
        else:
            await self.backend.store_message(m)

    async def put_memory(self, user: str, mid: str, i: int) -> None:
        entry = MemoryEntry(
            id=uuid.UUID(mid), content=text(i), memory_type=TYPES[i % len(TYPES)], user_id=user
        )
        stored = await self.backend.store_memory(entry)
        self.memory_ids[mid] = str(stored) if stored is not None else mid

    async def newest(self, user: str, conv: str, n: int) -> list[str]:
        if self.postgres:
            found = await self.backend.retrieve_messages(uuid.UUID(conv))
        else:
            found = await self.backend.get_messages(conversation_id=conv, limit=1_000_000)
        return [self.by_text.get(m.content, "?") for m in found[-n:][::-1]]

    async def get_memory(self, user: str, mid: str) -> str | None:
        found = await self.backend.get_memory(uuid.UUID(self.memory_ids.get(mid, mid)))
        return None if found is None else str(found.content)

    async def memories_of_type(self, user: str, kind: MemoryType, n: int) -> list[str]:
        if self.postgres:
            found = await self.backend.retrieve_memories(user, memory_type=kind, limit=n)
        else:
            q = MemoryQuery(user_id=user, memory_types=[kind], limit=n)
            found = await self.backend.search_memories(q)
        return [f"{m.user_id}|{m.memory_type.value}" for m in found]

    async def search(self, user: str, query: str, n: int) -> list[tuple[str, str]]:
        conv: Any = uuid.UUID(self.conv_of[user]) if self.postgres else self.conv_of[user]
        found: list[Message] = []
        for word in query.split():  # any word, as this package's search matches
            found = await self.backend.search_messages(word, conversation_id=conv, limit=n)
            if found:
                break
        return [(self.conv_of[user], m.content) for m in found]

    async def close(self) -> None:
        if self.postgres:
            await self.backend.close()
        else:
            await self.backend.disconnect()


async def open_store(spec: dict[str, Any]) -> Legacy:
    if spec["backend"] == "sqlite":
        from bruno_memory.backends.sqlite import SQLiteMemoryBackend
        from bruno_memory.base import SQLiteConfig

        sqlite = SQLiteMemoryBackend(SQLiteConfig(database_path=spec["path"]))
        await sqlite.connect()
        return Legacy(sqlite, postgres=False)
    from bruno_memory.backends.postgresql import PostgreSQLMemoryBackend
    from bruno_memory.base import PostgreSQLConfig

    url = urlsplit(spec["dsn"])
    config = PostgreSQLConfig(
        host=url.hostname or "127.0.0.1",
        port=url.port or 5432,
        database=unquote(url.path.lstrip("/")) or "postgres",
        username=unquote(url.username or "postgres"),
        password=unquote(url.password or ""),
        ssl_mode="disable",
        pool_min_size=spec["pool"],
        pool_max_size=spec["pool"],
        server_settings={"search_path": f'"{spec["schema"]}", public'},
    )
    postgres = PostgreSQLMemoryBackend(config)
    await postgres.initialize()
    return Legacy(postgres, postgres=True)


async def serve(out: Any) -> None:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    store = await open_store(json.loads(await reader.readline()))
    try:
        while line := await reader.readline():
            ask = json.loads(line)
            try:
                work = Workload(ask["writes"], ask["tag"])
                answer: dict[str, Any] = {
                    "kind": store.kind,
                    "notes": store.notes,
                    "jobs": await round_jobs(store, work, ask["round"]),
                }
            except Exception as exc:  # reported to the caller, who reports it
                answer = {"kind": store.kind, "error": f"{type(exc).__name__}: {exc}"}
            out.write(json.dumps(answer) + "\n")
            out.flush()
    finally:
        await store.close()


def main() -> int:
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr  # whatever 0.1.5 prints stays off the answers
    asyncio.run(serve(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
