"""Property tests of the context builder's guarantees (Hypothesis, against a fake facade).

- the result never exceeds ``max_tokens`` by its counter;
- the system prompt and pinned items are always present, first and in order; if they
  alone exceed the budget the build fails with ``InvalidInput``;
- the recent window is a chronological, contiguous suffix of the conversation (pinned
  messages aside), with at least the latest ``min_recent`` turns when they fit;
- no message twice, and every message taken from the store is verbatim.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bruno_core.models import MemoryEntry, MemoryMetadata, MemoryType, Message, MessageRole
from bruno_llm.base.token_counter import SimpleTokenCounter, TokenCounter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bruno_memory.core.errors import InvalidInput
from bruno_memory.managers.context import BuiltContext, ContextBuilder, Shares, default_counter
from tests.managers.fake import FakeMemory

WORDS = ["picnic", "bread", "dog", "paris", "guitar", "tuesday", "blue", "the", "a", "we"]

sentences = st.lists(st.sampled_from(WORDS), min_size=1, max_size=40).map(" ".join)
texts = st.lists(sentences, min_size=0, max_size=40)
counters = st.sampled_from(["cl100k", "simple"])


def counter_of(name: str) -> TokenCounter:
    return default_counter() if name == "cl100k" else SimpleTokenCounter()


class PerListCounter(SimpleTokenCounter):
    """A counter whose list total adds 3 tokens (reply priming), not a plain sum."""

    def count_messages_tokens(self, messages: list[Message]) -> int:
        return super().count_messages_tokens(messages) + 3


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "texts": draw(texts),
        "other": draw(st.lists(sentences, max_size=10)),
        "system": draw(st.one_of(st.none(), sentences)),
        "pinned": draw(st.lists(sentences, max_size=3)),
        "pin_from_conversation": draw(st.booleans()),
        "memories": draw(st.lists(sentences, max_size=5)),
        "max_tokens": draw(st.integers(min_value=1, max_value=700)),
        "min_recent": draw(st.integers(min_value=0, max_value=8)),
        "strategy": draw(st.sampled_from(["adaptive", "fixed", "recent"])),
        "scope": draw(st.sampled_from(["conversation", "user"])),
        "density": draw(st.sampled_from([0.0, 0.5, 1.0])),
        "shares": draw(
            st.tuples(*[st.sampled_from([0.0, 0.1, 0.5, 1.0])] * 4).map(lambda t: Shares(*t))
        ),
        "query": draw(st.one_of(st.none(), sentences)),
        "counter": draw(st.sampled_from(["cl100k", "simple", "per-list"])),
    }


def run(s: dict[str, Any]) -> tuple[FakeMemory, list[Message], list[Message], Any]:
    memory = FakeMemory()
    conv = memory.add("ada", "c1", s["texts"])
    memory.add("ada", "c2", s["other"])
    for text in s["memories"]:
        memory.memories.append(
            MemoryEntry(
                content=text,
                memory_type=MemoryType.FACT,
                user_id="ada",
                metadata=MemoryMetadata(importance=0.5),
            )
        )
    pinned = [Message(role=MessageRole.SYSTEM, content=t) for t in s["pinned"]]
    if s["pin_from_conversation"] and conv:
        pinned.append(conv[len(conv) // 2])
    counter: TokenCounter = (
        PerListCounter() if s["counter"] == "per-list" else counter_of(s["counter"])
    )
    builder = ContextBuilder(
        memory,
        counter,
        system_prompt=s["system"],
        min_recent=s["min_recent"],
        strategy=s["strategy"],
        scope=s["scope"],
        density=s["density"],
        shares=s["shares"],
    )

    async def go() -> BuiltContext | InvalidInput:
        try:
            return await builder.build(
                "ada", "c1", query=s["query"], max_tokens=s["max_tokens"], pinned=pinned
            )
        except InvalidInput as exc:
            return exc

    return memory, conv, pinned, (asyncio.run(go()), counter)


def pinned_cost(s: dict[str, Any], pinned: list[Message], counter: TokenCounter) -> int:
    sys = [Message(role=MessageRole.SYSTEM, content=s["system"])] if s["system"] else []
    return sum(counter.count_messages_tokens([m]) for m in [*sys, *pinned])


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(scenarios())
def test_never_over_budget_and_pinned_always_present(s: dict[str, Any]) -> None:
    """Within budget by the counter's own total; pinned first, in order, or InvalidInput."""
    _, _, pinned, (ctx, counter) = run(s)
    need = pinned_cost(s, pinned, counter)
    if isinstance(ctx, InvalidInput):
        assert need + (3 if s["counter"] == "per-list" else 0) > s["max_tokens"]
        assert "pinned" in str(ctx) and str(s["max_tokens"]) in str(ctx)
        return
    assert need <= s["max_tokens"]
    assert ctx.tokens == counter.count_messages_tokens(ctx.messages) <= s["max_tokens"]
    head = ctx.messages[: len(pinned) + (1 if s["system"] else 0)]
    if s["system"]:
        assert head[0].role == MessageRole.SYSTEM and head[0].content == s["system"].strip()
        head = head[1:]
    assert [m.id for m in head] == [m.id for m in pinned]


@SETTINGS
@given(scenarios())
def test_recent_window_is_a_chronological_suffix(s: dict[str, Any]) -> None:
    """The window is the conversation's newest messages (pinned aside), oldest first, with
    the latest min_recent turns whenever they fit after the pinned items."""
    _, conv, pinned, (ctx, counter) = run(s)
    if isinstance(ctx, InvalidInput):
        return
    pinned_ids = {m.id for m in pinned}
    rest = [m for m in conv if m.id not in pinned_ids]
    window_ids = {
        it.id for it in ctx.items if it.section == "recent" and it.reason != "section header"
    }
    window = [m for m in ctx.messages if str(m.id) in window_ids]
    assert [m.id for m in window] == [m.id for m in rest[len(rest) - len(window) :]]
    assert ctx.messages[len(ctx.messages) - len(window) :] == window  # the window ends it
    latest = rest[max(len(rest) - s["min_recent"], 0) :]
    fits = (
        pinned_cost(s, pinned, counter)
        + sum(counter.count_messages_tokens([m]) for m in latest)
        + (3 if s["counter"] == "per-list" else 0)
    )
    if fits <= s["max_tokens"]:
        assert len(window) >= len(latest)


@SETTINGS
@given(scenarios())
def test_no_item_twice_and_stored_messages_verbatim(s: dict[str, Any]) -> None:
    """No message id twice; every stored message in the context is unchanged; retrieved
    past messages are chronological among themselves and precede the window."""
    memory, _, _, (ctx, _) = run(s)
    if isinstance(ctx, InvalidInput):
        return
    ids = [m.id for m in ctx.messages]
    assert len(ids) == len(set(ids))
    stored = {m.id: m for held in memory.conversations.values() for m in held}
    for m in ctx.messages:
        if m.id in stored:
            assert m.content == stored[m.id].content and m.role == stored[m.id].role
    searched = [
        m
        for m in ctx.messages
        if any(
            it.id == str(m.id) and it.section == "search" and it.reason != "section header"
            for it in ctx.items
        )
    ]
    assert searched == sorted(searched, key=lambda m: m.timestamp)
    if s["scope"] == "conversation":
        assert all(m.conversation_id == "c1" for m in searched)
    if s["strategy"] == "recent":
        assert not searched and not any(it.section == "memories" for it in ctx.items)


@pytest.mark.parametrize("counter", ["cl100k", "simple"])
def test_items_add_up_to_the_total(counter: str) -> None:
    """explain()'s per-item tokens add up to ctx.tokens for an additive counter."""
    s = {
        "texts": [f"we talked about the picnic bread {i}" for i in range(30)],
        "other": [],
        "system": "be brief",
        "pinned": ["pinned note"],
        "pin_from_conversation": False,
        "memories": ["ada likes picnic bread"],
        "max_tokens": 300,
        "min_recent": 4,
        "strategy": "fixed",
        "scope": "conversation",
        "density": 0.5,
        "shares": Shares(),
        "query": "picnic",
        "counter": counter,
    }
    _, _, _, (ctx, _) = run(s)
    assert isinstance(ctx, BuiltContext)
    assert sum(it.tokens for it in ctx.items) == ctx.tokens
    assert {it.section for it in ctx.items} >= {"pinned", "memories", "search", "recent"}
