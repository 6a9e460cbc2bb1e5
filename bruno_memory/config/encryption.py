"""The stack's ``encryption:`` section: master keys, where the per-user keys live."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from bruno_memory.config.types import Duration, mask_password

KEY_HINT = (
    "urlsafe base64 of 32 random bytes, e.g. the output of python -c \"import os, base64; "
    "print(base64.urlsafe_b64encode(os.urandom(32)).decode())\""
)


def master_key(text: str) -> bytes:
    """The 32 bytes a configured key stands for; ``ValueError`` says what to fix."""
    text = text.strip()
    if not text:
        raise ValueError(f"the key is empty (is its variable set?); expected {KEY_HINT}")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"the key is not urlsafe base64; expected {KEY_HINT}") from None
    if len(raw) != 32:
        raise ValueError(f"the key decodes to {len(raw)} bytes, not 32; expected {KEY_HINT}")
    return raw


class EncryptionConfig(BaseModel):
    """Field encryption at rest (AES-256-GCM), opt-in per stack.

    ``key``: one master key, or a list while rotating (the first wraps new data keys, every
    one unwraps). ``keystore``: where the wrapped per-user data keys live, apart from the
    data: a file path (SQLite), a ``redis://`` or a ``postgresql://`` URL. ``vectors``:
    false keeps messages and memories out of the semantic tiers (a vector can leak its
    text), so search is full-text only. ``index``: whose key hashes the blind index,
    ``user`` (each user's own: ``forget_user`` shreds her index too, and term statistics
    are per user) or ``stack`` (one key for all: bm25 sees every user's term statistics,
    as without encryption, but a forgotten user's index stays testable by guessing words
    for whoever holds the key store). ``key_recheck``: how long a process uses a data key
    it unwrapped before asking the key store again, so a key destroyed by another
    process's ``forget_user`` is dropped here too within that time (0: ask every time).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    key: list[SecretStr]
    keystore: str
    vectors: bool = True
    index: Literal["user", "stack"] = "user"
    key_recheck: Duration = 30.0

    @field_validator("key", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ValueError(f"no key given; expected {KEY_HINT}")
        for v in values:
            text = v.get_secret_value() if isinstance(v, SecretStr) else v
            if not isinstance(text, str):
                raise ValueError(f"a key must be a string; expected {KEY_HINT}")
            master_key(text)
        return values

    @field_validator("keystore")
    @classmethod
    def _keystore(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty: expected a file path, a redis:// or a postgresql:// URL")
        scheme = value.partition("://")[0] if "://" in value else ""
        if scheme and scheme not in ("redis", "rediss", "postgresql", "postgres"):
            raise ValueError(
                f"unknown scheme {scheme!r}: expected a file path, a redis:// or a "
                "postgresql:// URL"
            )
        return value

    def masters(self) -> list[bytes]:
        """The master keys, first one first."""
        return [master_key(k.get_secret_value()) for k in self.key]

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, mask_password(value) if name == "keystore" else value
