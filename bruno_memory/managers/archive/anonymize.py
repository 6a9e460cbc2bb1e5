"""Anonymized exports: ids pseudonymized consistently with a keyed hash, personal data in
text redacted by a pluggable redactor (``core.redact``: the one the redact-on-write policy uses).

The same key gives the same pseudonyms in every export, so anonymized exports of one store
still join (a user's messages, sessions and memories keep one pseudonymous id; a message's
``parent_id`` still names its parent). Without the key, a pseudonym cannot be reversed or
confirmed by hashing guesses.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Any

from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.redact import Redactor, RegexRedactor

__all__ = ["Anonymizer", "Redactor", "RegexRedactor", "new_key"]


def new_key() -> str:
    """A fresh 256-bit pseudonymization key, as hex."""
    return secrets.token_hex(32)


class Anonymizer:
    """Rewrites export lines: ids pseudonymized with HMAC-SHA256 under ``key``, text
    (contents, metadata strings, a user's name) redacted by ``redactor``.

    Args:
        key: the secret (any non-empty string; ``new_key()`` makes one). Keep it to export
            again with the same pseudonyms; drop it to make them unlinkable to the store.
        redactor: text -> text without personal data (default ``RegexRedactor()``).
    """

    def __init__(self, key: str, redactor: Redactor | None = None) -> None:
        if not key:
            raise InvalidInput("an anonymization key must be a non-empty string")
        self._key = key.encode()
        self._redact: Redactor = redactor or RegexRedactor()

    def pseudonym(self, value: str) -> str:
        """A stable pseudonym of an id: 32 hex digits."""
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:32]

    def pseudo_uuid(self, value: str) -> str:
        """A stable pseudonym of a UUID, itself a UUID (version 4 bits set)."""
        digest = hmac.new(self._key, value.encode(), hashlib.sha256).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def line(self, obj: dict[str, Any]) -> dict[str, Any]:
        """An export line, anonymized (the header passes unchanged)."""
        kind, body = obj.get("kind"), obj.get("record")
        if not isinstance(body, dict):
            return obj
        p, u = self.pseudonym, self.pseudo_uuid
        if kind == "message":
            obj["conversation_id"] = p(obj["conversation_id"])
            if obj.get("owner") is not None:
                obj["owner"] = p(obj["owner"])
            body["id"] = u(body["id"])
            if body.get("parent_id"):
                body["parent_id"] = u(body["parent_id"])
            if body.get("conversation_id"):
                body["conversation_id"] = p(body["conversation_id"])
            body["metadata"] = self._metadata(body.get("metadata") or {})
            body["content"] = self._redact(body["content"])
        elif kind == "session":
            body["session_id"] = p(body["session_id"])
            body["user_id"] = p(body["user_id"])
            body["conversation_id"] = p(body["conversation_id"])
            body["metadata"] = self._metadata(body.get("metadata") or {})
            body["state"] = self._json(body.get("state") or {})
        elif kind == "user":
            body["user_id"] = p(body["user_id"])
            if body.get("name"):
                body["name"] = "[name]"
            for name in ("preferences", "profile", "metadata"):
                body[name] = self._json(body.get(name) or {})
        elif kind == "memory":
            body["id"] = u(body["id"])
            body["user_id"] = p(body["user_id"])
            if body.get("conversation_id"):
                body["conversation_id"] = p(body["conversation_id"])
            body["content"] = self._redact(body["content"])
            md = body.get("metadata") or {}
            md["related_memories"] = [u(r) for r in md.get("related_memories") or []]
            md["custom_fields"] = self._json(md.get("custom_fields") or {})
            if md.get("source"):
                md["source"] = self._redact(md["source"])
        return obj

    def _metadata(self, md: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._json(md)
        if isinstance(md.get("user_id"), str) and md["user_id"]:
            out["user_id"] = self.pseudonym(md["user_id"])
        return out

    def _json(self, value: Any) -> Any:
        """Every string in a JSON value redacted (keys kept: they are a schema, not data)."""
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, dict):
            return {k: self._json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._json(v) for v in value]
        return value
