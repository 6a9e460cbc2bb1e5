"""Operations across users, through an access hook the app provides: ``memory.admin(hook,
actor=...)``.

The hook decides; bruno-memory only asks it. It is called with an ``AccessRequest`` (who
acts, which operation, on whose data: ``None`` means every user's) before each operation
and returns ``True`` to allow it (a plain function or a coroutine function); anything
else raises ``AccessDenied`` and nothing is read or changed. Allowed calls are recorded
in the audit trail with the admin's ``actor``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bruno_memory.core import guards
from bruno_memory.core.audit import AuditRecord, Verdict
from bruno_memory.core.errors import AccessDenied
from bruno_memory.core.queries import Page, ScanKind
from bruno_memory.stack.audit import ACTOR
from bruno_memory.stack.scoped import ScopedMemory

MemoryStack = Any
"""The ``MemoryStack`` the handle wraps (see ``stack.scoped.MemoryStack``)."""


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """What an admin call asks to do: ``operation`` on ``user_id``'s data (``None``:
    every user's), by ``actor``."""

    actor: str
    operation: str
    user_id: str | None


AccessHook = Callable[[AccessRequest], "bool | Awaitable[bool]"]


class AdminMemory:
    """Operations across users, each allowed by the app's hook first."""

    def __init__(self, stack: MemoryStack, hook: AccessHook, actor: str) -> None:
        self._stack = stack
        self._hook = hook
        self.actor = guards.identifier(actor, "actor")

    def __repr__(self) -> str:
        return f"AdminMemory(actor={self.actor!r})"

    async def _allow(self, operation: str, user_id: str | None) -> None:
        request = AccessRequest(self.actor, operation, user_id)
        answer = self._hook(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if answer is not True:
            whose = f"user {user_id!r}'s data" if user_id is not None else "every user's data"
            raise AccessDenied(f"the access hook refused {operation} on {whose} to "
                               f"{self.actor!r}")

    async def user(self, user_id: str) -> ScopedMemory:
        """A handle on ``user_id``'s data, acting as this admin (operation ``user``)."""
        await self._allow("user", guards.identifier(user_id, "user_id"))
        return ScopedMemory(self._stack, user_id, actor=self.actor)

    async def forget_user(self, user_id: str) -> None:
        """Erase a user everywhere (operation ``forget_user``)."""
        await self._allow("forget_user", guards.identifier(user_id, "user_id"))
        token = ACTOR.set(self.actor)
        try:
            await self._stack.forget_user(user_id)
        finally:
            ACTOR.reset(token)

    async def scan(
        self, kind: ScanKind, *, user_id: str | None = None, after: str | None = None,
        limit: int = 500,
    ) -> Page[Any]:
        """A page of every user's records of ``kind`` (operation ``scan``)."""
        await self._allow("scan", user_id)
        found: Page[Any] = await self._stack.scan(kind, user_id=user_id, after=after, limit=limit)
        return found

    async def audit_trail(
        self, *, user_id: str | None = None, after: int = 0, limit: int = 100
    ) -> list[AuditRecord]:
        """The audit records of every user, or of one (operation ``audit``)."""
        await self._allow("audit", user_id)
        found: list[AuditRecord] = await self._stack.audit_trail(user_id=user_id, after=after,
                                                                 limit=limit)
        return found

    async def verify_audit(self) -> Verdict:
        """Check the audit trail's hash chain (operation ``audit``)."""
        await self._allow("audit", None)
        found: Verdict = await self._stack.verify_audit()
        return found

    async def health(self) -> dict[str, dict[str, Any]]:
        """Per tier health (operation ``health``)."""
        await self._allow("health", None)
        found: dict[str, dict[str, Any]] = await self._stack.health()
        return found
