"""Packing candidates into a token quota (pure).

Two packings, both "no item twice" (the caller passes what is already in):

- :func:`pack_suffix`: the recent window, newest backwards, stopping at the first message
  that does not fit, so what is taken is always a contiguous suffix of the conversation.
- :func:`pack_ranked`: relevance-ranked candidates into a quota. Each candidate's value is
  its score; a candidate is taken greedily by ``score / cost ** density`` (``density=0`` is
  plain rank order), skipping what does not fit and going on with shorter ones. With
  ``density`` between 0 and 1, a short message of nearly the same relevance goes before a
  long one: more, shorter items for the same tokens (measured on LoCoMo it loses recall:
  evidence turns are the longer ones, so the builder's default is rank order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Candidate", "pack_ranked", "pack_suffix"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Candidate(Generic[T]):
    """An item that could go in: its score (higher is better), cost and rank (0: best)."""

    item: T
    score: float
    cost: int
    rank: int


def pack_ranked(
    candidates: Sequence[Candidate[T]],
    quota: int,
    *,
    density: float = 0.0,
    cost_of: Callable[[Candidate[T]], int] | None = None,
) -> list[Candidate[T]]:
    """The candidates taken into ``quota`` tokens, in the order they were taken.

    Args:
        candidates: best first.
        quota: tokens available.
        density: 0 packs in score order; towards 1 prefers value per token.
        cost_of: what a candidate costs here, if not its ``cost`` (e.g. 0 when it is
            already paid for elsewhere).
    """
    if quota <= 0:
        return []
    cost = cost_of or (lambda c: c.cost)

    def key(c: Candidate[T]) -> tuple[float, int]:
        paid = max(cost(c), 1)
        return (-(c.score / paid**density) if density else -c.score, c.rank)

    taken: list[Candidate[T]] = []
    left = quota
    for c in sorted(candidates, key=key):
        need = cost(c)
        if need <= left:
            taken.append(c)
            left -= need
    return taken


def pack_suffix(costs_newest_first: Sequence[int], quota: int) -> int:
    """How many of the newest messages fit in ``quota`` (stopping at the first that does
    not: the window stays contiguous)."""
    n = 0
    for cost in costs_newest_first:
        if cost > quota:
            break
        quota -= cost
        n += 1
    return n
