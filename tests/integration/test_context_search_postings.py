"""The bound on a message search's work: the commonest words of a long query are left out
once the rarer ones' postings fill the budget (what makes a 100,000-message conversation's
context fast), and a small store is searched as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.tiers.sql.postings import TOKENIZE, Frequencies, Stems, within_postings
from bruno_memory.tiers.sql.sqlite import SQLiteTier


def test_the_rarest_words_are_kept_while_their_postings_fit() -> None:
    """Sorted by postings, words are kept until the next would pass the budget; the
    original order is kept; the rarest word is kept even alone over budget."""
    tokens = {w: [w] for w in ("the", "picnic", "rye", "park")}
    df = {"the": 900, "picnic": 40, "rye": 3, "park": 70}
    assert within_postings(["the", "picnic", "rye", "park"], tokens, df, 120) == [
        "picnic", "rye", "park"
    ]
    assert within_postings(["the", "picnic", "rye", "park"], tokens, df, 50) == ["picnic", "rye"]
    assert within_postings(["the", "park"], tokens, df, 10) == ["park"]
    assert within_postings(["zebra", "the"], {"zebra": [], "the": ["the"]}, df, 10) == ["zebra"]


def test_stems_are_the_tokens_the_index_makes() -> None:
    """Words are tokenized as the SQLite tier's FTS5 tables do (porter, case folded)."""
    stems = Stems(TOKENIZE)
    try:
        assert stems.of(["Talked", "happiness", "e-mail"]) == {
            "Talked": ["talk"], "happiness": ["happi"], "e-mail": ["e", "mail"]
        }
        assert stems.of(["again"]) == {"again": ["again"]}  # nothing left behind
    finally:
        stems.close()



def recorded(memory: Any) -> list[str]:
    """The statements the stack's one tier runs from now on (appended as they run)."""
    (tier,) = memory.tiers
    statements: list[str] = []
    fetch = tier._fetch

    async def counted(sql: str, params: Any, op: str) -> list[Any]:
        statements.append(sql)
        found: list[Any] = await fetch(sql, params, op)
        return found

    tier._fetch = counted
    return statements

async def test_a_long_query_is_searched_by_its_rare_words_past_the_budget(
    tmp_path: Path,
) -> None:
    """With a budget of 12 postings, a query holding a word of 30 messages is searched by
    its rare words: the messages holding them come first and the common word alone
    matches nothing; with the default budget the same store is searched by every word."""
    config = {"tiers": [{"kind": "sqlite", "path": str(tmp_path / "m.db")}]}
    memory: Any = await build_memory(config)
    async with memory:
        conv = (await memory.create_session("ann")).conversation_id
        texts = [f"weather report number {i}" for i in range(30)]
        texts += ["we talked about the picnic basket", "the basket was wicker"]
        await memory.store_messages(
            [Message(role=MessageRole.USER, content=t) for t in texts], conv
        )
        query = "weather picnic basket"
        every = await memory.search_messages(query, user_id="ann", limit=40)
        assert len(every) == 32  # every word searched: the weather reports match too
        (tier,) = memory.tiers
        assert isinstance(tier, SQLiteTier)
        tier.max_postings = 12
        bounded = await memory.search_messages(query, user_id="ann", limit=40)
        assert [m.content for m in bounded] == [
            "we talked about the picnic basket", "the basket was wicker"
        ]


def test_frequencies_are_used_for_their_ttl_then_read_again() -> None:
    """A frequency read is used until its ttl runs out; a term the index lacks counts 0."""
    now = [0.0]
    frequencies = Frequencies(ttl=30, clock=lambda: now[0])
    assert frequencies.known(["park", "rye"]) == ({}, ["park", "rye"])
    frequencies.learn(["park", "rye"], {"park": 70})
    assert frequencies.known(["rye", "park", "zebra"]) == ({"rye": 0, "park": 70}, ["zebra"])
    now[0] = 31.0
    assert frequencies.known(["park"]) == ({}, ["park"])


def test_stems_remember_words_and_answer_repeats() -> None:
    stems = Stems(TOKENIZE)
    try:
        first = stems.of(["Talked", "talked", "Talked"])
        assert first == {"Talked": ["talk"], "talked": ["talk"]}
        assert stems.of(["Talked", "parks"]) == {"Talked": ["talk"], "parks": ["park"]}
    finally:
        stems.close()


async def test_a_repeated_search_reads_no_frequency_again(tmp_path: Path) -> None:
    """The second search of the same words walks no posting list for their frequencies,
    and answers the same."""
    config = {"tiers": [{"kind": "sqlite", "path": str(tmp_path / "m.db")}]}
    memory: Any = await build_memory(config)
    async with memory:
        conv = (await memory.create_session("ann")).conversation_id
        texts = ["the picnic basket", "a wicker basket", "rain at the picnic"]
        await memory.store_messages(
            [Message(role=MessageRole.USER, content=t) for t in texts], conv
        )
        statements = recorded(memory)
        first = await memory.search_messages("picnic basket", user_id="ann")
        second = await memory.search_messages("basket picnic", user_id="ann")
        assert [m.content for m in first] == [m.content for m in second]
        assert len(first) == 3
        assert sum("messages_terms" in s for s in statements) == 1


async def test_live_messages_are_found_behind_a_full_list_of_archived_ones(
    tmp_path: Path,
) -> None:
    """When every candidate the index ranks first is archived, the search asks again
    exactly and finds the live messages below them; with fewer candidates than the
    index reads, the index's answer stands (the same messages)."""
    from bruno_memory.managers.lifecycle.archival import archive

    config = {"tiers": [{"kind": "sqlite", "path": str(tmp_path / "m.db")}]}
    memory: Any = await build_memory(config)
    async with memory:
        conv = (await memory.create_session("ann")).conversation_id
        loud = [Message(role=MessageRole.USER, content="zebra zebra zebra") for _ in range(20)]
        quiet = [Message(role=MessageRole.USER, content=f"a zebra in the long grass, day {i}")
                 for i in range(2)]
        await memory.store_messages([*loud, *quiet], conv)
        assert await archive(memory, conv, loud) == 20
        asked = recorded(memory)
        one = await memory.search_messages("zebra", user_id="ann", limit=1)
        assert len(one) == 1 and one[0].id in {m.id for m in quiet}
        assert len(asked) == 2  # the index's 18 candidates were all archived: asked again
        every = await memory.search_messages("zebra", user_id="ann", limit=10)
        assert {m.id for m in every} == {m.id for m in quiet}
        assert len(asked) == 3  # 22 candidates, fewer than the 36 read: the index's answer
