"""The dedup stages on their own: what is a duplicate, what is an update, what is new."""

from __future__ import annotations

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryMetadata, MemoryType

from bruno_memory.managers.lifecycle.dedup import Index, Thresholds, new_value, normalize


def entry(text: str, embedding: list[float] | None = None) -> MemoryEntry:
    return MemoryEntry(content=text, memory_type=MemoryType.FACT, user_id="u",
                       metadata=MemoryMetadata(embedding=embedding))


@pytest.fixture
def index() -> Index:
    ix = Index()
    for text in ["I love Chinese food", "User lives in Porto", "User likes cats",
                 "User's favourite colour is blue",
                 "The user keeps a vegetable garden behind the house with tomatoes, beans, "
                 "courgettes and a small greenhouse for peppers"]:
        ix.add(entry(text))
    return ix


@pytest.mark.parametrize(("text", "stage"), [
    ("I love Chinese food", "hash"),
    ("i LOVE chinese food!!", "normalized"),
    ("I really love Chinese food.", "normalized"),
    ("The user lives in Porto", "normalized"),
    ("The user keeps a vegetable garden behind the house with tomatoes, beans, "
     "courgettes and a small greenhouse for pepers", "minhash"),
])
def test_repeats_are_duplicates(index: Index, text: str, stage: str) -> None:
    """The same statement, exactly, normalized or nearly, is a duplicate, found by its stage."""
    m = index.match(text)
    assert (m.verdict, m.stage) == ("duplicate", stage)


@pytest.mark.parametrize(("text", "old"), [
    ("I hate Chinese food", "I love Chinese food"),
    ("User lives in Lisbon", "User lives in Porto"),
    ("User's favourite colour is green", "User's favourite colour is blue"),
    ("User does not like cats", "User likes cats"),
])
def test_new_values_are_updates_of_what_they_replace(index: Index, text: str, old: str) -> None:
    """A statement with one value replaced, or negated, updates the memory it restates."""
    m = index.match(text)
    assert m.verdict == "update" and m.existing is not None and m.existing.content == old


@pytest.mark.parametrize("text", ["User plays tennis on Sundays", "User has a dog named Rex",
                                  "User is 31 years old"])
def test_unrelated_statements_are_new(index: Index, text: str) -> None:
    """A statement restating nothing indexed is new."""
    assert index.match(text).verdict == "new"


def test_a_near_duplicate_with_a_new_value_is_an_update_not_a_merge() -> None:
    """Above the Jaccard threshold, a replaced value still makes an update."""
    ix = Index(Thresholds(jaccard=0.5))
    ix.add(entry("User works at Acme as a senior engineer in the platform team"))
    m = ix.match("User works at Globex as a senior engineer in the platform team")
    assert m.verdict == "update" and m.uncertain


def test_cosine_stage_uses_embeddings_where_both_have_them() -> None:
    """With embeddings, a close vector is a duplicate even when the words differ."""
    ix = Index()
    ix.add(entry("Enjoys hiking in the mountains", embedding=[1.0, 0.0, 0.1]))
    m = ix.match("Likes walks up in the hills", embedding=[1.0, 0.0, 0.12])
    assert (m.verdict, m.stage) == ("duplicate", "cosine")
    assert ix.match("Likes walks up in the hills", embedding=[0.0, 1.0, 0.0]).verdict == "new"


def test_forgotten_memories_no_longer_match(index: Index) -> None:
    """A superseded memory taken out of the index is not matched again."""
    m = index.match("User lives in Porto")
    assert m.existing is not None
    index.forget(m.existing)
    assert index.match("User lives in Porto").verdict == "new"


def test_normalize_and_new_value_basics() -> None:
    """Normalization folds case and punctuation; a pure insertion is not a new value."""
    assert normalize("  Hello,   WORLD! ") == "hello world"
    assert new_value(["like", "tea"], ["like", "coffee"])
    assert not new_value(["like", "tea", "and", "cake"], ["like", "tea"])


def test_misspelled_repeats_are_duplicates_but_numbers_are_values() -> None:
    """A short statement with a misspelled word repeats it; a changed number updates it."""
    ix = Index()
    ix.add(entry("User speaks German at home"))
    ix.add(entry("User is 31 years old"))
    m = ix.match("User speks German at home")
    assert (m.verdict, m.stage) == ("duplicate", "spelling")
    assert ix.match("User is 32 years old").verdict == "update"
