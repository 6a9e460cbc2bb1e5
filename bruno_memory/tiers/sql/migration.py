"""A schema version as data: the statements that apply it and those that undo it."""

from __future__ import annotations

from typing import NamedTuple


class Migration(NamedTuple):
    """One schema version: ``up`` applies it, ``down`` undoes it (newest first)."""

    up: list[str]
    down: list[str]
