"""Minted ids: ids a model's default factory made (``uuid4``), not ids a caller chose.

A write-behind stack checks every id it is given against the authoritative tier before
it acknowledges (``Owners._held``: an upsert must not take another owner's record), one
query per write. A minted id needs no such query: 122 random bits are no other record's
id, unless this very object (or a copy of it) was stored before, somewhere else. So the
ids minted objects were stored under are remembered here, each with its place (the
conversation and owner, or the memory's user), for the last ``size`` of them: the same
object stored again at the same place needs no query either; stored at another place,
it is checked as a chosen id is.

What this does not see: a copy of a minted object stored once more than ``size`` minted
writes after the first, at another place. Its write is acknowledged, then refused when
applied (the tier's upsert never moves a record), and dead-lettered with a warning.
"""

from __future__ import annotations

from collections.abc import Hashable

from pydantic import BaseModel

SIZE = 32_768
"""Ids remembered (about 4 MB): the window within which a reused minted object is seen."""


class Minted:
    """The places of the ids of minted objects this process stored, newest last."""

    __slots__ = ("_places", "_size")

    def __init__(self, size: int = SIZE) -> None:
        self._places: dict[str, Hashable] = {}
        self._size = size

    def vouches(self, model: BaseModel, id_: str, place: Hashable) -> bool:
        """Whether ``model``'s id ``id_`` needs no check before it is stored at ``place``:
        minted, and stored by this process at no other place (noted now if new)."""
        if "id" in model.model_fields_set:
            return False  # chosen by the caller: maybe another record's
        places = self._places
        seen = places.get(id_)
        if seen is None:
            if len(places) >= self._size:
                del places[next(iter(places))]
            places[id_] = place
            return True
        return bool(seen == place)
