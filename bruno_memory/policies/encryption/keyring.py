"""Per-user data keys: made on a user's first write, wrapped by the master key, kept in the
key store, cached unwrapped in this process, destroyed by ``forget_user``."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import time
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bruno_memory.config.encryption import EncryptionConfig
from bruno_memory.config.types import mask_password
from bruno_memory.core import sealing
from bruno_memory.core.blind import PROFILES, Profile
from bruno_memory.core.errors import BrunoMemoryConfigError
from bruno_memory.core.logs import get_logger
from bruno_memory.core.ops import PurgeUser, Value
from bruno_memory.core.sealing import DataKey
from bruno_memory.policies.encryption.keystore import KeyStore

log = get_logger(__name__)
SHARED = "shared"
"""The key store entry of the key sealing records without an owner (and the check that the
master key opens the store)."""


def entry(owner: str | None) -> str:
    """The key store entry of an owner."""
    return SHARED if owner is None else "u:" + owner


class Masters:
    """The master keys: the first wraps, every one unwraps (during a rotation)."""

    def __init__(self, keys: Sequence[bytes], namespace: str) -> None:
        self.keys = {_fingerprint(k): AESGCM(k) for k in keys}
        self.first = _fingerprint(keys[0])
        self.namespace = namespace

    def wrap(self, owner: str, raw: bytes) -> str:
        nonce = os.urandom(12)
        box = self.keys[self.first].encrypt(nonce, raw, self._aad(owner))
        return f"1.{self.first}.{base64.b64encode(nonce + box).decode()}"

    def unwrap(self, owner: str, wrapped: str) -> bytes | None:
        """The data key, or ``None`` if no configured master key wrapped it."""
        _, fp, body = [*wrapped.split(".", 2), "", ""][:3]
        aead = self.keys.get(fp)
        if aead is None:
            return None
        try:
            raw = base64.b64decode(body)
            return aead.decrypt(raw[:12], raw[12:], self._aad(owner))
        except (InvalidTag, ValueError):
            return None

    def wrapped_by_first(self, wrapped: str) -> bool:
        return wrapped.split(".", 2)[1:2] == [self.first]

    def _aad(self, owner: str) -> bytes:
        return f"bruno-memory/1 key\x00{self.namespace}\x00{owner}".encode()


def _fingerprint(key: bytes) -> str:
    return hmac.new(key, b"bruno-memory/1 key id", hashlib.sha256).hexdigest()[:16]


class Keyring:
    """The stack's data keys; shared by every tier's ``Encrypting`` policy.

    ``load`` (async) fetches or makes the keys of some owners; ``key_of`` (sync) then
    answers from the cache, so records are sealed and unsealed without a round trip.
    """

    def __init__(self, config: EncryptionConfig, store: KeyStore, namespace: str,
                 profile: Profile = PROFILES["porter"]) -> None:
        self.config, self.store, self.profile = config, store, profile
        self.masters = Masters(config.masters(), namespace)
        self.vectors = config.vectors
        self._keys: dict[str | None, DataKey] = {}
        self._wrapped: dict[str | None, str] = {}  # owner -> her key as the store holds it
        self._checked: dict[str | None, float] = {}  # owner -> when the store last had it
        self._users = 0
        self._forgotten: dict[tuple[str, int], None] = {}
        self._sealed: dict[int, tuple[Value, Value]] = {}  # id(plain) -> (plain, sealed)
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Keyring({self.store!r}, masters={len(self.masters.keys)})"

    async def acquire(self) -> None:
        """Open on first use (each tier's policy acquires it)."""
        async with self._lock:
            self._users += 1
            if self._users == 1:
                await self.store.open()
                try:
                    await self._check()
                except BaseException:
                    self._users = 0
                    await self.store.aclose()
                    raise

    async def release(self) -> None:
        async with self._lock:
            self._users -= 1
            if self._users == 0:
                for held in (self._keys, self._wrapped, self._checked):
                    held.clear()
                await self.store.aclose()

    async def _check(self) -> None:
        """A wrong master key fails here, at open, and never reads as garbage."""
        await self.load([None], create=True)
        if None not in self._keys:
            raise BrunoMemoryConfigError(
                f"none of the configured keys opens the key store "
                f"{mask_password(self.config.keystore)}: a wrong key (or the key store of another "
                "stack); set the key this data was written with", path="encryption.key")

    async def load(self, owners: Iterable[str | None], *, create: bool = False) -> None:
        """Have the keys of ``owners`` at hand; ``create``: make the ones that do not exist
        (a write); otherwise an owner without a key stays absent (shredded). A key held
        longer than ``key_recheck`` is looked up again: gone from the store (another
        process forgot its user), it is dropped here too."""
        now = time.monotonic()
        stale = now - self.config.key_recheck
        keys, checked = self._keys, self._checked
        for owner in {o for o in owners if o not in keys or checked[o] <= stale}:
            name = entry(owner)
            wrapped = await self.store.get(name)
            if owner in keys:
                if wrapped == self._wrapped[owner]:
                    checked[owner] = now
                    continue
                self._drop(owner)  # destroyed elsewhere (or rewrapped by a rotation)
                log.info("data key changed in the key store", user=owner)
            if wrapped is None and create:
                wrapped = await self.store.add(name, self.masters.wrap(name, os.urandom(32)))
            if wrapped is None:
                continue
            raw = self.masters.unwrap(name, wrapped)
            if raw is None:
                if owner is None:
                    return  # _check says what to fix
                raise BrunoMemoryConfigError(
                    f"the data key of {name!r} is wrapped by a master key that is not "
                    "configured: add the previous key to encryption.key and run "
                    "`bruno-memory rotate-key CONFIG`", path="encryption.key")
            key = keys[owner] = DataKey(raw, self.profile)
            self._wrapped[owner], checked[owner] = wrapped, now
            if self.config.index == "stack" and owner is not None and None in keys:
                key.index = keys[None].index  # one blind index for every user

    def _drop(self, owner: str | None) -> None:
        self._keys.pop(owner, None)
        self._wrapped.pop(owner, None)
        self._checked.pop(owner, None)
        self._sealed.clear()  # nothing sealed by the destroyed key is reused

    async def owners(self) -> list[str | None]:
        """Every owner with a key in the store (``None``: the shared key)."""
        return [None if name == SHARED else name.removeprefix("u:")
                for name, _ in await self.store.items()]

    def key_of(self, owner: str | None) -> DataKey | None:
        return self._keys.get(owner)

    async def forget(self, op: PurgeUser) -> None:
        """Destroy a user's data key (crypto-shredding), once per ``forget_user``: every
        tier's policy sees the same purge."""
        mark = (op.user_id, op.version)
        if mark in self._forgotten:
            return
        self._forgotten[mark] = None
        if len(self._forgotten) > 1024:
            self._forgotten.pop(next(iter(self._forgotten)))
        self._drop(op.user_id)
        await self.store.delete(entry(op.user_id))
        log.info("data key destroyed", user=op.user_id)

    async def seal(self, values: Sequence[Value]) -> list[Value]:
        """Sealed copies of plain records (their owners' keys made if need be); a record
        written to several tiers is sealed once (the same object reaches each)."""
        await self.load((sealing.owner_of(v) for v in values), create=True)
        memo = self._sealed
        if len(memo) > 64:  # only carries a record from one tier's write to the next's
            memo.clear()
        out = []
        for v in values:
            held = memo.get(id(v))
            if held is None or held[0] is not v:
                held = memo[id(v)] = (v, sealing.seal(v, self.key_of))
            out.append(held[1])
        return out

    async def unseal(self, values: Sequence[Value]) -> list[Value | None]:
        """Plain records; ``None`` for one whose key was destroyed."""
        await self.load(sealing.owner_of(v) for v in values if sealing.is_sealed(v))
        out: list[Value | None] = []
        for v in values:
            try:
                out.append(sealing.unseal(v, self.key_of))
            except sealing.Shredded:
                out.append(None)
        return out

    async def rotate(self) -> tuple[int, int]:
        """Rewrap every data key under the first master key; (rewrapped, already done)."""
        done = kept = 0
        for name, wrapped in await self.store.items():
            if self.masters.wrapped_by_first(wrapped):
                kept += 1
                continue
            raw = self.masters.unwrap(name, wrapped)
            if raw is None:
                raise BrunoMemoryConfigError(
                    f"the data key of {name!r} is wrapped by a master key that is not "
                    "configured: list every key still in use in encryption.key",
                    path="encryption.key")
            if await self.store.swap(name, wrapped, self.masters.wrap(name, raw)):
                done += 1
        return done, kept
