"""Where level-0 summaries start and end (pure): closed segments of a conversation's tail.

The messages after a conversation's cursor are cut by session (a pause longer than
``gap``), by ``turns`` or by ``tokens``. Every segment but the last is closed. The last,
still open, is closed by a trigger: it holds more than ``tail_tokens`` tokens, its newest
message is older than ``age``, or the conversation's session has ended.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bruno_core.models.message import Message

from bruno_memory.config.lifecycle import SummariesConfig
from bruno_memory.core.records import timestamp_key

__all__ = ["closed_segments"]


def closed_segments(
    messages: Sequence[Message],
    config: SummariesConfig,
    count: Callable[[Message], int],
    *,
    now: float,
    ended: bool,
) -> list[list[Message]]:
    """The segments of ``messages`` (oldest first) that are ready to summarise."""
    if not messages:
        return []
    segments = _cut(messages, config, count)
    tail = segments[-1]
    if not (
        (config.on_session_end and ended)
        or sum(count(m) for m in tail) > config.tail_tokens
        or (config.age is not None and now - timestamp_key(tail[-1].timestamp) > config.age)
    ):
        segments.pop()
    return segments


def _cut(
    messages: Sequence[Message], config: SummariesConfig, count: Callable[[Message], int]
) -> list[list[Message]]:
    seg = config.segment
    out: list[list[Message]] = [[]]
    tokens = 0
    previous: float | None = None
    for m in messages:
        ts = timestamp_key(m.timestamp)
        cost = count(m)
        current = out[-1]
        if current and (
            (seg.by == "session" and previous is not None and ts - previous > seg.gap)
            or (seg.by == "turns" and len(current) >= seg.turns)
            or (seg.by == "tokens" and tokens + cost > seg.tokens)
        ):
            out.append([])
            tokens = 0
        out[-1].append(m)
        tokens += cost
        previous = ts
    return out
