"""Rides: a tier's write sent as a part of another tier's script call to the same Redis
server, so one round trip writes both (``tiers.base.Rides``, ``tiers.base.Carries``).

The carrier runs its own part first; a ride runs only once that part succeeded, in the
order given, each in a protected call: a failing ride fails alone (its tier then owes
what it missed), and never the carrier's write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RideFailed:
    """The reply of a ride whose part failed on the server: its error."""

    error: str


Parts = list[tuple["Ride", list["Ride"]]]
"""Parts to send, each with the rides its reply answers for."""

UNSENT: Any = object()
"""``Ride.reply`` until a carrier sent it: the tier writes on its own then."""


@dataclass(slots=True, eq=False)
class Ride:
    """One write as a Lua part: ``script``'s body runs with ``keys`` as ``KEYS`` and
    ``args`` as ``ARGV`` on ``server`` (a Redis URL); ``reply`` is set by the carrier:
    what the part returned, or a ``RideFailed``. ``join``: makes the parts to send for
    rides like this one (their ``item``s; one or more), each with the rides it answers
    for, so a carrier sends concurrent writes' parts as few."""

    server: str
    script: str
    keys: tuple[Any, ...] = ()
    args: tuple[Any, ...] = ()
    item: Any = None
    join: Callable[[Sequence[Ride]], Parts] | None = None
    reply: Any = field(default=UNSENT)

    @property
    def sent(self) -> bool:
        return self.reply is not UNSENT


def joined(rides: Sequence[Ride]) -> Parts:
    """The parts to send for ``rides``, each with the rides it answers for: rides of one
    script that ``join`` are sent as the parts their ``join`` makes, where the last of
    them was (the script runs whole, so only the order of the kinds matters, and it is
    kept)."""
    groups: dict[str, list[Ride]] = {}
    for ride in rides:
        if ride.join is not None:
            groups.setdefault(ride.script, []).append(ride)
    parts: Parts = []
    for ride in rides:
        join = ride.join
        if join is None:
            parts.append((ride, [ride]))
        elif ride is (group := groups[ride.script])[-1]:
            parts += join(group)
    return parts
