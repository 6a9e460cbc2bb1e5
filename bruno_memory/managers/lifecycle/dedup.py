"""Staged duplicate detection of a new memory against a user's current memories.

The stages, cheapest and surest first; the first that decides wins:

1. **hash**: the same content, byte for byte -> duplicate.
2. **normalized**: the same words once case, accents' forms, punctuation, filler words
   (articles, "the user", "really"...) and plural/verb ``s`` are set aside -> duplicate;
   **spelling**: the same words but for misspellings (a word of 4+ letters with a
   similarity ratio >= 0.85 to the one it replaces; numbers never) -> duplicate.
3. **near-duplicate**: character 4-gram shingles with Jaccard >= ``jaccard`` (MinHash LSH
   from ``datasketch`` finds the candidates, the exact Jaccard decides), or cosine >=
   ``cosine`` where both have embeddings -> duplicate, unless stage 4 sees a new value.
4. **new value**: the same statement with one short span replaced ("lives in Porto" ->
   "lives in Lisbon", "love" -> "hate") or a negation added -> an **update**: the new
   memory supersedes the old one, they are never merged.
5. an optional LLM judge (``consolidate.LLMJudge``) decides the uncertain cases: any
   candidate from stages 3-4, or one with cosine >= ``judge_cosine``.

Everything here is pure and synchronous (``Index`` builds MinHashes: call it off the
event loop with ``asyncio.to_thread``).
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from bruno_core.models.memory import MemoryEntry

from bruno_memory.core.errors import MissingDependency

__all__ = ["Index", "Match", "Thresholds", "Verdict", "content_hash", "normalize"]

Verdict = Literal["new", "duplicate", "update"]
Stage = Literal["none", "hash", "normalized", "spelling", "minhash", "cosine", "value", "llm"]

FILLER = frozenset(
    "a an the user users user's i i'm im me my mine we our is am are was were be been "
    "really very quite so just also actually truly definitely totally indeed still "
    "of in at on to for with that this it its has have had does do did".split()
)
"""Words that carry no fact of their own (dropped before comparing)."""
NEGATIONS = frozenset("not no never dont don't doesnt doesn't isnt isn't nt".split())
_WORD = re.compile(r"[\w']+")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When two memories count as the same (see the module doc)."""

    jaccard: float = 0.9
    cosine: float = 0.9
    judge_cosine: float = 0.75
    num_perm: int = 128


@dataclass(frozen=True, slots=True)
class Match:
    """What a new memory is to the existing ones: ``new``, a ``duplicate`` of ``existing``
    or an ``update`` of it; ``stage`` decided, ``similarity`` is its measure."""

    verdict: Verdict
    existing: MemoryEntry | None = None
    stage: Stage = "none"
    similarity: float = 0.0
    uncertain: bool = False  # an LLM judge, when there is one, should decide


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def normalize(text: str) -> str:
    """Case-folded NFKC words, punctuation dropped, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")
    return " ".join(_WORD.findall(folded))


def _stem(word: str) -> str:
    word = word.removesuffix("'s")
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_words(text: str) -> list[str]:
    """The words that carry the fact: normalized, fillers dropped, lightly stemmed."""
    return [_stem(w) for w in normalize(text).split() if w not in FILLER]


def shingles(text: str, n: int = 4) -> set[str]:
    s = normalize(text)
    return {s[i : i + n] for i in range(max(len(s) - n + 1, 1))}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na > 0 and nb > 0 else 0.0


def new_value(new: list[str], old: list[str]) -> bool:
    """Whether ``new`` restates ``old`` with one value replaced or a negation toggled."""
    ops = [op for op in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
           if op[0] != "equal"]
    equal = len(old) - sum(i2 - i1 for _, i1, i2, _, _ in ops)
    if not ops or equal < 1:
        return False
    changed = [set(old[i1:i2]) | set(new[j1:j2]) for _, i1, i2, j1, j2 in ops]
    if all(c <= NEGATIONS for c in changed):
        return True  # "likes cats" -> "does not like cats"
    if len(ops) != 1 or ops[0][0] != "replace":
        return False
    _, i1, i2, j1, j2 = ops[0]
    if i2 - i1 == 1 and j2 - j1 == 1 and _typo(old[i1], new[j1]):
        return False
    return max(i2 - i1, j2 - j1) <= min(equal, 3)


def respelled(new: list[str], old: list[str]) -> bool:
    """Whether ``new`` is ``old`` with only misspelled words (one for one)."""
    if len(new) != len(old) or new == old:
        return False
    return all(a == b or _typo(a, b) for a, b in zip(new, old, strict=True))


def _typo(a: str, b: str) -> bool:
    """Two spellings of one word ("peppers", "pepers"), not two values ("31", "32")."""
    if min(len(a), len(b)) < 4 or a.isdigit() or b.isdigit():
        return False
    return difflib.SequenceMatcher(a=a, b=b).ratio() >= 0.85


@dataclass
class _Known:
    entry: MemoryEntry
    normalized: str
    words: list[str]
    shingles: set[str]


@dataclass
class Index:
    """A user's current memories, indexed for the stages above."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    _known: dict[str, _Known] = field(default_factory=dict)
    _hashes: dict[str, str] = field(default_factory=dict)
    _normal: dict[str, str] = field(default_factory=dict)
    _lsh: object = None

    def __post_init__(self) -> None:
        try:
            from datasketch import MinHashLSH
        except ImportError as exc:  # pragma: no cover - the extra is installed in tests
            raise MissingDependency(
                "memory dedup needs datasketch: pip install 'bruno-memory[lifecycle]'"
            ) from exc
        t = self.thresholds
        self._lsh = MinHashLSH(threshold=t.jaccard, num_perm=t.num_perm)

    def __len__(self) -> int:
        return len(self._known)

    def add(self, e: MemoryEntry) -> None:
        """Index ``e`` (a current memory, or one just added)."""
        key = str(e.id)
        if key in self._known:
            return
        known = _Known(e, " ".join(content_words(e.content)), content_words(e.content),
                       shingles(e.content))
        self._known[key] = known
        self._hashes.setdefault(content_hash(e.content), key)
        self._normal.setdefault(known.normalized, key)
        self._lsh.insert(key, self._minhash(known.shingles))  # type: ignore[attr-defined]

    def forget(self, e: MemoryEntry) -> None:
        """Drop ``e`` (superseded) from the index."""
        key = str(e.id)
        known = self._known.pop(key, None)
        if known is None:
            return
        self._lsh.remove(key)  # type: ignore[attr-defined]
        for table, k in ((self._hashes, content_hash(e.content)),
                         (self._normal, known.normalized)):
            if table.get(k) == key:
                del table[k]

    def _minhash(self, grams: set[str]) -> object:
        from datasketch import MinHash

        m = MinHash(num_perm=self.thresholds.num_perm)
        m.update_batch([g.encode("utf-8", "surrogatepass") for g in grams])
        return m

    def match(self, text: str, embedding: Sequence[float] | None = None) -> Match:
        """What ``text`` is to the indexed memories (stages 1-4; see the module doc)."""
        if (key := self._hashes.get(content_hash(text))) is not None:
            return Match("duplicate", self._known[key].entry, "hash", 1.0)
        words = content_words(text)
        if (key := self._normal.get(" ".join(words))) is not None and words:
            return Match("duplicate", self._known[key].entry, "normalized", 1.0)
        grams = shingles(text)
        near = self._lsh.query(self._minhash(grams))  # type: ignore[attr-defined]
        scored = sorted(((jaccard(grams, self._known[k].shingles), k) for k in near),
                        reverse=True)
        for sim, key in scored:
            if sim >= self.thresholds.jaccard:
                return self._near(words, self._known[key], "minhash", sim)
        best = self._nearest_vector(embedding) if embedding is not None else None
        if best is not None and best[0] >= self.thresholds.cosine:
            return self._near(words, best[1], "cosine", best[0])
        found = self._value(words)
        if found.verdict == "new" and best is not None and best[0] >= self.thresholds.judge_cosine:
            return Match("new", best[1].entry, "cosine", best[0], uncertain=True)  # a judge's
        return found

    def _near(self, words: list[str], known: _Known, stage: Stage, sim: float) -> Match:
        if new_value(words, known.words):
            return Match("update", known.entry, "value", sim, uncertain=True)
        return Match("duplicate", known.entry, stage, sim, uncertain=True)

    def _nearest_vector(self, embedding: Sequence[float]) -> tuple[float, _Known] | None:
        best: tuple[float, _Known] | None = None
        for known in self._known.values():
            vec = known.entry.metadata.embedding
            if vec:
                sim = cosine(embedding, vec)
                if best is None or sim > best[0]:
                    best = (sim, known)
        return best

    def _value(self, words: list[str]) -> Match:
        """Stages 2 (spelling) and 4 alone: a misspelled repeat, or the same statement with
        a new value, however dissimilar by shingles."""
        mine = set(words)
        for known in self._known.values():
            if respelled(words, known.words):
                return Match("duplicate", known.entry, "spelling", 1.0, uncertain=True)
        for known in self._known.values():
            if mine & set(known.words) and new_value(words, known.words):
                sim = jaccard(mine, set(known.words))
                return Match("update", known.entry, "value", sim, uncertain=True)
        return Match("new")
