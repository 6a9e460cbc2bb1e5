"""The façade's view of encryption at rest: records as the stores hold them, and back.

Managers use it to export ciphertext (an export is then as safe as a backup, and is
shredded with its users) and to import it again.
"""

from __future__ import annotations

from collections.abc import Sequence

from bruno_memory.core import sealing
from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.ops import Value
from bruno_memory.stack.plumbing import Plumbing


class Sealed(Plumbing):
    """``seal`` / ``unseal`` through the stack's keyring (``encryption:``)."""

    async def encrypted(self) -> bool:
        """Whether the stack encrypts what it stores."""
        return (await self._ready()).sealer is not None

    async def seal(self, records: Sequence[Value]) -> list[Value]:
        """The records as the stores outside the process hold them (as they are without
        encryption)."""
        sealer = (await self._ready()).sealer
        return list(records) if sealer is None else list(await sealer.seal(records))

    async def unseal(self, records: Sequence[Value]) -> list[Value | None]:
        """Plain records of sealed ones (``None``: its user was forgotten); a sealed record
        in a stack without encryption is refused."""
        sealer = (await self._ready()).sealer
        if sealer is not None:
            return list(await sealer.unseal(records))
        if any(sealing.is_sealed(r) for r in records):
            raise InvalidInput(
                "an encrypted record: open the stack with the encryption: section and key "
                "store it was written with")
        return list(records)
