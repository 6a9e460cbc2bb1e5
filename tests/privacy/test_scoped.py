"""Scoped access: a handle bound to one user refuses every other user's conversation,
session, message and memory ids on every method, and leaves their data untouched; admin
operations go through the app's access hook."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from bruno_core.interfaces.memory import MemoryInterface
from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory import SyncMemory, build_memory
from bruno_memory.core.errors import AccessDenied, InvalidInput, NotFound
from bruno_memory.stack.admin import AccessRequest, AdminMemory
from bruno_memory.stack.facade import MemoryStack
from bruno_memory.stack.scoped import ScopedMemory
from bruno_memory.sync import SCOPED_SYNC_METHODS, SyncAdmin
from tests.factories.postgres import drop_schema

T0, T1 = datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc)
Attack = Callable[[ScopedMemory, "Bob"], Awaitable[Any]]


def say(text: str) -> Message:
    return Message(role=MessageRole.USER, content=text)


class Bob:
    """bob's ids: a conversation, a session of it (its own id), a message, a memory."""

    conversation: str
    session: str
    message: str
    memory: str


async def seed_bob(memory: MemoryStack) -> Bob:
    bob = Bob()
    session = await memory.create_session("bob")
    bob.session, bob.conversation = session.session_id, session.conversation_id
    message = say("bob's secret plan")
    await memory.store_message(message, bob.conversation)
    bob.message = str(message.id)
    entry = MemoryEntry(user_id="bob", content="bob likes chess", memory_type=MemoryType.FACT)
    await memory.store_memory(entry)
    bob.memory = str(entry.id)
    return bob


def bobs_message_in(conversation: str, bob: Bob) -> Message:
    return Message(id=bob.message, role=MessageRole.USER, content="overwritten")


ATTACKS: dict[str, list[Attack]] = {
    "store_message": [
        lambda h, b: h.store_message(say("x"), b.conversation),
        lambda h, b: h.store_message(bobs_message_in("alice-c", b), "alice-c"),
    ],
    "store_messages": [lambda h, b: h.store_messages([say("x")], b.conversation)],
    "retrieve_messages": [lambda h, b: h.retrieve_messages(b.conversation)],
    "search_messages": [lambda h, b: h.search_messages("secret", user_id="bob")],
    "clear_history": [lambda h, b: h.clear_history(b.conversation)],
    "store_memory": [
        lambda h, b: h.store_memory(MemoryEntry(user_id="bob", content="x",
                                                memory_type=MemoryType.FACT)),
        lambda h, b: h.store_memory(MemoryEntry(id=uuid.UUID(b.memory), user_id="alice",
                                                content="mine now",
                                                memory_type=MemoryType.FACT)),
    ],
    "retrieve_memories": [lambda h, b: h.retrieve_memories(MemoryQuery(user_id="bob"))],
    "delete_memory": [lambda h, b: h.delete_memory(b.memory)],
    "create_session": [lambda h, b: h.create_session("bob")],
    "get_session": [lambda h, b: h.get_session(b.session)],
    "end_session": [lambda h, b: h.end_session(b.session)],
    "get_context": [
        lambda h, b: h.get_context("alice", b.session),
        lambda h, b: h.get_context("alice", b.conversation),
        lambda h, b: h.get_context("bob", b.session),
    ],
    "get_statistics": [lambda h, b: h.get_statistics("bob")],
    "get_memory": [lambda h, b: h.get_memory(b.memory)],
    "retrieve_context": [lambda h, b: h.retrieve_context("bob", "secret")],
    "search_memories": [lambda h, b: h.search_memories("bob", "chess")],
    "clear_conversation": [lambda h, b: h.clear_conversation(b.conversation)],
    "forget_user": [lambda h, b: h.forget_user("bob")],
    "search": [
        lambda h, b: h.search("secret", user_id="bob"),
        lambda h, b: h.search("secret", conversation_id=b.conversation),
    ],
    "scan": [lambda h, b: h.scan("message", user_id="bob")],
    "search_phrase": [
        lambda h, b: h.search_phrase("secret plan", user_id="bob"),
        lambda h, b: h.search_phrase("secret plan", conversation_id=b.conversation),
    ],
    "messages_between": [
        lambda h, b: h.messages_between(T0, T1, user_id="bob"),
        lambda h, b: h.messages_between(T0, T1, conversation_id=b.conversation),
    ],
    "memories_between": [
        lambda h, b: h.memories_between("bob", T0, T1),
        lambda h, b: h.memories_between("alice", T0, T1, conversation_id=b.conversation),
    ],
    "list_sessions": [lambda h, b: h.list_sessions("bob")],
    "list_conversations": [lambda h, b: h.list_conversations("bob")],
    "page_messages": [lambda h, b: h.page_messages(b.conversation)],
    "branch_of": [lambda h, b: h.branch_of(b.conversation)],
    "audit_trail": [lambda h, b: h.audit_trail(user_id="bob")],
}
NO_IDS = {"flush"}  # takes no id: nothing of another user to name


def public_methods(cls: type) -> set[str]:
    return {n for n, v in inspect.getmembers(cls)
            if not n.startswith("_") and inspect.iscoroutinefunction(v)}


@pytest.fixture(params=["laptop", pytest.param("postgres-write-behind",
                                               marks=pytest.mark.postgres)])
async def memory(
    request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> AsyncIterator[MemoryStack]:
    """lru -> sqlite (write-through), or lru -> postgres behind write-behind (the façade
    checks ids itself there); both keep an audit trail."""
    durable: dict[str, Any] = {"kind": "sqlite", "path": str(tmp_path / "s.db")}
    if request.param != "laptop":
        durable = {"kind": "postgres", "dsn": request.getfixturevalue("postgres_dsn"),
                   "policy": "batched"}
    stack = await build_memory({"namespace": namespace, "audit": {},
                                "tiers": [{"kind": "lru"}, durable]})
    try:
        yield stack
    finally:
        await stack.close()
        if request.param != "laptop":
            await drop_schema(durable["dsn"], namespace)


async def bobs_view(memory: MemoryStack, bob: Bob) -> Any:
    await memory.flush()
    msgs = await memory.retrieve_messages(bob.conversation)
    mem = await memory.get_memory(bob.memory)
    session = await memory.get_session(bob.session)
    stats = await memory.get_statistics("bob")
    return ([(str(m.id), m.content) for m in msgs], mem and mem.content,
            session and session.is_active, stats["total_messages"], stats["memories"])


def test_every_method_is_covered() -> None:
    """The attack table names every public method of the handle."""
    assert set(ATTACKS) | NO_IDS == public_methods(ScopedMemory)


async def test_another_users_ids_are_refused_on_every_method(memory: MemoryStack) -> None:
    """Each call naming bob's data through alice's handle raises NotFound or InvalidInput,
    and bob's data is exactly as before."""
    bob = await seed_bob(memory)
    alice = memory.for_user("alice")
    await alice.store_message(say("alice's own"), "alice-c")
    before = await bobs_view(memory, bob)
    assert before[0] and before[1]
    for name, attacks in ATTACKS.items():
        for i, attack in enumerate(attacks):
            with pytest.raises((NotFound, InvalidInput)):
                await attack(alice, bob)
                pytest.fail(f"{name} attack {i} was not refused")
    assert await bobs_view(memory, bob) == before
    assert [m.content for m in await alice.retrieve_messages("alice-c")] == ["alice's own"]


async def test_the_handle_serves_its_own_user(memory: MemoryStack) -> None:
    """alice's handle reads and changes alice's data, and the trail names her as actor."""
    bob = await seed_bob(memory)
    alice = memory.for_user("alice")
    assert isinstance(alice, MemoryInterface)  # BaseAssistant(memory=alice) takes it
    ctx = await alice.get_context("alice")
    await alice.store_message(say("picnic on sunday"), ctx.conversation_id)
    entry = MemoryEntry(user_id="alice", content="likes picnics", memory_type=MemoryType.FACT)
    await alice.store_memory(entry)
    await alice.flush()
    assert [m.content for m in await alice.search_messages("picnic")] == ["picnic on sunday"]
    assert not await alice.search_messages("secret")  # bob's words are not in her search
    assert (await alice.get_memory(str(entry.id))) is not None
    page = await alice.scan("message")
    assert {m.user_id for m in page.items} == {"alice"}
    await alice.delete_memory(str(entry.id))
    assert await alice.get_memory(str(entry.id)) is None
    trail = await alice.audit_trail()
    assert trail and {r.event.subject for r in trail} == {"alice"}
    assert {r.event.actor for r in trail} == {"alice"}
    assert (await memory.get_memory(bob.memory)) is not None


async def test_admin_calls_go_through_the_hook(memory: MemoryStack) -> None:
    """The hook sees who asks what on whose data; a refusal raises AccessDenied and
    changes nothing; an allowed call is recorded with the admin as actor."""
    bob = await seed_bob(memory)
    asked: list[AccessRequest] = []

    async def hook(request: AccessRequest) -> bool:
        asked.append(request)
        return request.actor == "support:jane" and request.operation != "forget_user"

    denied = memory.admin(hook, actor="intern")
    with pytest.raises(AccessDenied, match="intern"):
        await denied.user("bob")
    jane = memory.admin(hook, actor="support:jane")
    with pytest.raises(AccessDenied):
        await jane.forget_user("bob")
    assert (await memory.get_memory(bob.memory)) is not None
    bobs = await jane.user("bob")
    await bobs.delete_memory(bob.memory)
    assert await memory.get_memory(bob.memory) is None
    assert len((await jane.scan("session")).items) >= 1
    assert (await jane.verify_audit()).ok
    records = await jane.audit_trail(user_id="bob")
    assert records[-1].event.actor == "support:jane"
    assert records[-1].event.action == "delete"
    assert [(r.actor, r.operation, r.user_id) for r in asked[:3]] == [
        ("intern", "user", "bob"), ("support:jane", "forget_user", "bob"),
        ("support:jane", "user", "bob")]

    def vague(request: AccessRequest) -> Any:
        return "yes"

    with pytest.raises(AccessDenied):  # a hook must answer True, exactly
        await memory.admin(vague, actor="x").health()


def test_the_blocking_twin(tmp_path: Path) -> None:
    """SyncMemory.for_user and .admin have a blocking twin of every method of the
    handles."""
    assert set(SCOPED_SYNC_METHODS) == public_methods(ScopedMemory)
    with SyncMemory.build({"tiers": [{"kind": "sqlite", "path": str(tmp_path / "s.db")}]}) as m:
        m.stack  # noqa: B018
        carol = m.for_user("carol")
        ctx = carol.get_context("carol")
        carol.store_message(say("hello"), ctx.conversation_id)
        assert [x.content for x in carol.retrieve_messages(ctx.conversation_id)] == ["hello"]
        with pytest.raises(NotFound):
            m.for_user("dave").retrieve_messages(ctx.conversation_id)
        admin = m.admin(lambda request: request.operation == "user", actor="ops")
        assert admin.user("carol").get_context("carol").messages[0].content == "hello"
        with pytest.raises(AccessDenied):
            admin.forget_user("carol")
    assert {n for n, v in inspect.getmembers(AdminMemory) if not n.startswith("_")
            and inspect.iscoroutinefunction(v)} <= set(dir(SyncAdmin))
