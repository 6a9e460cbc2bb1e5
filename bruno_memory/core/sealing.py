"""Records <-> sealed records (pure): what a store outside the process holds when a stack
encrypts.

A sealed record has the shape of the original, so every tier, journal and export stores
it unchanged: ids, owner, conversation, role, timestamps and scores stay readable (the
stores route, order and filter by them); the model's whole JSON is AES-256-GCM encrypted
into one metadata field (``SEALED``); the text a full-text index reads becomes blind
tokens (``core.blind``), categories and tags keyed hashes. The associated data binds a
ciphertext to its record (namespace, id) and to the key's owner, so a ciphertext moved to
another record or owner does not decrypt.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Callable
from typing import Any

import orjson
from bruno_core.models.context import SessionContext, UserContext
from bruno_core.models.memory import MemoryEntry, MemoryMetadata
from bruno_core.models.message import Message
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bruno_memory.core import codec, records
from bruno_memory.core.archived import ARCHIVED
from bruno_memory.core.blind import PROFILES, BlindIndex, Profile
from bruno_memory.core.codec import DecodeError
from bruno_memory.core.ops import Key, Value
from bruno_memory.core.records import MessageRecord

SEALED = records.SEALED
"""The metadata field holding a sealed record's ciphertext (a memory: in ``custom_fields``)."""
_VERSION = "1"
"""An envelope of the record's whole JSON."""
_SECRETS = "2"
"""A message's envelope of its secret fields only, ``[content, metadata]``: unsealing
replaces them in the sealed model, with no second JSON validation of the whole message
(its other fields are stored in clear anyway: id, role, timestamp, parent)."""
HOLLOW = "-"
"""The content in a sealed message's stored JSON (format 2): its blind document is in the
record's ``content`` (what full-text columns index), its text in the envelope; the JSON,
which every store keeps (and Redis windows copy), is then about a third of the size."""


class Shredded(Exception):
    """The record's data key was destroyed (``forget_user``): it reads as absent."""


class DataKey:
    """One owner's data key: an AEAD key and a blind-index key, both derived from it."""

    __slots__ = ("aead", "id", "index")

    def __init__(self, raw: bytes, profile: Profile = PROFILES["porter"]) -> None:
        self.aead = AESGCM(_derive(raw, b"bruno-memory/1 encrypt"))
        self.index = BlindIndex(_derive(raw, b"bruno-memory/1 index"), profile)
        self.id = _derive(raw, b"bruno-memory/1 key id")[:6].hex()
        """Names the key in each envelope: a record sealed by a destroyed key reads as
        shredded even once its owner has a new key."""


def _derive(raw: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(raw)


KeyOf = Callable[[str | None], DataKey | None]
"""An owner (``None``: records without one) -> her data key, ``None`` if destroyed."""


def owner_of(value: Value) -> str | None:
    """Whose key seals ``value``."""
    return value.user_id


def is_sealed(value: Value) -> bool:
    return _envelope(value) is not None


def seal(value: Value, key_of: KeyOf) -> Value:
    """The sealed form of a plain record (a sealed one is returned as is)."""
    if is_sealed(value):
        if isinstance(value, MessageRecord) and value.message.content == HOLLOW:
            # read back from a store (a copy between stacks): its blind document again
            with contextlib.suppress(Shredded, DecodeError):
                return seal(unseal(value, key_of), key_of)
        return value
    owner = owner_of(value)
    key = key_of(owner)
    if key is None:
        raise Shredded(f"no data key for {owner!r}")
    if isinstance(value, MessageRecord):
        with contextlib.suppress(TypeError):  # a value orjson refuses: the general path
            return _sealed_message(value, key, owner)
    ns = codec.key_of(value)
    env = _box(key, owner, codec.payload(value).encode(), ns.ns, ns.id)
    return _SEALERS[type(value)](value, key, env)


def _box(key: DataKey, owner: str | None, plain: bytes, ns: str, id_: str,
         version: str = _VERSION) -> str:
    """The envelope: format, key scope, key id, then nonce and ciphertext in base64."""
    nonce = os.urandom(12)
    box = key.aead.encrypt(nonce, plain, _aad(ns, id_, owner))
    scope = "s" if owner is None else "u"
    return f"{version}.{scope}.{key.id}.{base64.b64encode(nonce + box).decode()}"


def _sealed_message(rec: MessageRecord, key: DataKey, owner: str | None) -> MessageRecord:
    """A message sealed with one ``model_dump`` for both JSON texts (the hot path): the
    plain one (kept on ``rec``) and the sealed one the stores write, whose envelope holds
    the secret fields only (``_SECRETS``) and whose content is ``HOLLOW``."""
    m = rec.message
    body = m.model_dump()
    plain = orjson.dumps(body)
    secrets = orjson.dumps((body["content"], body["metadata"]))
    env = _box(key, owner, secrets, "message", rec.id, _SECRETS)
    content = key.index.document(m.content)
    metadata = _clear(m, env)
    sealed = rec.with_message(_copy(m, content=content, metadata=metadata))
    body["content"], body["metadata"] = HOLLOW, metadata
    setattr_ = object.__setattr__
    setattr_(sealed, "_json", orjson.dumps(body).decode())
    if rec._json is None:
        setattr_(rec, "_json", plain.decode())
    return sealed


def unseal(value: Value, key_of: KeyOf) -> Value:
    """The plain record of a sealed one (a plain one is returned as is).

    Raises ``Shredded`` if its key was destroyed, ``DecodeError`` if it does not decrypt.
    """
    env = _envelope(value)
    if env is None:
        return value
    version, scope, key_id, body = [*env.split(".", 3), "", "", ""][:4]
    secrets = version == _SECRETS and isinstance(value, MessageRecord)
    if (version != _VERSION and not secrets) or scope not in ("s", "u"):
        raise DecodeError(f"sealed record of an unknown format {version}.{scope}")
    owner = owner_of(value) if scope == "u" else None
    key = key_of(owner)
    if key is None or key.id != key_id:
        raise Shredded(f"the data key that sealed it was destroyed ({owner!r})")
    ns = Key("message", value.id) if secrets else codec.key_of(value)
    try:
        raw = base64.b64decode(body)
        plain = key.aead.decrypt(raw[:12], raw[12:], _aad(ns.ns, ns.id, owner))
    except (InvalidTag, ValueError) as exc:
        raise DecodeError(
            f"{ns} does not decrypt: it was sealed for another record or owner, or changed"
        ) from exc
    if isinstance(value, MessageRecord):
        if secrets:
            return _opened_message(value, plain)
        return codec.message_from_row(plain, value.conversation_id, value.user_id)
    out: Value = codec.from_payload(ns.ns, plain)
    return out


def _opened_message(sealed: MessageRecord, secrets: bytes) -> MessageRecord:
    """The plain message of a ``_SECRETS`` envelope: the sealed model with its content and
    metadata back (authenticated by the AEAD, so not validated again)."""
    try:
        content, metadata = orjson.loads(secrets)
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise DecodeError(f"message {sealed.id} has sealed fields of another shape") from exc
    if not isinstance(content, str) or not isinstance(metadata, dict):
        raise DecodeError(f"message {sealed.id} has sealed fields of another shape")
    return sealed.with_message(_copy(sealed.message, content=content, metadata=metadata))


def _aad(ns: str, id_: str, owner: str | None) -> bytes:
    return "\x00".join(("bruno-memory/1", ns, id_, owner or "")).encode("utf-8", "surrogatepass")


def _envelope(value: Value) -> str | None:
    if isinstance(value, MessageRecord):
        md: Any = value.message.metadata
    elif isinstance(value, MemoryEntry):
        md = value.metadata.custom_fields
    else:
        md = value.metadata
    env = md.get(SEALED) if md else None
    return env if isinstance(env, str) else None


def _message(rec: Any, key: DataKey, env: str) -> MessageRecord:
    m: Message = rec.message
    sealed = _copy(m, content=key.index.document(m.content), metadata=_clear(m, env))
    return MessageRecord(sealed, rec.conversation_id, rec.user_id)


def _clear(m: Message, env: str) -> dict[str, Any]:
    """A sealed message's metadata: the envelope, and the archive flag (when it was
    archived, no user data) in clear, so stores still leave archived messages out."""
    flag = m.metadata.get(ARCHIVED) if m.metadata else None
    return {SEALED: env} if flag is None else {SEALED: env, ARCHIVED: flag}


def _copy(model: Message, **changes: Any) -> Message:
    """``model`` with ``changes``, unvalidated (the hot path; ~5x cheaper than
    ``model_construct``): every other field is an immutable value shared with it."""
    out = Message.__new__(Message)
    setattr_ = object.__setattr__
    setattr_(out, "__dict__", {**model.__dict__, **changes})
    setattr_(out, "__pydantic_fields_set__", set(model.__pydantic_fields_set__) | set(changes))
    setattr_(out, "__pydantic_extra__", None)
    setattr_(out, "__pydantic_private__", None)
    return out


def _session(s: Any, key: DataKey, env: str) -> SessionContext:
    return SessionContext.model_construct(
        session_id=s.session_id, user_id=s.user_id, conversation_id=s.conversation_id,
        started_at=s.started_at, ended_at=s.ended_at, last_activity=s.last_activity,
        is_active=s.is_active, state={}, metadata={SEALED: env},
    )


def _user(u: Any, key: DataKey, env: str) -> UserContext:
    return UserContext.model_construct(
        user_id=u.user_id, name=None, preferences={}, profile={}, metadata={SEALED: env},
        created_at=u.created_at, last_active=u.last_active,
    )


def _memory(e: Any, key: DataKey, env: str) -> MemoryEntry:
    md: MemoryMetadata = e.metadata
    label = key.index.label
    sealed_md = MemoryMetadata.model_construct(
        category=label(md.category) if md.category else None,
        tags=[label(t) for t in md.tags], confidence=md.confidence, importance=md.importance,
        custom_fields={SEALED: env},
    )
    return MemoryEntry.model_construct(
        id=e.id, content=key.index.document(e.content), memory_type=e.memory_type,
        user_id=e.user_id, conversation_id=e.conversation_id, metadata=sealed_md,
        created_at=e.created_at, updated_at=e.updated_at, last_accessed=e.last_accessed,
        expires_at=e.expires_at,
    )


_SEALERS: dict[type, Callable[[Any, DataKey, str], Value]] = {
    MessageRecord: _message,
    SessionContext: _session,
    UserContext: _user,
    MemoryEntry: _memory,
}


def is_record(item: Any) -> bool:
    """Whether ``item`` is a record a tier stores."""
    return type(item) in _SEALERS
