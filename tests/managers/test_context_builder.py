"""The context builder's behaviour, against a fake of the facade methods it uses."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import pytest
from bruno_core.models import MemoryEntry, MemoryMetadata, MemoryType, Message, MessageRole
from bruno_llm.base.token_counter import SimpleTokenCounter

from bruno_memory.config.models import ContextConfig
from bruno_memory.core.errors import BrunoMemoryError, InvalidInput
from bruno_memory.managers.context import (
    BuiltContext,
    ContextBuilder,
    MessageCosts,
    budgeted_context,
    default_counter,
)
from tests.managers.fake import FakeMemory

CHAT = [f"small talk number {i} about the weather" for i in range(40)]


def memory_with_fact() -> tuple[FakeMemory, list[Message]]:
    memory = FakeMemory()
    texts = list(CHAT)
    texts[5] = "my sister Lena moved to Lisbon last spring"
    texts[6] = "oh nice, does she like it there?"
    conv = memory.add("ada", "c1", texts)
    memory.add("ada", "c1", ["where does Lena live now?"])
    memory.memories.append(
        MemoryEntry(
            content="Ada's sister is called Lena",
            memory_type=MemoryType.FACT,
            user_id="ada",
            metadata=MemoryMetadata(importance=0.9),
        )
    )
    return memory, conv + memory.conversations["c1"][-1:]


async def test_sections_in_order_with_the_default_query() -> None:
    """Pinned, memories, relevant past messages (verbatim), then the recent window; the
    query defaults to the latest user message."""
    memory, conv = memory_with_fact()
    note = Message(role=MessageRole.SYSTEM, content="Ada prefers short answers")
    ctx = await ContextBuilder(memory, system_prompt="You are Bruno.").build(
        "ada", "c1", max_tokens=300, pinned=[note]
    )
    assert ctx.query == "where does Lena live now?"
    assert ctx.messages[0].content == "You are Bruno." and ctx.messages[1].id == note.id
    sections = [it.section for it in ctx.items]
    assert sections == sorted(sections, key=["pinned", "memories", "search", "recent"].index)
    fact = conv[5]
    got = {m.id: m for m in ctx.messages}
    assert fact.id in got and got[fact.id].content == fact.content
    assert "Ada's sister is called Lena" in ctx.messages[2].content  # the memories message
    assert ctx.messages[-1].id == conv[-1].id  # ends with the latest turn
    table = ctx.explain()
    assert "search hit #" in table and "memory #1" in table and "system prompt" in table
    assert f"{ctx.tokens}/300 tokens" in table


async def test_pinned_over_budget_fails_clearly() -> None:
    """Pinned items are never dropped: if they alone exceed the budget, InvalidInput."""
    memory, _ = memory_with_fact()
    builder = ContextBuilder(memory, system_prompt="word " * 200)
    with pytest.raises(InvalidInput, match=r"pinned items alone cost .* max_tokens=100") as info:
        await builder.build("ada", "c1", max_tokens=100)
    assert isinstance(info.value, BrunoMemoryError)
    assert memory.calls == []  # refused before anything is read


@pytest.mark.parametrize("bad", [0, -5, True, 1.5, "2048"])
async def test_bad_budget_is_refused(bad: object) -> None:
    with pytest.raises(InvalidInput, match="max_tokens must be a positive integer"):
        await ContextBuilder(FakeMemory()).build("ada", "c1", max_tokens=bad)  # type: ignore[arg-type]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInput, match="min_recent"):
        ContextBuilder(FakeMemory(), min_recent=-1)
    with pytest.raises(InvalidInput, match="strategy"):
        ContextBuilder(FakeMemory(), strategy="best")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="density"):
        ContextBuilder(FakeMemory(), density=2.0)
    with pytest.raises(InvalidInput, match="expand"):
        ContextBuilder(FakeMemory(), expand=-1)


async def test_a_hit_the_window_reaches_is_paid_once() -> None:
    """A relevant message inside the recent window is not repeated in the search section."""
    memory = FakeMemory()
    conv = memory.add("ada", "c1", [*CHAT[:10], "the picnic is on tuesday", *CHAT[:3]])
    ctx = await ContextBuilder(memory).build("ada", "c1", query="picnic tuesday", max_tokens=400)
    ids = [m.id for m in ctx.messages]
    assert len(ids) == len(set(ids))
    hit = next(it for it in ctx.items if it.id == str(conv[10].id))
    assert hit.section == "recent"
    assert all(it.section != "search" for it in ctx.items)  # no header for nothing


async def test_scope_user_reaches_other_conversations() -> None:
    memory = FakeMemory()
    memory.add("ada", "c1", CHAT[:8])
    other = memory.add("ada", "c2", ["the guitar lesson is at five"])
    memory.add("bob", "c3", ["bob's guitar lesson is at six"])
    mine = await ContextBuilder(memory).build("ada", "c1", query="guitar", max_tokens=500)
    assert other[0].id not in {m.id for m in mine.messages}
    wide = await ContextBuilder(memory, scope="user").build(
        "ada", "c1", query="guitar", max_tokens=500
    )
    found = {m.id for m in wide.messages}
    assert other[0].id in found
    assert all("bob" not in m.content for m in wide.messages)  # the facade scopes the user


async def test_strategy_recent_retrieves_nothing() -> None:
    memory, conv = memory_with_fact()
    ctx = await ContextBuilder(memory, strategy="recent").build("ada", "c1", max_tokens=120)
    assert "search_messages" not in memory.calls and "retrieve_memories" not in memory.calls
    assert [m.id for m in ctx.messages] == [m.id for m in conv[len(conv) - len(ctx.messages) :]]


async def test_adaptive_lends_the_recent_share_to_search_for_the_past() -> None:
    """A query whose hits all precede the recent turns gets the recent window's share."""
    memory, _ = memory_with_fact()
    memory.add("ada", "c1", [f"Lena visited Lisbon museum number {i}" for i in range(30)])
    memory.add("ada", "c1", [f"filler {i}" for i in range(60)])
    fixed = await ContextBuilder(memory, strategy="fixed").build(
        "ada", "c1", query="Lena Lisbon", max_tokens=260
    )
    adaptive = await ContextBuilder(memory).build("ada", "c1", query="Lena Lisbon", max_tokens=260)
    assert any("lent to search" in n for n in adaptive.notes)
    assert adaptive.sections()["search"] > fixed.sections().get("search", 0)
    assert adaptive.sections()["recent"] < fixed.sections()["recent"]


class Summaries:
    def __init__(self, text: str) -> None:
        self.text = text
        self.asked: list[tuple[str, str, datetime | None]] = []

    async def summary(
        self, user_id: str, conversation_id: str, before: datetime | None
    ) -> Message | None:
        self.asked.append((user_id, conversation_id, before))
        return Message(role=MessageRole.SYSTEM, content=self.text)


async def test_a_summary_provider_plugs_in() -> None:
    """The summary goes after the pinned items; it is asked about what precedes the latest
    turns; one too big for its share is left out with a note."""
    memory, conv = memory_with_fact()
    provider = Summaries("Earlier: Ada talked about the weather and her sister.")
    ctx = await ContextBuilder(memory, system_prompt="hi", summaries=provider, min_recent=4).build(
        "ada", "c1", max_tokens=400
    )
    assert ctx.items[1].section == "summary" and ctx.messages[1].content == provider.text
    assert provider.asked == [("ada", "c1", conv[-4].timestamp)]
    big = Summaries("summary " * 500)
    ctx = await ContextBuilder(memory, summaries=big).build("ada", "c1", max_tokens=400)
    assert all(it.section != "summary" for it in ctx.items)
    assert any("summary left out" in n for n in ctx.notes)


class AwareSummaries(Summaries):
    """A question-aware provider: its ``summary`` takes the query."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.queries: list[str | None] = []
        self.sizes: list[int | None] = []

    async def summary(
        self, user_id: str, conversation_id: str, before: datetime | None,
        query: str | None = None, max_tokens: int | None = None,
    ) -> Message | None:
        self.queries.append(query)
        self.sizes.append(max_tokens)
        return await super().summary(user_id, conversation_id, before)


async def test_a_question_aware_summary_takes_only_what_the_originals_leave() -> None:
    """A provider taking ``query`` is given it; its summary never displaces a search hit or
    a recent turn: in a long conversation the originals fill the budget and it stays out,
    in a short one it comes in, after the pinned items."""
    memory, _ = memory_with_fact()
    provider = AwareSummaries("Earlier: Ada talked about the weather and her sister.")
    builder = ContextBuilder(memory, system_prompt="hi", summaries=provider)
    alone = await ContextBuilder(memory, system_prompt="hi").build(
        "ada", "c1", query="Lena Lisbon", max_tokens=300)
    ctx = await builder.build("ada", "c1", query="Lena Lisbon", max_tokens=300)
    assert [m.id for m in ctx.messages] == [m.id for m in alone.messages]
    assert all(it.section != "summary" for it in ctx.items)
    memory.add("ada", "c2", ["hello again", "hi Ada", "what did we say about Lena?"])
    short = await builder.build("ada", "c2", query="Lena", max_tokens=300)
    assert provider.queries[-1] == "Lena" and (provider.sizes[-1] or 0) > 200
    assert short.items[1].section == "summary" and short.messages[1].content == provider.text
    assert short.tokens <= 300


async def test_memories_are_ranked_and_rendered_in_one_message() -> None:
    memory = FakeMemory()
    memory.add("ada", "c1", ["what do I like to eat?"])
    for text, importance in [("Ada likes to eat pasta", 0.2), ("Ada likes to eat sushi", 0.9)]:
        memory.memories.append(
            MemoryEntry(
                content=text,
                memory_type=MemoryType.PREFERENCE
                if hasattr(MemoryType, "PREFERENCE")
                else MemoryType.FACT,
                user_id="ada",
                metadata=MemoryMetadata(importance=importance),
            )
        )
    ctx = await ContextBuilder(memory).build("ada", "c1", max_tokens=200)
    rendered = [m for m in ctx.messages if m.content.startswith("What you remember")]
    assert len(rendered) == 1
    lines = rendered[0].content.splitlines()[1:]
    assert lines == ["- Ada likes to eat sushi", "- Ada likes to eat pasta"]
    scores = [it.score for it in ctx.items if it.section == "memories" and it.score is not None]
    assert scores == sorted(scores, reverse=True)


async def test_any_bruno_llm_counter_can_be_passed() -> None:
    memory, _ = memory_with_fact()
    counter = SimpleTokenCounter(chars_per_token=2.0)
    ctx = await ContextBuilder(memory, counter).build("ada", "c1", max_tokens=150)
    assert ctx.tokens == counter.count_messages_tokens(ctx.messages) <= 150


async def test_budgeted_context_follows_the_config_section() -> None:
    memory, conv = memory_with_fact()
    config = ContextConfig(max_tokens=90, min_recent=2, strategy="recent")
    ctx = await budgeted_context(memory, "ada", "c1", config)
    assert isinstance(ctx, BuiltContext) and ctx.max_tokens == 90 and ctx.tokens <= 90
    assert [m.id for m in ctx.messages] == [m.id for m in conv[len(conv) - len(ctx.messages) :]]
    assert len(ctx.messages) >= 2


def test_default_counter_is_exact_cl100k() -> None:
    """len(encode(content)) + 4 a message, cl100k_base token counts."""
    counter = default_counter()
    assert counter.count_tokens("hello world") == 2
    assert counter.count_tokens("tiktoken is great!") == 6
    assert counter.count_tokens("<|endoftext|>") > 1  # special-token text counted as text
    msg = Message(role=MessageRole.USER, content="hello world")
    assert counter.count_messages_tokens([msg]) == 6


def test_default_counter_needs_no_network(tmp_path: object) -> None:
    """With sockets refused and an empty tiktoken cache, the default counter still counts."""
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from bruno_memory.managers.context import default_counter\n"
        "print(default_counter().count_tokens('hello world'))\n"
    )
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path), "DATA_GYM_CACHE_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"


class CountingCounter(SimpleTokenCounter):
    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def count_tokens(self, text: str) -> int:
        self.texts += 1
        return super().count_tokens(text)


async def test_costs_are_cached_and_the_same_in_a_thread() -> None:
    """Large batches are counted in a worker thread, with the same result; a message is
    counted once per (id, content)."""
    msgs = [Message(role=MessageRole.USER, content=f"message {i} " * 50) for i in range(40)]
    inline = MessageCosts(CountingCounter(), thread_chars=10**9)
    threaded = MessageCosts(CountingCounter(), thread_chars=0)
    assert await inline.many(msgs) == await threaded.many(msgs)
    counter = threaded.counter
    assert isinstance(counter, CountingCounter) and counter.texts == 40
    await threaded.many(msgs)
    assert counter.texts == 40  # cached
    changed = msgs[0].model_copy(update={"content": "edited"})
    await threaded.many([changed])
    assert counter.texts == 41  # same id, new content: counted again


async def test_a_huge_budget_reads_the_window_within_the_read_limit() -> None:
    """A budget larger than any conversation takes the whole conversation, in reads the
    facade accepts."""
    memory = FakeMemory()
    conv = memory.add("ada", "c1", [f"turn {i}" for i in range(500)])
    ctx = await ContextBuilder(memory).build("ada", "c1", max_tokens=200_000)
    assert [m.id for m in ctx.messages] == [m.id for m in conv]
    limits = [int(c.split(":")[1]) for c in memory.calls if c.startswith("retrieve_messages:")]
    assert max(limits) <= 10_000
