"""The bound on a message search's work: the commonest words of a long query are left out
once the rarer ones' postings fill the budget (what makes a 100,000-message conversation's
context fast), and a small store is searched as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.tiers.sql.postings import TOKENIZE, Stems, within_postings
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
