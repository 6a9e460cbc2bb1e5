"""What the ``redis`` tier stores, as pure functions: key names, window elements, commands.

A conversation's keys share one hash tag, hence one cluster slot::

    {<prefix>:conv:<id>}:win    LIST  [marker, oldest message .. newest message]
    {<prefix>:conv:<id>}:win:ids  HASH  the window's message ids -> their sort keys, and
                                the newest one's id
    {<prefix>:conv:<id>}:sess   the conversation's session
    {<prefix>:session:<id>}     {<prefix>:user:<id>}     {<prefix>:memory:<id>}
    {<prefix>:user:<id>}:keys   SET of every key written for that user (exact purge)
    <key>:lease                 a fill lease on <key> (same slot), revoked by every write
    <key>:filled                set by a fill: a write-behind flush evicts <key> (settle)
    {<prefix>:purged:<digest>}  set for a while by a purge: a fill of that user's data undone
                                (named by a digest: a forgotten user's id is kept nowhere)

The window's first element is a marker (``#1`` complete, ``#0`` newest only), so one
``LRANGE -N -1`` answers a read: N messages, or fewer plus the marker saying whether
they are all there. Each message element is a header line ``<sort key> <id> <user>``
and the message's JSON: a Lua script keeps the window exact on a put from the headers.
The window's ``ids`` hash lets that script append the newest message without reading
the window (a put into a window of 100 messages: ~440 -> ~15 us of the server's time);
it is trusted only while it holds one id per message and names the window's last as the
newest (so a window changed behind it, by a process of an earlier version, is read
again), dropped by every fill, and rebuilt by the first put that has to read the window.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from bruno_core.models.context import SessionContext

from bruno_memory.core import codec
from bruno_memory.core.archived import is_archived
from bruno_memory.core.ops import (
    MISS,
    ClaimConversation,
    ClearHistory,
    Delete,
    FillRecord,
    FillWindow,
    Key,
    Miss,
    Namespace,
    PurgeUser,
    Put,
    Value,
    WriteOp,
)
from bruno_memory.core.records import MessageRecord
from bruno_memory.tiers.redis.scripts import (
    FILL_RECORD_SHA,
    FILL_WINDOW_SHA,
    PUT_MESSAGE_SHA,
    SETTLE_SHA,
)
from bruno_memory.tiers.window import Window, serve

COMPLETE, PARTIAL = b"#1", b"#0"
Command = tuple[Any, ...]

@dataclass(frozen=True, slots=True)
class Ttls:
    """Milliseconds per kind of key; ``None`` never expires."""

    window: int | None
    session: int | None
    user: int | None
    memory: int | None

    def of(self, ns: Namespace) -> int | None:
        return {"conversation": self.session, "session": self.session, "user": self.user,
                "memory": self.memory}.get(ns, self.window)

    @property
    def index(self) -> int | None:
        """A user's key index outlives every key it lists."""
        values = (self.window, self.session, self.user, self.memory)
        return None if None in values else max(v for v in values if v is not None)


@dataclass(frozen=True, slots=True)
class KeyNames:
    """Key names under one prefix (a namespace)."""

    prefix: str

    def conversation(self, conversation_id: str, part: str) -> str:
        return f"{{{self.prefix}:conv:{conversation_id}}}:{part}"

    def window(self, conversation_id: str) -> str:
        return self.conversation(conversation_id, "win")

    def record(self, key: Key) -> str:
        if key.ns == "conversation":
            return self.conversation(key.id, "sess")
        return f"{{{self.prefix}:{key.ns}:{key.id}}}"

    def user_index(self, user_id: str) -> str:
        return f"{{{self.prefix}:user:{user_id}}}:keys"

    def purged(self, user_id: str) -> str:
        digest = hashlib.sha256(f"{self.prefix}\0{user_id}".encode()).hexdigest()[:32]
        return f"{{{self.prefix}:purged:{digest}}}"

    def target(self, target: Key | str) -> str:
        """The key a lease guards: a record's, or a conversation's window."""
        return self.record(target) if isinstance(target, Key) else self.window(target)

    @property
    def pattern(self) -> str:
        """A SCAN pattern matching every key of this prefix."""
        return "{" + "".join(f"[{c}]" if c in "*?[]\\" else c for c in self.prefix) + ":*"


def lease(name: str) -> str:
    """The fill lease on key ``name`` (same hash tag, hence same slot)."""
    return name + ":lease"


def filled(name: str) -> str:
    """The mark a fill leaves on key ``name`` (same slot)."""
    return name + ":filled"


def window_ids(window: str) -> str:
    """The hash of window ``window``'s message ids (same slot)."""
    return window + ":ids"


# -- window elements -------------------------------------------------------------------


def element(rec: MessageRecord) -> bytes:
    """A window element: ``<sort key> <id> <user id as JSON>\\n`` then the message's JSON."""
    head = f"{rec.sort_key!r} {rec.id} ".encode() + orjson.dumps(rec.user_id)
    return head + b"\n" + codec.payload(rec).encode()


def from_elements(items: Sequence[bytes], conversation_id: str) -> list[MessageRecord]:
    """Inverse of ``element`` for a window's items; raises ``codec.DecodeError``."""
    payloads: list[bytes] = []
    users: list[str | None] = []
    known: dict[bytes, str | None] = {}  # a window has few distinct users
    for item in items:
        head, _, text = item.partition(b"\n")
        parts = head.split(b" ", 2)
        raw = parts[2] if len(parts) == 3 else b"0"
        user = known[raw] if raw in known else known.setdefault(raw, _user(raw))
        payloads.append(text)
        users.append(user)
    return codec.messages_from_payloads(payloads, conversation_id, users)


def _user(raw: bytes) -> str | None:
    try:
        user = orjson.loads(raw)
    except orjson.JSONDecodeError:
        user = 0
    if user is not None and not isinstance(user, str):
        raise codec.DecodeError("window element has no valid header")
    return user


def window_range(limit: int | None) -> tuple[int, int]:
    """LRANGE bounds for a read of ``limit`` messages (0 only checks presence)."""
    if limit is None:
        return 0, -1
    return -max(limit, 1), -1


def parse_window(
    items: Sequence[bytes], conversation_id: str, limit: int | None
) -> Sequence[MessageRecord] | Miss:
    """Serve a read from the LRANGE answer, or miss (absent, or not complete enough)."""
    if not items:
        return MISS
    complete = items[0] == COMPLETE
    body = items[1:] if items[0][:1] == b"#" else items
    if limit == 0:
        return ()
    if not complete and (limit is None or len(body) < limit):
        return MISS
    return serve(Window(tuple(from_elements(body, conversation_id)), complete), limit)


# -- records ---------------------------------------------------------------------------


def decode_record(key: Key, data: bytes) -> Value:
    """A cached record, checked to be of the kind its key names."""
    value = codec.decode(data)
    expected = "session" if key.ns == "conversation" else key.ns
    if codec.key_of(value).ns != expected:
        raise codec.DecodeError(f"key {key} holds a {codec.key_of(value).ns} record")
    return value


def owner(value: Value) -> str | None:
    """The user whose purge must remove this record."""
    return getattr(value, "user_id", None)


# -- writes ----------------------------------------------------------------------------


@dataclass
class _Plan:
    names: KeyNames
    ttls: Ttls
    size: int
    purged: Mapping[str, Iterable[bytes | str]]
    lease_ms: int
    cmds: list[Command]
    owned: dict[str, dict[str, None]]

    def own(self, user: str | None, *keys: str) -> None:
        if user is not None:
            self.owned.setdefault(user, {}).update(dict.fromkeys(keys))

    def set(self, name: str, data: bytes, ttl: int | None) -> None:
        self.cmds.append(("SET", name, data, "PX", ttl) if ttl else ("SET", name, data))

    def expire(self, name: str, ttl: int | None) -> None:
        if ttl:
            self.cmds.append(("PEXPIRE", name, ttl))

    def put(self, op: Put | FillRecord) -> None:
        value, names = op.value, self.names
        if isinstance(value, MessageRecord):
            win = names.window(value.conversation_id)
            if is_archived(value):  # it leaves the window: refilled from the durable tier
                self.cmds.append(("DEL", win, lease(win), window_ids(win)))
                return
            self.cmds.append(("EVALSHA", PUT_MESSAGE_SHA, 3, win, lease(win), window_ids(win),
                              repr(value.sort_key), value.id, element(value), self.size,
                              self.ttls.window or 0))
            self.own(value.user_id, win, window_ids(win))
            return
        if isinstance(op, FillRecord) and op.lease is not None:  # only if the lease holds
            name = names.record(op.key)
            self.cmds.append(("EVALSHA", FILL_RECORD_SHA, 3, lease(name), name, filled(name),
                              op.lease, codec.encode(value), self.ttls.of(op.key.ns) or 0))
            self.own(owner(value), name)
            return
        keys = [op.key]
        if isinstance(value, SessionContext):
            keys.append(Key("conversation", value.conversation_id))
            win = names.window(value.conversation_id)
            self.own(value.user_id, win, window_ids(win))
        data = codec.encode(value)
        for key in dict.fromkeys(keys):
            name = names.record(key)
            self.set(name, data, self.ttls.of(key.ns))
            self.cmds.append(("DEL", lease(name)))
            self.own(owner(value), name)

    def fill(self, op: FillWindow) -> None:
        w = Window(op.messages, op.complete).trimmed(self.size)
        win = self.names.window(op.conversation_id)
        marker = COMPLETE if w.complete else PARTIAL
        items = (marker, *map(element, w.messages))
        if op.lease is not None:
            self.cmds.append(("EVALSHA", FILL_WINDOW_SHA, 4, lease(win), win, filled(win),
                              window_ids(win), op.lease, self.ttls.window or 0, *items))
        else:
            self.cmds += [("DEL", win, window_ids(win)), ("RPUSH", win, *items)]
            self.expire(win, self.ttls.window)
        self.own_all(win, w.messages)

    def own_all(self, name: str, messages: Iterable[MessageRecord]) -> None:
        for user in {m.user_id for m in messages}:
            self.own(user, name)

    def purge(self, op: PurgeUser) -> None:
        keys = dict.fromkeys(k.decode() if isinstance(k, bytes) else k
                             for k in self.purged.get(op.user_id, ()))
        keys.update(self.owned.pop(op.user_id, {}))
        index = self.names.user_index(op.user_id)
        self.cmds.append(("SET", self.names.purged(op.user_id), b"1", "PX", self.lease_ms))
        for name in (*keys, self.names.record(Key("user", op.user_id)), index):
            self.cmds.append(("DEL", name))

    def indexes(self) -> None:
        for user, keys in self.owned.items():
            index = self.names.user_index(user)
            self.cmds.append(("SADD", index, *keys))
            self.expire(index, self.ttls.index)


def plan(
    ops: Sequence[WriteOp], names: KeyNames, ttls: Ttls, size: int,
    purged: Mapping[str, Iterable[bytes | str]], lease_ms: int,
) -> list[Command]:
    """The commands applying ``ops`` in order; each is idempotent, so a batch may be re-sent.

    Every write revokes the fill leases of what it changes; a purge marks its user as
    purged for ``lease_ms`` (a lease's life), so a fill read before it is undone.

    Args:
        purged: for each purged user, the members of its key index (read beforehand).
    """
    p = _Plan(names, ttls, size, purged, lease_ms, [], {})
    for op in ops:
        if isinstance(op, (Put, FillRecord)):
            p.put(op)
        elif isinstance(op, Delete):
            if op.key.ns != "message":  # messages live in windows, found by conversation
                name = names.record(op.key)
                p.cmds.append(("DEL", name, lease(name)))
        elif isinstance(op, FillWindow):
            p.fill(op)
        elif isinstance(op, (ClearHistory, ClaimConversation)):  # a claim re-owns: refill
            win = names.window(op.conversation_id)
            p.cmds.append(("DEL", win, lease(win), window_ids(win)))
            if isinstance(op, ClaimConversation):
                p.own(op.user_id, win)
        elif isinstance(op, PurgeUser):
            p.purge(op)
    p.indexes()
    return p.cmds


def settle_commands(
    targets: Iterable[Hashable], names: KeyNames
) -> list[tuple[Hashable, Command]]:
    """For each record key or ``("window", conversation id)``, its SETTLE script call."""
    out: list[tuple[Hashable, Command]] = []
    for target in targets:
        extra: tuple[str, ...] = ()
        if isinstance(target, Key) and target.ns != "message":  # messages: in windows
            name = names.record(target)
        elif isinstance(target, tuple) and target[0] == "window":
            name = names.window(target[1])
            extra = (window_ids(name),)
        else:
            continue  # a purge: its mark undoes racing fills (see plan)
        out.append((target, ("EVALSHA", SETTLE_SHA, 3 + len(extra), name, lease(name),
                             filled(name), *extra)))
    return out


def leased_fills(ops: Sequence[WriteOp], names: KeyNames) -> dict[str, list[str]]:
    """For each user whose data a leased fill wrote, the keys it wrote."""
    out: dict[str, list[str]] = {}
    for op in ops:
        if isinstance(op, FillRecord) and op.lease is not None:
            user = owner(op.value)
            if user is not None:
                out.setdefault(user, []).append(names.record(op.key))
        elif isinstance(op, FillWindow) and op.lease is not None:
            for user in {m.user_id for m in op.messages if m.user_id is not None}:
                out.setdefault(user, []).append(names.window(op.conversation_id))
    return out


def mask_url(url: str) -> str:
    """The URL with its password (userinfo or ``?password=``) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    if "password" in parts.query:
        query = _SECRET_QUERY.sub(r"\1***", parts.query)
        parts = parts._replace(query=query)
    return parts.geturl()


_SECRET_QUERY = re.compile(r"((?:^|&)password=)[^&]*")


def address(url: str) -> str:
    """``host:port`` of a redis URL (never its credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return f"{host}:{port}"
