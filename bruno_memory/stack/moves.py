"""Moves: an upsert never moves a record to another conversation or owner.

A write-through tier refuses a move itself (its upsert's trigger: ``owners.refused_moves``).
A write-behind tier applies writes after they are acknowledged, too late to refuse one, so
the ids a write may not take are checked before it is applied (``verify``: the ids a
caller chose; a minted id needs no look, ``stack.minted``). The writes coalesced into one
batch (``stack.coalescing``) are checked together: one read of the authoritative tier
(its queue included) for all their ids, then each write in order against what it holds
and what the batch's earlier writes put, so two writes of one batch cannot both take an
id either. A refused write fails alone, with ``InvalidInput``; the others go on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from bruno_core.models.memory import MemoryEntry

from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.ops import Key, Put, WriteOp
from bruno_memory.core.records import MessageRecord

Look = Callable[[Sequence[Key]], Awaitable[Mapping[Key, Any]]]
"""Reads what the authoritative tier holds at some keys (missing or empty: nothing)."""


def refusal(key: Key, held: object, new: object) -> InvalidInput | None:
    """Why putting ``new`` at ``key`` would move ``held``, the record there; ``None``: it
    would not."""
    if isinstance(held, MessageRecord) and isinstance(new, MessageRecord) and (
        held.conversation_id != new.conversation_id or held.user_id not in (None, new.user_id)
    ):
        return InvalidInput(
            f"message id {key.id} is already used by another conversation: an upsert keeps "
            "a message where it is; give the message a new id"
        )
    if isinstance(held, MemoryEntry) and isinstance(new, MemoryEntry) and (
        held.user_id != new.user_id
    ):
        return InvalidInput(
            f"memory id {key.id} is already used by another user's memory: an upsert never "
            "changes a memory's owner; give the memory a new id"
        )
    return None


async def refused(
    writes: Sequence[tuple[Sequence[WriteOp], Sequence[Key]]], look: Look
) -> list[InvalidInput | None]:
    """Per write (its ops, the keys of its puts to check), in order, why it is refused
    (``None``: it is not), reading the authoritative tier once for all of them."""
    keys = list(dict.fromkeys(k for _, verify in writes for k in verify))
    held: dict[Key, Any] = dict(await look(keys)) if keys else {}
    out: list[InvalidInput | None] = []
    for ops, verify in writes:
        puts = {op.key: op.value for op in ops if isinstance(op, Put)}
        error = None
        for key in verify:
            error = refusal(key, held.get(key), puts.get(key))
            if error is not None:
                break
        out.append(error)
        if error is None:
            held.update(puts)  # placed: a later write of the batch is checked against it
    return out


__all__ = ["Look", "refusal", "refused"]
