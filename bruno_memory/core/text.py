"""Query text -> search terms (pure): words only, so no query syntax ever reaches an engine."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)

STOPWORDS = frozenset(
    """a about after again all also am an and any are as at be been before being both but by
    can could did do does doing done down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours out over own same she should
    so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will
    with would you your yours yourself yourselves ever did does""".split()
)


def terms(query: str, *, keep_stopwords: bool = False) -> list[str]:
    """Distinct lower-cased words of ``query``; stopwords dropped unless nothing else is left."""
    words = [w for w in _WORD.findall(query.lower()) if w.strip("_")]
    seen: dict[str, None] = dict.fromkeys(words)
    if keep_stopwords:
        return list(seen)
    content = [w for w in seen if w not in STOPWORDS]
    return content or list(seen)
