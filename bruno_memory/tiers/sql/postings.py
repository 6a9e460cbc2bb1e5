"""A bound on the work of one ranked full-text search: the postings it scores.

bm25 scores every row matching any term, and reads each term's whole posting list for its
document frequency, so a query that holds words most rows contain (a long message used as
the query, in a conversation of 100,000 messages) costs in proportion to the store, while
those words weigh least in the ranking (bm25's idf is near zero for a word in half the
rows, and clamped there). :func:`within_postings` keeps the rarest terms whose postings
together stay under a budget, and always the rarest one: the ranking of what matches the
rare terms hardly moves, and the work is bounded. A store smaller than the budget is never
affected. Document frequencies come from the FTS5 index (``fts5vocab``), of the terms as
the index's own tokenizer makes them (:class:`Stems`).

:func:`index_first` ranks in the index alone and reads the rows of the best only (joining
every match to its row first read each matching row's payload: half the time of a search
of 100,000 messages).

Reading a term's document frequency from ``fts5vocab`` walks the term's whole posting list
(1.8 ms per query at 1,000,000 messages, most of a search): :class:`Frequencies` keeps
what was read for ``FREQUENCY_TTL`` seconds, and :class:`Stems` remembers each word's
tokens. A frequency that is a little old only moves the budget's choice of words.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from cachetools import LRUCache, TTLCache

__all__ = [
    "FREQUENCY_TTL",
    "MAX_POSTINGS",
    "TOKENIZE",
    "VOCABULARY",
    "Frequencies",
    "Stems",
    "within_postings",
]

TOKENIZE = "porter unicode61 remove_diacritics 2"
"""The tokenizer of the SQLite tier's FTS5 tables (``sqlite_schema``)."""

MAX_POSTINGS = 10_000
"""Postings one search scores at most (unless its rarest term alone has more)."""

VOCABULARY = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.{t}_terms USING fts5vocab(main, {t}_fts, 'row')"
)
"""A connection's view of the index's document frequencies (created before ``query_only``)."""


FREQUENCY_TTL = 30.0
"""Seconds a term's document frequency is used before it is read again."""


class Stems:
    """The tokens the index's tokenizer makes of words, from a private in-memory table
    with the same tokenizer (pure CPU, microseconds: no file is touched); each word's
    tokens are remembered (the tokenizer never changes)."""

    def __init__(self, tokenize: str, remembered: int = 50_000) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(f"CREATE VIRTUAL TABLE words USING fts5(w, tokenize={tokenize!r})")
        self._db.execute("CREATE VIRTUAL TABLE tokens USING fts5vocab(words, 'instance')")
        self._known: LRUCache[str, tuple[str, ...]] = LRUCache(remembered)

    def of(self, words: Sequence[str]) -> dict[str, list[str]]:
        """Each word's tokens."""
        known = {w: self._known.get(w) for w in words}
        new = list(dict.fromkeys(w for w, ts in known.items() if ts is None))
        if new:
            found = self._tokenize(new)
            for w in new:
                known[w] = self._known[w] = tuple(found[w])
        return {w: list(known[w] or ()) for w in words}

    def _tokenize(self, words: Sequence[str]) -> dict[str, list[str]]:
        with self._db:
            self._db.executemany(
                "INSERT INTO words(rowid, w) VALUES (?, ?)", enumerate(words, start=1)
            )
            rows = self._db.execute("SELECT doc, term FROM tokens").fetchall()
            self._db.execute("DELETE FROM words")
        out: dict[str, list[str]] = {w: [] for w in words}
        for doc, term in rows:
            out[words[doc - 1]].append(term)
        return out

    def close(self) -> None:
        self._db.close()


class Frequencies:
    """Terms' document frequencies as last read from the index, each for ``ttl`` seconds."""

    def __init__(
        self,
        ttl: float = FREQUENCY_TTL,
        maxsize: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._held: TTLCache[str, int] = TTLCache(maxsize, ttl, timer=clock)

    def known(self, terms: Iterable[str]) -> tuple[dict[str, int], list[str]]:
        """The frequencies held, and the terms to read."""
        held: dict[str, int] = {}
        missing: list[str] = []
        for t in terms:
            found = self._held.get(t)
            if found is None:
                missing.append(t)
            else:
                held[t] = found
        return held, missing

    def learn(self, asked: Iterable[str], found: Mapping[str, int]) -> None:
        """Keep what was read for ``asked`` (a term the index lacks: 0)."""
        for t in asked:
            self._held[t] = found.get(t, 0)

    def clear(self) -> None:
        self._held.clear()


def within_postings(
    words: Sequence[str],
    tokens: Mapping[str, Sequence[str]],
    frequency: Mapping[str, int],
    budget: int = MAX_POSTINGS,
) -> list[str]:
    """The words to search: the rarest first while their postings fit ``budget`` (the
    rarest always), in their original order.

    Args:
        words: the query's words.
        tokens: each word's tokens (a word without any costs nothing).
        frequency: rows holding each token (absent: none).
        budget: postings at most.
    """
    cost = {w: sum(frequency.get(t, 0) for t in tokens.get(w, ())) for w in words}
    kept: set[str] = set()
    total = 0
    for w in sorted(words, key=lambda w: cost[w]):
        if kept and total + cost[w] > budget:
            break
        kept.add(w)
        total += cost[w]
    return [w for w in words if w in kept]


def index_first(
    match: str, score: str, user_id: str, limit: int, include_archived: bool = False
) -> tuple[str, list[object], int]:
    """A user's messages best first, ranked in the index (whose ``match`` is scoped to the
    user) before any row is read: (statement, parameters, depth). The statement returns
    the index's best ``depth`` candidates (fewer: every match), best first, as rows
    (conversation_id, user_id, payload, score, kept): ``kept`` is false for a row the
    search leaves out (another owner's, an archived one unless asked for, a row gone).
    A few more candidates than ``limit`` are read, so that archived ones rarely leave the
    answer short; when they do and all ``depth`` came back, ask again exactly
    (``text.search_messages``)."""
    archived = "" if include_archived else " AND NOT m.archived"
    depth = limit if include_archived else 2 * limit + 16
    sql = (
        f"SELECT m.conversation_id, m.user_id, m.payload, h.score, "
        f"coalesce(m.user_id = ?{archived}, 0) FROM (SELECT rowid, {score} AS score "
        "FROM messages_fts WHERE messages_fts MATCH ? ORDER BY score DESC LIMIT ?) h "
        "LEFT JOIN messages m ON m.seq = h.rowid ORDER BY h.score DESC"
    )
    return sql, [user_id, match, depth], depth
