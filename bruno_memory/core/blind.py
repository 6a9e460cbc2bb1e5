"""A blind index (pure): text -> keyed hashes of its stemmed words, for full-text search
over encrypted content.

A word is normalized as the SQLite tier's tokenizer does (``unicode61 remove_diacritics``:
runs of letters and digits, lower-cased, accents dropped), stemmed with Porter's
algorithm (FTS5's ``porter``; PyStemmer's C Snowball), then replaced by an HMAC-SHA256
of the stem under the owner's index key, written as ``x`` and 12 base32 letters (60 bits).
The full-text engine indexes those tokens as words, so bm25 / ``ts_rank_cd`` rank as
before, and the index holds no word. Every word is kept, in order, so document lengths and
phrases survive.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import unicodedata

import Stemmer  # PyStemmer: Snowball in C

from bruno_memory.core.text import terms

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STEMMER = Stemmer.Stemmer("porter")
TOKEN = re.compile(r"^x[a-z2-7]{12}$")
"""What a blind token looks like (one full-text word for every engine)."""


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """Porter's stem, for words of 3 to 64 characters only (as FTS5's ``porter``)."""
    return str(_STEMMER.stemWord(word)) if 3 <= len(word) <= 64 else word


@functools.lru_cache(maxsize=8192)
def _plain(word: str) -> str:
    """A word without accents, as ``remove_diacritics`` sees it."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The normalized, stemmed words of ``text``, in order."""
    return [_stem(_plain(w)) for w in _WORD.findall(text.lower())]


class BlindIndex:
    """Keyed hashing of one owner's words (the key derives from her data key)."""

    __slots__ = ("_key", "_memo")

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._memo: dict[str, str] = {}  # a lower-cased word -> its token: words repeat

    def token(self, stem: str) -> str:
        """The blind token of one stem."""
        digest = hmac.new(self._key, stem.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return "x" + base64.b32encode(digest.digest()[:8]).decode()[:12].lower()

    def _word(self, word: str) -> str:
        found = self._memo.get(word)
        if found is None:
            found = self.token(_stem(_plain(word)))
            if len(self._memo) < 100_000:
                self._memo[word] = found
        return found

    def document(self, text: str) -> str:
        """What the full-text column holds for ``text``: one token per word, in order."""
        memo, word = self._memo, self._word
        return " ".join([memo[w] if w in memo else word(w) for w in _WORD.findall(text.lower())])

    def query(self, text: str) -> str:
        """A search query for ``text``: its search terms (stopwords dropped as the SQL tiers
        drop them), each stemmed and hashed."""
        found = dict.fromkeys(self.token(w) for t in terms(text) for w in words(t))
        return " ".join(found)

    def phrase(self, text: str) -> str:
        """A phrase: every word, in order (matches the document's token sequence)."""
        return self.document(text)

    def label(self, value: str) -> str:
        """An exact-match value (a category, a tag): hashed whole, not stemmed."""
        digest = hmac.new(self._key, b"label\x00" + value.encode("utf-8", "surrogatepass"),
                          hashlib.sha256)
        return "x" + base64.b32encode(digest.digest()[:15]).decode().lower()
