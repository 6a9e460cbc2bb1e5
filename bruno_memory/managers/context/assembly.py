"""One build of a budgeted context: the state the steps share and the steps themselves
(pin, retrieve, fill each section within its share, assemble, fit), in the order
:mod:`~bruno_memory.managers.context.builder` describes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, Protocol
from uuid import UUID

from bruno_core.models import MemoryEntry, MemoryQuery, Message, MessageRole

from bruno_memory.core import guards
from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.salience import Weights
from bruno_memory.managers.context import render
from bruno_memory.managers.context.budget import Ledger, Shares, split
from bruno_memory.managers.context.packing import Candidate, pack_ranked, pack_suffix
from bruno_memory.managers.context.result import BuiltContext, ContextItem
from bruno_memory.managers.context.scoring import memory_salience, search_score
from bruno_memory.managers.context.searching import search_past
from bruno_memory.managers.context.source import ContextSource
from bruno_memory.managers.context.summary import SummaryProvider, question_aware
from bruno_memory.managers.context.tokens import MessageCosts
from bruno_memory.stack.fusion import Fusion

Strategy = Literal["adaptive", "fixed", "recent"]
Scope = Literal["conversation", "user"]


class Settings(Protocol):
    """What one build reads of its ``ContextBuilder`` (which satisfies it)."""

    memory: ContextSource
    costs: MessageCosts
    system_prompt: str | None
    pinned: list[Message]
    summaries: SummaryProvider
    min_recent: int
    shares: Shares
    strategy: Strategy
    scope: Scope
    density: float
    search_limit: int | None
    fusion: Fusion | None
    expand: int
    memory_limit: int
    clock: Callable[[], datetime]
    weights: Weights


log = logging.getLogger(__name__)

ADAPTIVE_HEAD = 5
"""Top search hits looked at to judge whether a query is about the past."""
MIN_LEFTOVER_SUMMARY = 16
"""A question-aware summary provider is asked only when at least this many tokens are left."""
COUNT_CHUNK = 16
COUNT_AHEAD = 1.25
"""Search hits are counted until they cost this many times the budget left."""


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


@dataclass
class _Picked:
    """A message taken into the search or recent section."""

    message: Message
    cost: int
    score: float | None
    rank: int | None
    reason: str


class Build:
    """The state of one build."""

    def __init__(self, b: Settings, user_id: str, conversation_id: str, budget: int):
        self.b = b
        self.user_id = user_id
        self.conversation_id = conversation_id
        self.ledger = Ledger(budget)
        self.costs = b.costs
        self.notes: list[str] = []
        self.taken: set[UUID] = set()
        self.pinned_ids: set[UUID] = set()
        self.pinned: list[tuple[Message, int, str]] = []
        self.summary: tuple[Message, int] | None = None
        self.memories: list[tuple[Candidate[MemoryEntry], int]] = []
        self.memories_cost = 0
        self.memory_why: dict[UUID, str] = {}
        self.search: list[_Picked] = []
        self.window: list[_Picked] = []  # newest first
        self.search_overhead = 0
        self.aware = False  # the summary provider is question-aware
        self.before: datetime | None = None  # the summary covers what came before

    async def run(
        self, query: str | None, system_prompt: str | None, extra: Sequence[Message]
    ) -> BuiltContext:
        b = self.b
        await self._pin(system_prompt if system_prompt is not None else b.system_prompt, extra)
        fetch = max(4 * b.min_recent, 32)
        fetched = await b.memory.retrieve_messages(self.conversation_id, limit=fetch)
        window = [m for m in fetched if m.id not in self.taken]
        wcosts = await self.costs.many(window)
        if query is None:
            query = next((m.content for m in fetched if m.role == MessageRole.USER), None)
            if query is None and fetched:
                self.notes.append("no user message in the latest turns: nothing to search")
        query = query.strip() if query and query.strip() else None

        core = pack_suffix(wcosts[: b.min_recent], self.ledger.left)
        for m, c in zip(window[:core], wcosts[:core], strict=True):
            self._window(m, c, "one of the latest turns (min_recent)")
        if core < min(b.min_recent, len(window)):
            self.notes.append(f"only {core} of the latest {b.min_recent} turns fit")
        self.aware = query is not None and b.strategy != "recent" and question_aware(b.summaries)
        hits, memories, summary = await self._retrieve(query, window[core - 1] if core else None)

        shares = b.shares
        if b.strategy == "adaptive" and hits:
            recent_ids = {m.id for m in fetched}
            head = hits[:ADAPTIVE_HEAD]
            past = sum(h.id not in recent_ids for h in head) / len(head)
            if past > 0:
                shares = shares.lend("recent", "search", past)
                self.notes.append(
                    f"{past:.0%} of the top search hits precede the recent turns: "
                    f"that much of the recent share lent to search"
                )
        if not self.aware:
            self._summary(summary, shares)
        self._memories(memories, shares, query is not None)
        candidates = await self._search_candidates(hits)
        self._search(candidates, split(self.ledger.left, shares, "search", ("recent",)))
        await self._extend_window(window, wcosts, core, fetch, len(fetched))
        if not self.search and self.search_overhead:  # every hit moved into the window
            self.ledger.give_back(self.search_overhead)
            self.search_overhead = 0
        if self.ledger.left > 0:
            self._search(candidates, self.ledger.left)
        if self.aware and query is not None and self.ledger.left >= MIN_LEFTOVER_SUMMARY:
            # a question-aware summary: only the budget the originals could not use
            frame = self.costs.one(render.system_prompt(".")) - self.costs.text(".")
            room = self.ledger.left - frame  # what a message costs beyond its text
            asked = await self.b.summaries.summary(  # type: ignore[call-arg]
                self.user_id, self.conversation_id, self.before, query=query, max_tokens=room
            )
            self._summary(asked, None)
        return await self._result(query)

    # -- sections ---------------------------------------------------------------------

    async def _pin(self, system_prompt: str | None, extra: Sequence[Message]) -> None:
        items: list[tuple[Message, str]] = []
        if system_prompt is not None and system_prompt.strip():
            items.append((render.system_prompt(system_prompt), "system prompt"))
        items += [(m, "pinned by the application") for m in [*self.b.pinned, *extra]]
        costs = await self.costs.many([m for m, _ in items])
        total = sum(costs)
        if total > self.ledger.max_tokens:
            raise InvalidInput(
                f"the system prompt and pinned items alone cost {total} tokens, more than "
                f"max_tokens={self.ledger.max_tokens}: raise max_tokens or pin less "
                "(pinned items are never dropped)"
            )
        for (m, why), c in zip(items, costs, strict=True):
            if m.id in self.taken:
                continue
            self.pinned.append((m, c, why))
            self.taken.add(m.id)
            self.pinned_ids.add(m.id)
            self.ledger.take(c)

    async def _retrieve(
        self, query: str | None, oldest_recent: Message | None
    ) -> tuple[list[Message], list[MemoryEntry], Message | None]:
        b = self.b
        retrieving = b.strategy != "recent"
        search_limit = b.search_limit or max(20, min(200, self.ledger.max_tokens // 24))

        async def hits() -> list[Message]:
            if not (retrieving and query):
                return []
            return await search_past(
                b.memory, query, self.user_id, self.conversation_id, b.scope, search_limit,
                b.fusion, b.expand,
            )

        async def memories() -> list[MemoryEntry]:
            if not retrieving or b.memory_limit < 1:
                return []
            q = MemoryQuery(user_id=self.user_id, query_text=query, limit=b.memory_limit)
            return await b.memory.retrieve_memories(q)

        self.before = oldest_recent.timestamp if oldest_recent is not None else None

        async def summary() -> Message | None:
            if self.aware:  # asked at the end, for what the originals leave
                return None
            return await b.summaries.summary(self.user_id, self.conversation_id, self.before)

        found, mems, summed = await asyncio.gather(hits(), memories(), summary())
        return found, mems, summed

    def _summary(self, summary: Message | None, shares: Shares | None) -> None:
        """The summary within its share (``None``: within what is left)."""
        if summary is None:
            return
        quota = self.ledger.left
        if shares is not None:
            quota = split(quota, shares, "summary", ("memories", "search", "recent"))
        cost = self.costs.one(summary)
        if summary.id in self.taken:
            return
        if cost > quota:
            self.notes.append(f"summary left out: it costs {cost} tokens, {quota} were left for it")
            return
        self.summary = (summary, cost)
        self.taken.add(summary.id)
        self.ledger.take(cost)

    def _memories(self, entries: list[MemoryEntry], shares: Shares, ranked: bool) -> None:
        if not entries:
            return
        quota = split(self.ledger.left, shares, "memories", ("search", "recent"))
        empty = self.costs.one(render.memories_message([]))
        if quota <= empty:
            return
        now = self.b.clock()
        seen: set[UUID] = set()
        cands: list[Candidate[MemoryEntry]] = []
        for rank, e in enumerate(entries):
            if e.id in seen:
                continue
            seen.add(e.id)
            line = self.costs.text("\n" + render.memory_line(e))
            s = memory_salience(rank if ranked else None, e, now, self.b.weights)
            self.memory_why[e.id] = s.explain()
            cands.append(Candidate(e, s.score, line, rank))
        picked = pack_ranked(cands, quota - empty)
        picked.sort(key=lambda c: (-c.score, c.rank))
        while picked:
            cost = self.costs.one(render.memories_message([c.item for c in picked]))
            if cost <= quota:
                break
            picked.pop()
        if not picked:
            return
        self.memories = [(c, c.cost) for c in picked]
        self.memories_cost = cost
        self.ledger.take(cost)

    async def _search_candidates(self, hits: list[Message]) -> list[Candidate[Message]]:
        """The hits not yet in, as candidates; counted in chunks, only as far as could
        matter: until the counted ones cost ``COUNT_AHEAD`` times the budget left (a hit
        further down could only fill the slack a ranked packing leaves)."""
        fresh: list[tuple[int, Message]] = []
        seen: set[UUID] = set()
        for rank, m in enumerate(hits):
            if m.id not in seen and m.id not in self.taken:
                seen.add(m.id)
                fresh.append((rank, m))
        out: list[Candidate[Message]] = []
        counted, need = 0, self.ledger.left * COUNT_AHEAD
        for i in range(0, len(fresh), COUNT_CHUNK):
            chunk = fresh[i : i + COUNT_CHUNK]
            costs = await self.costs.many([m for _, m in chunk])
            for (rank, m), c in zip(chunk, costs, strict=True):
                out.append(Candidate(m, search_score(rank), c, rank))
                counted += c
            if counted >= need:
                break
        return out

    def _search(self, candidates: list[Candidate[Message]], quota: int) -> None:
        left = [c for c in candidates if c.item.id not in self.taken]
        if not left or quota <= 0:
            return
        overhead = 0
        if not self.search:
            overhead = self.costs.one(render.header(render.SEARCH_HEADER))
            overhead += self.costs.one(render.header(render.RECENT_HEADER))
        picked = pack_ranked(left, quota - overhead, density=self.b.density)
        if not picked:
            return
        self.search_overhead += overhead
        self.ledger.take(overhead)
        for c in picked:
            self.search.append(
                _Picked(c.item, c.cost, c.score, c.rank, f"search hit #{c.rank + 1} for the query")
            )
            self.taken.add(c.item.id)
            self.ledger.take(c.cost)

    def _window(self, m: Message, cost: int, why: str) -> None:
        self.window.append(_Picked(m, cost, None, None, why))
        self.taken.add(m.id)
        self.ledger.take(cost)

    async def _extend_window(
        self, window: list[Message], costs: list[int], start: int, fetch: int, fetched: int
    ) -> None:
        """The rest of the recent window, newest backwards, until one does not fit."""
        if start < min(self.b.min_recent, len(window)):  # the latest turns did not all fit
            return
        in_search = {p.message.id: p for p in self.search}
        i = start
        while True:
            while i < len(window):
                m, cost = window[i], costs[i]
                moved = in_search.pop(m.id, None)
                if moved is not None:  # paid for by search: it moves, at no extra cost
                    self.search.remove(moved)
                    self.window.append(
                        _Picked(m, moved.cost, None, None, f"recent window ({moved.reason})")
                    )
                elif cost <= self.ledger.left:
                    self._window(m, cost, "recent window")
                else:
                    return
                i += 1
            if fetched < fetch or self.ledger.left <= 0:
                return
            if fetch >= guards.MAX_LIMIT:  # the most one read may ask
                return
            fetch = min(fetch * 4, fetch + self.ledger.left // 5 + 1, guards.MAX_LIMIT)
            more = await self.b.memory.retrieve_messages(self.conversation_id, limit=fetch)
            fetched = len(more)
            last = window[-1].id if window else None
            at = next((j for j, m in enumerate(more) if m.id == last), None)
            if at is None:  # the conversation changed under us: keep what is contiguous
                return
            tail = [m for m in more[at + 1 :] if m.id not in self.pinned_ids]
            if not tail:
                return
            window = window + tail
            costs = costs + await self.costs.many(tail)

    # -- the result -------------------------------------------------------------------

    def _assemble(self) -> tuple[list[Message], list[ContextItem]]:
        msgs: list[Message] = []
        items: list[ContextItem] = []

        def add(m: Message, section: str, item: ContextItem | None = None) -> None:
            msgs.append(m)
            if item is not None:
                items.append(item)

        for m, c, why in self.pinned:
            add(m, "pinned", ContextItem("pinned", str(m.id), m.role.value, None, c, why))
        if self.summary is not None:
            m, c = self.summary
            add(
                m,
                "summary",
                ContextItem(
                    "summary",
                    str(m.id),
                    m.role.value,
                    None,
                    c,
                    "summary of the history before the recent window",
                ),
            )
        if self.memories:
            m = render.memories_message([c.item for c, _ in self.memories])
            lines = 0
            msgs.append(m)
            for cand, line in self.memories:
                lines += line
                why = self.memory_why.get(cand.item.id, "")
                items.append(
                    ContextItem(
                        "memories",
                        str(cand.item.id),
                        "system",
                        round(cand.score, 4),
                        line,
                        f"memory #{cand.rank + 1} for the query: {why}",
                    )
                )
            items.append(
                ContextItem(
                    "memories",
                    str(m.id),
                    "system",
                    None,
                    self.memories_cost - lines,
                    "memories message: header",
                )
            )
        if self.search:
            h = render.header(render.SEARCH_HEADER)
            msgs.append(h)
            items.append(
                ContextItem(
                    "search", str(h.id), "system", None, self.costs.one(h), "section header"
                )
            )
            for p in sorted(self.search, key=lambda p: (_aware(p.message.timestamp), p.rank or 0)):
                msgs.append(p.message)
                items.append(
                    ContextItem(
                        "search",
                        str(p.message.id),
                        p.message.role.value,
                        None if p.score is None else round(p.score, 4),
                        p.cost,
                        p.reason,
                    )
                )
            if self.window:
                h = render.header(render.RECENT_HEADER)
                msgs.append(h)
                items.append(
                    ContextItem(
                        "recent", str(h.id), "system", None, self.costs.one(h), "section header"
                    )
                )
        for p in reversed(self.window):
            msgs.append(p.message)
            items.append(
                ContextItem(
                    "recent", str(p.message.id), p.message.role.value, None, p.cost, p.reason
                )
            )
        return msgs, items

    async def _result(self, query: str | None) -> BuiltContext:
        while True:
            msgs, items = self._assemble()
            total = await self.costs.total(msgs)
            if total <= self.ledger.max_tokens:
                break
            if not self._drop_one():
                raise InvalidInput(  # only pinned items left: they alone exceed the budget
                    f"the pinned items cost {total} tokens by the counter's own total, more "
                    f"than max_tokens={self.ledger.max_tokens}: raise max_tokens or pin less"
                )
            self.notes.append("the counter's total was higher than the sum: dropped one item")
        log.debug(
            "context built: %d/%d tokens, %d messages", total, self.ledger.max_tokens, len(msgs)
        )
        return BuiltContext(
            messages=msgs,
            tokens=total,
            max_tokens=self.ledger.max_tokens,
            query=query,
            items=tuple(items),
            notes=tuple(self.notes),
        )

    def _drop_one(self) -> bool:
        """Drop the least relevant non-pinned item; ``False`` if there is none."""
        if self.search:
            self.search.remove(min(self.search, key=lambda p: (p.score or 0.0, -(p.rank or 0))))
            return True
        if self.memories:
            self.memories.pop()
            if self.memories:
                msg = render.memories_message([c.item for c, _ in self.memories])
                self.memories_cost = self.costs.one(msg)
            return True
        if self.summary is not None:
            self.summary = None
            return True
        if self.window:
            self.window.pop()  # the oldest: the rest stays a suffix
            return True
        return False
