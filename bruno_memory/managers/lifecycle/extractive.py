"""An offline summarizer: picks a segment's most central, least redundant sentences.

Sentences are scored by maximal marginal relevance (Carbonell and Goldstein, 1998):
``lam * centrality - (1 - lam) * max similarity to a sentence already picked``, where
centrality is the cosine to the segment's centroid. Vectors come from the stack's embedder
when one is given, else from TF-IDF over the segment's own words (lexical). Sentences are
added until the summary reaches ``ratio`` of the source's tokens (at most ``max_tokens``),
then put back in their original order. The scoring runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bruno_core.interfaces import EmbeddingInterface

from bruno_memory.core.errors import InvalidInput
from bruno_memory.managers.lifecycle.summarizer import Segment, Summary

__all__ = ["ExtractiveSummarizer"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)")
_WORD = re.compile(r"[a-z0-9']+")
_STOP = frozenset(
    "a an the and or but if of to in on at for with from by about as is are was were be been "
    "am i you he she it we they me him her us them my your his its our their this that these "
    "those what which who so do does did have has had not no yes just really too very can "
    "could would should will shall may might must there here then than also oh hey hi yeah "
    "wow that's it's i'm you're".split()
)
Vector = dict[int, float] | list[float]


@dataclass(frozen=True, slots=True)
class _Sentence:
    source: str
    speaker: str
    text: str

    def line(self) -> str:
        return f"{self.speaker}: {self.text}" if self.speaker else self.text


class ExtractiveSummarizer:
    """Sentence selection by centrality and MMR; no LLM, no network.

    Args:
        embedder: a bruno-llm embedder for sentence vectors; ``None``: lexical TF-IDF.
        ratio: the summary's share of the source's tokens (default 0.15).
        max_tokens: a ceiling on one summary's tokens.
        lam: MMR's trade-off, 1 only centrality, 0 only novelty.
        count: tokens of a text (default: the context builder's counter).
    """

    def __init__(
        self,
        embedder: EmbeddingInterface | None = None,
        *,
        ratio: float = 0.15,
        max_tokens: int = 128,
        lam: float = 0.7,
        count: Callable[[str], int] | None = None,
    ) -> None:
        if not 0.0 < ratio <= 1.0:
            raise InvalidInput(f"ratio must be in (0, 1], got {ratio!r}")
        if max_tokens < 1:
            raise InvalidInput(f"max_tokens must be positive, got {max_tokens!r}")
        if not 0.0 <= lam <= 1.0:
            raise InvalidInput(f"lam must be between 0 and 1, got {lam!r}")
        if count is None:
            from bruno_memory.managers.context.tokens import default_counter

            count = default_counter().count_tokens
        self.embedder = embedder
        self.ratio = ratio
        self.max_tokens = max_tokens
        self.lam = lam
        self.count = count
        self.model = "extractive-mmr" + ("-embedding" if embedder is not None else "-lexical")

    def __repr__(self) -> str:
        return f"ExtractiveSummarizer(model={self.model!r}, ratio={self.ratio})"

    async def summarize(self, segments: Sequence[Segment]) -> list[Summary]:
        """One extractive summary per segment."""
        split = [_sentences(s) for s in segments]
        vectors: list[list[Vector] | None] = [None] * len(segments)
        if self.embedder is not None:
            flat = [x.line() for ss in split for x in ss]
            embedded = await self.embedder.embed_texts(flat) if flat else []
            at = 0
            for i, ss in enumerate(split):
                vectors[i] = list(embedded[at : at + len(ss)])
                at += len(ss)
        return await asyncio.to_thread(
            lambda: [self._one(s, ss, v) for s, ss, v in zip(segments, split, vectors, strict=True)]
        )

    def _one(
        self, segment: Segment, sentences: list[_Sentence], vectors: list[Vector] | None
    ) -> Summary:
        source = "\n".join(p.line() for p in segment.passages)
        source_tokens = self.count(source)
        if not sentences:
            return Summary("", self.model, source_tokens, 0, ())
        costs = [self.count(x.line()) for x in sentences]
        budget = min(self.max_tokens, max(1, round(self.ratio * source_tokens)))
        vecs = vectors if vectors is not None else _tfidf(sentences)
        picked = _mmr(vecs, costs, budget, self.lam)
        chosen = [sentences[i] for i in sorted(picked)]
        text = "\n".join(x.line() for x in chosen)
        ids = tuple(dict.fromkeys(x.source for x in chosen))
        return Summary(text, self.model, source_tokens, self.count(text), ids)


def _sentences(segment: Segment) -> list[_Sentence]:
    """The segment's sentences of 3 words or more, each once (a repeated one, e.g. a
    greeting, would otherwise pull the centroid towards itself)."""
    out = []
    seen: set[str] = set()
    for p in segment.passages:
        for line in p.text.splitlines():
            for piece in _SENTENCE.split(line.strip()):
                norm = " ".join(piece.lower().split())
                if len(piece.split()) >= 3 and norm not in seen:
                    seen.add(norm)
                    out.append(_Sentence(p.id, p.speaker, piece.strip()))
    return out


def _tfidf(sentences: list[_Sentence]) -> list[Vector]:
    """L2-normalised TF-IDF vectors (sparse: word index -> weight) over these sentences."""
    bags = [Counter(w for w in _WORD.findall(x.text.lower()) if w not in _STOP) for x in sentences]
    df: Counter[str] = Counter(w for bag in bags for w in bag)
    n = len(bags)
    index = {w: i for i, w in enumerate(df)}
    out: list[Vector] = []
    for bag in bags:
        vec = {index[w]: (1 + math.log(c)) * math.log((1 + n) / (1 + df[w])) + 1e-9
               for w, c in bag.items()}
        out.append(_normalised(vec))
    return out


def _normalised(vec: dict[int, float]) -> dict[int, float]:
    norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
    return {k: v / norm for k, v in vec.items()}


def _dot(a: Vector, b: Vector) -> float:
    if isinstance(a, dict) and isinstance(b, dict):
        small, big = (a, b) if len(a) <= len(b) else (b, a)
        return sum(v * big.get(k, 0.0) for k, v in small.items())
    assert isinstance(a, list) and isinstance(b, list)
    return sum(x * y for x, y in zip(a, b, strict=True))


def _centroid(vectors: list[Vector]) -> Vector:
    if isinstance(vectors[0], dict):
        total: dict[int, float] = {}
        for v in vectors:
            assert isinstance(v, dict)
            for k, x in v.items():
                total[k] = total.get(k, 0.0) + x
        return _normalised(total)
    dense = [list(map(float, v)) for v in vectors if isinstance(v, list)]
    summed = [sum(col) for col in zip(*dense, strict=True)]
    norm = math.sqrt(sum(x * x for x in summed)) or 1.0
    return [x / norm for x in summed]


def _cos(a: Vector, b: Vector) -> float:
    if isinstance(a, dict):
        return _dot(a, b)  # already normalised
    na = math.sqrt(_dot(a, a)) or 1.0
    nb = math.sqrt(_dot(b, b)) or 1.0
    return _dot(a, b) / (na * nb)


def _mmr(vectors: list[Vector], costs: list[int], budget: int, lam: float) -> list[int]:
    """Indexes picked greedily by MMR until ``budget`` tokens (at least one)."""
    centre = _centroid(vectors)
    central = [_cos(v, centre) for v in vectors]
    nearest = [0.0] * len(vectors)  # max similarity to anything picked so far
    picked: list[int] = []
    spent = 0
    left = set(range(len(vectors)))
    while left:
        best = max(left, key=lambda i: (lam * central[i] - (1 - lam) * nearest[i], -i))
        left.discard(best)
        if picked and spent + costs[best] > budget:
            continue
        picked.append(best)
        spent += costs[best]
        for i in left:
            nearest[i] = max(nearest[i], _cos(vectors[i], vectors[best]))
        if spent >= budget:
            break
    return picked
