"""Search by meaning: the real all-MiniLM-L6-v2 model (loaded once per session) over the
shipped semantic stack, and pushed-down filters, isolation, deletion and model changes on
every semantic tier (with the hashing embedder)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryMetadata, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.config.loader import load_config
from bruno_memory.config.models import EmbeddingConfig
from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.queries import Neighbours, SearchText, SearchVector, VectorFilter
from bruno_memory.providers.embedding import create_embedding
from bruno_memory.reindex import reindex
from bruno_memory.stack import fusion as search
from bruno_memory.tiers.vector.base import ModelMismatch
from tests.factories import layers, opened
from tests.factories.semantic import HASHING, STACKS, TIERS

ROOT = Path(__file__).resolve().parents[2]
HISTORY = [
    "My flight to Lisbon leaves on Friday morning",
    "I adopted a puppy and named him Biscuit",
    "The quarterly report is due next Tuesday",
    "I have been learning to play the cello",
]


def _msg(text: str) -> Message:
    return Message(role=MessageRole.USER, content=text)


@pytest.fixture(scope="session")
def minilm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for tiers/semantic.yaml in a private folder."""
    return {"BRUNO_MEMORY_DATA": str(tmp_path_factory.mktemp("semantic"))}


@pytest.fixture
async def semantic_stack(tmp_path: Path, namespace: str) -> AsyncIterator[Any]:
    """The shipped tiers/semantic.yaml (real model), in its own files and namespace."""
    saved = {
        k: os.environ.get(k)
        for k in ("BRUNO_MEMORY_DB", "BRUNO_MEMORY_DATA", "BRUNO_MEMORY_NAMESPACE")
    }
    os.environ.update(
        BRUNO_MEMORY_DB=str(tmp_path / "m.db"),
        BRUNO_MEMORY_DATA=str(tmp_path / "d"),
        BRUNO_MEMORY_NAMESPACE=namespace,
    )
    try:
        cfg = load_config(ROOT / "tiers" / "semantic.yaml")
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    memory = await build_memory(cfg)
    yield memory
    await memory.close()


async def test_paraphrase_is_found_where_full_text_finds_nothing(
    semantic_stack: Any, tmp_path: Path
) -> None:
    """A question sharing no word with the stored message finds it through the semantic tier."""
    session = await semantic_stack.create_session("ana")
    await semantic_stack.store_messages([_msg(t) for t in HISTORY], session.conversation_id)
    await semantic_stack.flush()  # vectors are written behind
    question = "When is the trip to Portugal?"
    found = await semantic_stack.search_messages(question, user_id="ana", limit=2)
    assert found and found[0].content == HISTORY[0]
    durable = semantic_stack.tiers[1]
    assert await durable.query(SearchText(question, "ana", 5)) == []
    context = await semantic_stack.retrieve_context("ana", "a new dog in the family", limit=1)
    assert [m.content for m in context] == [HISTORY[1]]


async def test_memories_are_ranked_by_meaning_within_their_filters(semantic_stack: Any) -> None:
    """retrieve_memories(query_text=) ranks by meaning and still honours every filter."""

    def mem(text: str, kind: MemoryType, tags: list[str], importance: float = 1.0) -> MemoryEntry:
        return MemoryEntry(
            content=text,
            memory_type=kind,
            user_id="ana",
            metadata=MemoryMetadata(tags=tags, importance=importance),
        )

    cello = mem("Ana practises the cello every evening", MemoryType.FACT, ["music"])
    soup = mem("Ana is allergic to peanuts", MemoryType.FACT, ["health"])
    pref = mem("Ana prefers string instruments", MemoryType.EPISODIC, ["music"], 0.2)
    for m in (cello, soup, pref):
        await semantic_stack.store_memory(m)
    await semantic_stack.flush()
    q = MemoryQuery(user_id="ana", query_text="which musical instrument does she play?", limit=3)
    got = await semantic_stack.retrieve_memories(q)
    assert {m.id for m in got[:2]} == {cello.id, pref.id}
    facts = await semantic_stack.retrieve_memories(
        q.model_copy(update={"memory_types": [MemoryType.EPISODIC]})
    )
    assert [m.id for m in facts] == [pref.id]
    important = await semantic_stack.retrieve_memories(
        q.model_copy(update={"min_importance": 0.5, "tags": ["music"]})
    )
    assert [m.id for m in important] == [cello.id]
    strict = await semantic_stack.retrieve_memories(
        q.model_copy(update={"similarity_threshold": 0.99})
    )
    assert strict == []


async def test_deleted_and_forgotten_items_never_come_back(semantic_stack: Any) -> None:
    """Deleting a memory or forgetting a user removes it from semantic results and vectors."""
    m = MemoryEntry(
        content="Ana's passport number ends in 42",
        memory_type=MemoryType.FACT,
        user_id="ana",
        metadata=MemoryMetadata(),
    )
    await semantic_stack.store_memory(m)
    await semantic_stack.flush()
    q = MemoryQuery(user_id="ana", query_text="travel document identifier", limit=5)
    assert [x.id for x in await semantic_stack.retrieve_memories(q)] == [m.id]
    await semantic_stack.delete_memory(str(m.id))
    assert await semantic_stack.retrieve_memories(q) == []
    session = await semantic_stack.create_session("ana")
    await semantic_stack.store_messages([_msg(t) for t in HISTORY], session.conversation_id)
    await semantic_stack.forget_user("ana")
    await semantic_stack.flush()
    assert await semantic_stack.search_messages("holiday by plane", user_id="ana") == []
    vectors = semantic_stack.tiers[2]
    gone = SearchVector("holiday by plane", VectorFilter(user_id="ana"), 10)
    assert await vectors.query(gone) == []


async def test_concurrent_writes_share_embedding_batches(semantic_stack: Any) -> None:
    """Fifty concurrent single-message writes reach the model in far fewer than fifty calls."""
    session = await semantic_stack.create_session("bo")
    embedding = layers(semantic_stack.tiers[2])[-1].embedding  # under its write-behind
    before = embedding.batches
    await asyncio.gather(
        *(
            semantic_stack.store_message(_msg(f"note number {i}"), session.conversation_id)
            for i in range(50)
        )
    )
    await semantic_stack.flush()
    assert embedding.batches - before < 25
    assert len(await semantic_stack.search_messages("note number 7", user_id="bo", limit=50)) == 50


DIALOGUE = [  # one conversation, stored plainly (no parent_id), as BaseAssistant does
    "The neighbour's dog barks all night",
    "I have been learning to play the cello",
    "I need a new name badge for the conference",
    "The quarterly report is due next Tuesday",
    "Did you finally pick a name for the rescue dog?",
    "Yes! We went with Pepper, after her spotty coat",
    "My flight to Lisbon leaves on Friday morning",
    "Walked the dog along the river today",
    "Remember to water the tomatoes on the balcony",
    "The dog food brand changed its name",
    "The dentist moved my appointment to March",
    "A puppy class starts next week at the shelter",
]


async def test_the_reply_after_a_matching_message_is_found_by_its_position(
    semantic_stack: Any,
) -> None:
    """An answer sharing no word with the query ranks because it follows the message that
    matches, in a conversation stored without any parent_id."""
    session = await semantic_stack.create_session("ana")
    await semantic_stack.store_messages([_msg(t) for t in DIALOGUE], session.conversation_id)
    await semantic_stack.flush()
    query, answer = "name of the rescue dog", DIALOGUE[5]
    found = await semantic_stack.search_messages(query, user_id="ana", limit=4)
    assert answer in [m.content for m in found]
    alone = dataclasses.replace(search.DEFAULT, before=0, after=0)
    without = await semantic_stack.search(query, user_id="ana", limit=4, fusion=alone)
    assert answer not in [h.item.content for h in without]


async def test_neighbours_of_another_users_message_are_never_returned(
    semantic_stack: Any,
) -> None:
    """Two users' turns cannot share a conversation (one owner each: a batch naming two users
    is refused), so each user's search, expanded to neighbours, returns only theirs."""
    ana, bo = await semantic_stack.create_session("ana"), await semantic_stack.create_session("bo")

    def said(user: str, text: str) -> Message:
        return Message(role=MessageRole.USER, content=text, metadata={"user_id": user})

    turns = [
        said("ana", "Remind me about the dentist appointment"),
        said("bo", "Thursday at three in the afternoon suits me"),
        said("ana", "The dentist said to bring the x-rays"),
        said("bo", "My bicycle needs a new chain"),
    ]
    with pytest.raises(InvalidInput):
        await semantic_stack.store_messages(turns, ana.conversation_id)
    for user, session in (("ana", ana), ("bo", bo)):
        mine = [t for t in turns if t.metadata["user_id"] == user]
        await semantic_stack.store_messages(mine, session.conversation_id)
    await semantic_stack.flush()
    durable = semantic_stack.tiers[1]
    near = await durable.query(Neighbours((str(turns[0].id),), 0, 1))
    assert [n.record.user_id for n in near] == ["ana"]  # the expansion stays in her turns
    for user, query in (("ana", "dentist appointment"), ("bo", "bicycle chain")):
        found = await semantic_stack.search_messages(query, user_id=user, limit=10)
        assert found and {m.metadata["user_id"] for m in found} == {user}


async def test_batcher_coalesces_requests_made_while_a_batch_runs() -> None:
    """Requests arriving while the provider is busy go out together in the next call."""
    from bruno_memory.providers.embedding.cache import Batcher

    calls: list[list[str]] = []

    async def slow(texts: list[str]) -> list[list[float]]:
        calls.append(texts)
        await asyncio.sleep(0.01)
        return [[float(len(t))] for t in texts]

    batcher = Batcher(slow, max_batch=8)
    first = asyncio.create_task(batcher.embed(["a"]))
    await asyncio.sleep(0.001)
    rest = await asyncio.gather(*(batcher.embed([f"t{i}", "a"]) for i in range(10)))
    assert await first == [[1.0]] and rest[3] == [[2.0], [1.0]]
    assert [len(c) for c in calls] == [1, 5, 5, 3]  # 4 requests (8 texts) per call, deduplicated


async def test_embedding_cache_never_embeds_a_text_twice() -> None:
    """The (model, text) cache answers a repeated text without calling the provider."""
    embedding = create_embedding(EmbeddingConfig(provider="hashing", dimension=32))
    first = await embedding.embed_texts(["alpha", "beta", "alpha"])
    calls = embedding.batches
    again = await embedding.embed_texts(["beta", "alpha"])
    assert embedding.batches == calls and again == [first[1], first[0]]
    assert embedding.lexical_only


# -- every semantic tier, with the hashing embedder ---------------------------------------


vector_tier = opened("vector_tier", TIERS, "Each semantic tier kind, opened in its own namespace.")


T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _memory(text: str, user: str = "u1", **md: Any) -> MemoryEntry:
    kind = md.pop("kind", MemoryType.FACT)
    expires = md.pop("expires_at", None)
    return MemoryEntry(
        content=text,
        memory_type=kind,
        user_id=user,
        expires_at=expires,
        metadata=MemoryMetadata(**md),
    )


async def test_every_memory_filter_is_pushed_down(vector_tier: Any) -> None:
    """Types, categories, tags, confidence, importance and expiry filter the vector search."""
    from bruno_memory.core.codec import key_of
    from bruno_memory.core.ops import Put

    items = {
        "fact": _memory("coffee in the morning", category="food", tags=["drink"], confidence=0.9),
        "pref": _memory(
            "coffee without sugar", kind=MemoryType.EPISODIC, category="food", tags=["taste"]
        ),
        "weak": _memory("coffee maybe", confidence=0.2, importance=0.1, tags=["drink"]),
        "old": _memory("coffee last year", expires_at=T0),
        "other": _memory("coffee for someone else", user="u2"),
    }
    await vector_tier.write([Put(key_of(v), v) for v in items.values()])

    async def ids(**q: Any) -> set[str]:
        query = MemoryQuery(user_id=q.pop("user_id", "u1"), query_text="coffee", **q)
        hits = await vector_tier.query(SearchVector(
            "coffee", VectorFilter.memories(query, T0.timestamp() + 1), 10
        ))
        return {h.item.id for h in hits}

    name = {str(v.id): k for k, v in items.items()}
    assert {name[i] for i in await ids()} == {"fact", "pref", "weak"}
    assert {name[i] for i in await ids(include_expired=True)} == {"fact", "pref", "weak", "old"}
    assert {name[i] for i in await ids(memory_types=[MemoryType.EPISODIC])} == {"pref"}
    assert {name[i] for i in await ids(categories=["food"])} == {"fact", "pref"}
    assert {name[i] for i in await ids(tags=["drink", "none"])} == {"fact", "weak"}
    assert {name[i] for i in await ids(min_confidence=0.5, min_importance=0.5)} == {"fact", "pref"}
    assert {name[i] for i in await ids(user_id="u2")} == {"other"}


async def test_message_search_is_scoped_to_user_and_conversation(vector_tier: Any) -> None:
    """A vector search for one user or conversation never returns another's messages."""
    from bruno_memory.core.ops import Put
    from bruno_memory.core.records import message_record

    recs = [
        message_record(_msg("the red bicycle"), c, u)
        for c, u in (("c1", "u1"), ("c2", "u1"), ("c3", "u2"))
    ]
    await vector_tier.write([Put(k, r) for k, r in ((_key(r), r) for r in recs)])
    by_user = await vector_tier.query(SearchVector("red bicycle", VectorFilter.messages("u1"), 10))
    assert {h.item.id for h in by_user} == {recs[0].id, recs[1].id}
    in_c2 = VectorFilter.messages("u1", "c2")
    by_conv = await vector_tier.query(SearchVector("red bicycle", in_c2, 10))
    assert [h.item.id for h in by_conv] == [recs[1].id]


def _key(rec: Any) -> Any:
    from bruno_memory.core.ops import Key

    return Key("message", rec.id)


async def test_another_model_is_refused_until_reindex(tmp_path: Path) -> None:
    """Opening vectors of one model with another fails with a hint; reindex makes it work."""

    def cfg(dimension: int) -> dict[str, Any]:
        return {
            "namespace": "mm",
            "embedding": {"provider": "hashing", "dimension": dimension},
            "tiers": [
                {"kind": "sqlite", "path": str(tmp_path / "m.db")},
                {"kind": "qdrant", "path": str(tmp_path / "q")},
            ],
        }

    memory = await build_memory(cfg(64))
    session = await memory.create_session("cy")
    await memory.store_messages([_msg(t) for t in HISTORY], session.conversation_id)
    await memory.close()
    with pytest.raises(ModelMismatch, match="bruno-memory reindex"):
        await build_memory(cfg(128))
    done = await reindex(cfg(128), progress=False)
    assert done["records"] == len(HISTORY) and len(done["dropped"]) == 1
    memory = await build_memory(cfg(128))
    try:
        found = await memory.search_messages("puppy Biscuit", user_id="cy", limit=1)
        assert [m.content for m in found] == [HISTORY[1]]
    finally:
        await memory.close()


def test_stacks_cover_every_semantic_tier() -> None:
    """The factories put a stack over each semantic tier kind under the contract suite."""
    assert {s.id.split("->")[-1] for s in STACKS} == {"qdrant-edge", "chroma-path", "chroma-server"}


def test_reindex_command_re_embeds_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bruno-memory reindex CONFIG` re-embeds the stored messages and says how many."""
    import yaml

    from bruno_memory.cli import main

    cfg = {
        "namespace": "cli",
        "embedding": HASHING,
        "tiers": [
            {"kind": "sqlite", "path": str(tmp_path / "m.db")},
            {"kind": "chroma", "path": str(tmp_path / "c")},
        ],
    }

    async def fill() -> None:
        memory = await build_memory(cfg)
        session = await memory.create_session("di")
        await memory.store_messages([_msg(t) for t in HISTORY], session.conversation_id)
        await memory.close()

    asyncio.run(fill())
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["reindex", str(path)]) == 0
    assert f"re-embedded {len(HISTORY)} records" in capsys.readouterr().out


def test_bruno_llm_providers_are_built_from_the_yaml_settings() -> None:
    """`embedding: {provider: ollama, ...}` builds bruno-llm's provider with those settings."""
    cfg = EmbeddingConfig(
        provider="ollama",
        model="nomic-embed-text",
        settings={"base_url": "http://127.0.0.1:9", "timeout": 2.0},
    )
    embedding = create_embedding(cfg)
    assert embedding.get_model_name() == "nomic-embed-text"
    assert embedding.inner.base_url == "http://127.0.0.1:9" and embedding.inner.timeout == 2.0


def test_unknown_embedding_provider_is_a_config_error_naming_the_choices() -> None:
    """A misspelt provider fails at build time with the providers one can use."""
    from bruno_memory.core.errors import BrunoMemoryConfigError

    with pytest.raises(BrunoMemoryConfigError, match="hashing, local, ollama, openai"):
        create_embedding(EmbeddingConfig(provider="olama"))


async def test_clear_history_removes_vectors_and_keeps_system_ones_when_asked(
    vector_tier: Any,
) -> None:
    """ClearHistory deletes a conversation's vectors, keeping system messages if asked."""
    from bruno_memory.core.ops import ClearHistory, Put
    from bruno_memory.core.records import message_record

    system = message_record(Message(role=MessageRole.SYSTEM, content="be kind"), "c1", "u1")
    user = message_record(_msg("be quick"), "c1", "u1")
    await vector_tier.write([Put(_key(r), r) for r in (system, user)])
    await vector_tier.write([ClearHistory("c1", keep_system=True)])
    hits = await vector_tier.query(SearchVector("be", VectorFilter.messages("u1"), 10))
    assert [h.item.id for h in hits] == [system.id]
    await vector_tier.write([ClearHistory("c1", keep_system=False)])
    assert await vector_tier.query(SearchVector("be", VectorFilter.messages("u1"), 10)) == []
