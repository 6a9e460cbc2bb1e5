"""Schema versions as data, and what both SQL engines share to move between them: the plan
of steps from one version to another and the check that a schema has the expected shape."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple


class Migration(NamedTuple):
    """One schema version: ``up`` applies it, ``down`` undoes it (newest first)."""

    up: list[str]
    down: list[str]


class SchemaMismatch(RuntimeError):
    """The database's schema cannot be used as configured; the message says what to change."""


Shape = Mapping[str, str]
"""A schema's objects: ``"<type> <name>"`` -> its definition, whitespace normalized."""


@dataclass(frozen=True, slots=True)
class Step:
    """Apply migration ``number`` (``up``) or undo it (``down``); ``version`` is the schema
    version once the step is done."""

    number: int
    direction: Literal["up", "down"]
    statements: list[str]

    @property
    def version(self) -> int:
        return self.number if self.direction == "up" else self.number - 1


def too_new(where: str, version: int, known: int) -> SchemaMismatch:
    """The error for a schema a newer bruno-memory wrote."""
    return SchemaMismatch(
        f"{where} is at schema version {version}, newer than this bruno-memory knows "
        f"({known}): upgrade bruno-memory, or run the newer version's "
        f"`bruno-memory migrate CONFIG --to {known}` first"
    )


def plan(where: str, current: int, target: int, migrations: Sequence[Migration]) -> list[Step]:
    """The steps from version ``current`` to ``target``, one migration each."""
    if current > len(migrations):
        raise too_new(where, current, len(migrations))
    if not 0 <= target <= len(migrations):
        raise SchemaMismatch(
            f"version {target} does not exist: choose one from 0 to {len(migrations)}"
        )
    if target >= current:
        return [Step(n, "up", migrations[n - 1].up) for n in range(current + 1, target + 1)]
    return [Step(n, "down", migrations[n - 1].down) for n in range(current, target, -1)]


_SPACE = re.compile(r"\s+")


def normalized(sql: str | None) -> str:
    """A definition with runs of whitespace made one space."""
    return _SPACE.sub(" ", sql or "").strip()


def differences(found: Shape, expected: Shape) -> list[str]:
    """What keeps ``found`` from being ``expected``, one line per object."""
    out = [f"missing {name}" for name in sorted(expected.keys() - found.keys())]
    out += [f"unexpected {name}" for name in sorted(found.keys() - expected.keys())]
    out += [
        f"{name} differs: {found[name]!r} instead of {expected[name]!r}"
        for name in sorted(found.keys() & expected.keys())
        if found[name] != expected[name]
    ]
    return out


def check_shape(where: str, version: int, found: Shape, expected: Shape) -> None:
    """Raise ``SchemaMismatch`` unless ``found`` is the shape version ``version`` has."""
    wrong = differences(found, expected)
    if wrong:
        listed = "; ".join(wrong[:5]) + (f"; and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise SchemaMismatch(
            f"{where} does not have the shape of schema version {version} ({listed}); "
            "it was changed by hand or by another tool: restore a backup or fix it"
        )
