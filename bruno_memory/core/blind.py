"""A blind index (pure): text -> keyed hashes of its stemmed words, for full-text search
over encrypted content.

A word is normalized as the SQLite tier's tokenizer does (``unicode61 remove_diacritics``:
runs of letters and digits, lower-cased, accents dropped), stemmed with Porter's
algorithm (FTS5's ``porter``; PyStemmer's C Snowball), then replaced by an HMAC-SHA256
of the stem under the owner's index key, written as ``x`` and 15 hex digits (60 bits).
The full-text engine indexes those tokens as words, so bm25 / ``ts_rank_cd`` rank as
before, and the index holds no word. Every word is kept, in order, so document lengths and
phrases survive.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, cast

import Stemmer  # PyStemmer: Snowball in C

from bruno_memory.core.text import terms

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_ASCII_WORD = re.compile(r"[a-z0-9]+")
"""``_WORD`` of lower-cased ASCII text, ~1.5x faster."""
TOKEN = re.compile(r"^x[0-9a-f]{15}$")
"""What a blind token looks like (one full-text word for every engine)."""

POSTGRES_ENGLISH_STOP = frozenset("""
    i me my myself we our ours ourselves you your yours yourself yourselves he him his
    himself she her hers herself it its itself they them their theirs themselves what
    which who whom this that these those am is are was were be been being have has had
    having do does did doing a an the and but if or because as until while of at by for
    with about against between into through during before after above below to from up
    down in out on off over under again further then once here there when where why how
    all any both each few more most other some such no nor not only own same so than too
    very s t can will just don should now
""".split())
"""PostgreSQL's ``english`` stop words (``tsearch_data/english.stop``, Snowball's list)."""


@dataclass(frozen=True)
class Profile:
    """How the durable tier's own full-text index treats a word, mirrored before hashing:
    the Snowball algorithm stemming it (``None``: none) and the stop words it drops."""

    stemmer: str | None
    stop: frozenset[str] = frozenset()
    min_stem: int = 0  # shorter words are not stemmed (FTS5's porter: 3)
    gap: str = ""
    """A stop word of the engine written in a stop word's place in a document: the engine
    drops it but counts its position, as it does in plain text, so proximity ranking
    (``ts_rank_cd``) and phrases see the same distances ("": the stop word is left out)."""
    postgres: bool = False
    """PostgreSQL's parser: a hyphenated word is indexed whole, then part by part (each its
    own position), a word holding a digit is not stemmed, and accents stay."""


PROFILES = {
    "porter": Profile("porter", min_stem=3),  # SQLite FTS5 'porter unicode61'
    "english": Profile("english", POSTGRES_ENGLISH_STOP, gap="the", postgres=True),
    "simple": Profile(None, postgres=True),  # PostgreSQL 'simple'
}


def profile(search_config: str | None) -> Profile:
    """The profile of a durable tier's text search configuration (``None``: SQLite's);
    another PostgreSQL language stems with Snowball's algorithm of that name, if any."""
    if search_config is None:
        return PROFILES["porter"]
    name = search_config.rpartition(".")[2].lower()
    if name in PROFILES:
        return PROFILES[name]
    return Profile(name if name in Stemmer.algorithms() else None, postgres=True)


@functools.lru_cache(maxsize=65536)
def _stem(word: str, algorithm: str | None, min_stem: int) -> str:
    if algorithm is None or not min_stem <= len(word) <= 64:
        return word
    return str(_stemmer(algorithm).stemWord(word))


@functools.cache
def _stemmer(algorithm: str) -> Any:
    return Stemmer.Stemmer(algorithm)


@functools.lru_cache(maxsize=8192)
def _plain(word: str) -> str:
    """A word without accents, as ``remove_diacritics`` sees it."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str, p: Profile = PROFILES["porter"]) -> list[str]:
    """The normalized, stemmed words of ``text`` but stop words, in order."""
    return [_normal(w, p) for w in _WORD.findall(text.lower()) if w not in p.stop]


def _normal(word: str, p: Profile) -> str:
    """One lower-cased word (or hyphenated word) as the engine indexes it."""
    if not p.postgres:
        return _stem(_plain(word), p.stemmer, p.min_stem)
    if any(c.isdigit() for c in word):  # PostgreSQL's numword / numhword: 'simple'
        return word
    return _stem(word, p.stemmer, p.min_stem)


_COMPOUND = re.compile(r"[^\W_]+(?:-[^\W_]+)*", re.UNICODE)
_ASCII_COMPOUND = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _words_of(lowered: str, p: Profile) -> list[str]:
    """The words of lower-cased text (PostgreSQL: hyphenated ones whole)."""
    if p.postgres:
        return (_ASCII_COMPOUND if lowered.isascii() else _COMPOUND).findall(lowered)
    return (_ASCII_WORD if lowered.isascii() else _WORD).findall(lowered)


class BlindIndex:
    """Keyed hashing of one owner's words (the key derives from her data key)."""

    __slots__ = ("_key", "_mac", "_memo", "profile")

    def __init__(self, key: bytes, profile: Profile = PROFILES["porter"]) -> None:
        self._key = key
        self._mac = hmac.new(key, digestmod=hashlib.sha256)  # keyed once, copied per term
        self.profile = profile
        self._memo: dict[str, str] = {}  # a lower-cased word -> its token (a stop word: gap)

    def token(self, stem: str) -> str:
        """The blind token of one stem."""
        digest = self._mac.copy()
        digest.update(stem.encode("utf-8", "surrogatepass"))
        return "x" + digest.hexdigest()[:15]

    def _word(self, word: str) -> str:
        found = self._memo.get(word)
        if found is None:
            p = self.profile
            if word in p.stop:
                found = p.gap
            elif "-" in word:  # PostgreSQL: the whole word, then its parts
                found = " ".join(filter(None, [self.token(_normal(word, p)),
                                               *map(self._word, word.split("-"))]))
            else:
                found = self.token(_normal(word, p))
            if len(self._memo) < 100_000:
                self._memo[word] = found
        return found

    def document(self, text: str) -> str:
        """What the full-text column holds for ``text``: one token per word, in order."""
        found = _words_of(text.lower(), self.profile)
        held: list[str | None] = list(map(self._memo.get, found))  # in C: most were seen
        tokens = cast(list[str], held)
        if None in held:
            word = self._word
            tokens = [t if t is not None else word(w) for t, w in zip(held, found, strict=True)]
        return " ".join(filter(None, tokens) if self.profile.stop and not self.profile.gap
                        else tokens)

    def query(self, text: str) -> str:
        """A search query for ``text``: its search terms (stopwords dropped as the SQL tiers
        drop them), each stemmed and hashed."""
        found = dict.fromkeys(
            self.token(w) for t in terms(text) for w in words(t, self.profile))
        return " ".join(found)

    def phrase(self, text: str) -> str:
        """A phrase: every word, in order (matches the document's token sequence)."""
        return self.document(text)

    def label(self, value: str) -> str:
        """An exact-match value (a category, a tag): hashed whole, not stemmed."""
        digest = hmac.new(self._key, b"label\x00" + value.encode("utf-8", "surrogatepass"),
                          hashlib.sha256)
        return "x" + digest.hexdigest()[:30]
