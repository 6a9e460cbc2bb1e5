"""inspect, search, forget-user, drop: looking inside a store and erasing from it."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import Any

from bruno_core.models.memory import MemoryQuery

from bruno_memory.build import build_memory
from bruno_memory.cli.common import report, table
from bruno_memory.config.loader import load_config

ABORTED = 1
"""Exit status when the operator declines at the prompt: nothing was changed."""
REFUSED = 2
"""Exit status of an erasure without ``--yes`` while stdin is not a terminal."""
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
END = datetime(9999, 1, 1, tzinfo=timezone.utc)


def register(commands: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add the parsers; returns (async commands, commands that open no tier)."""
    inspect = commands.add_parser("inspect", help="a user's or a conversation's recent data")
    inspect.add_argument("config", help="YAML file or shipped stack name")
    which = inspect.add_mutually_exclusive_group(required=True)
    which.add_argument("--user", help="a user: sessions, recent messages, memories")
    which.add_argument("--conversation", help="a conversation: owner, messages, memories")
    inspect.add_argument("--limit", type=int, default=10, help="rows per section (10)")
    search = commands.add_parser("search", help="a user's messages ranked by relevance")
    search.add_argument("config", help="YAML file or shipped stack name")
    search.add_argument("query", help="what to look for")
    search.add_argument("--user", required=True, help="whose messages")
    search.add_argument("--conversation", help="only this conversation")
    search.add_argument("--limit", type=int, default=10)
    search.add_argument("--mode", choices=("hybrid", "text", "vector"), default="hybrid")
    forget = commands.add_parser("forget-user", help="erase a user from every tier")
    forget.add_argument("config", help="YAML file or shipped stack name")
    forget.add_argument("user", help="the user id to erase")
    drop = commands.add_parser(
        "drop", help="erase the namespace: schema, keys, streams, files, collections")
    drop.add_argument("config", help="YAML file or shipped stack name")
    for sub in (forget, drop):
        sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for sub in (inspect, search, forget, drop):
        sub.add_argument("--json", action="store_true", help="print JSON")
    return {"inspect": _inspect, "search": _search, "forget-user": _forget,
            "drop": _drop}, {}


def confirm(args: argparse.Namespace, question: str, answer: str) -> int | None:
    """``None`` to go on: ``--yes``, or ``answer`` typed at the terminal; else the exit
    status (``REFUSED`` without a terminal, ``ABORTED`` on another answer)."""
    if args.yes:
        return None
    if not sys.stdin.isatty():
        print("error: refusing to erase without confirmation: stdin is not a terminal; "
              "pass --yes", file=sys.stderr)
        return REFUSED
    print(f"{question}\nType {answer!r} to confirm: ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip() != answer:
        print("aborted: nothing was changed", file=sys.stderr)
        return ABORTED
    return None


def _when(instant: datetime | None) -> str:
    return instant.isoformat(timespec="seconds") if instant else "-"


def _short(text: str, width: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _dump(models: list[Any]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in models]


async def _inspect(args: argparse.Namespace) -> int:
    async with await build_memory(load_config(args.config)) as memory:
        if args.user is not None:
            found = await _user(memory, args.user, args.limit)
        else:
            found = await _conversation(memory, args.conversation, args.limit)
    if found is None:
        what = f"user {args.user!r}" if args.user else f"conversation {args.conversation!r}"
        print(f"nothing stored for {what}", file=sys.stderr)
        return 1
    summary, text = found
    report(args, summary, text)
    return 0


async def _user(memory: Any, user_id: str, limit: int) -> tuple[dict[str, Any], str] | None:
    stats = await memory.get_statistics(user_id)
    sessions = (await memory.list_sessions(user_id, limit=limit)).items
    memories = await memory.retrieve_memories(
        MemoryQuery(user_id=user_id, limit=limit, include_expired=True))
    if not (stats.get("total_messages") or sessions or memories):
        return None
    recent: list[Any] = []
    for conversation in (await memory.list_conversations(user_id, limit=limit)).items:
        recent += (await memory.page_messages(conversation.conversation_id, limit=limit)).items
    recent = sorted(recent, key=lambda m: m.timestamp.timestamp())[-limit:]
    text = "\n\n".join([
        f"user {user_id}: {stats['total_messages']} messages in {stats['conversations']} "
        f"conversations, {stats['sessions']} sessions ({stats['active_sessions']} active), "
        f"{stats['memories']} memories",
        "sessions (newest first)\n" + _sessions(sessions),
        "recent messages\n" + _messages(recent),
        "memories (most important first)\n" + _memories(memories),
    ])
    summary = {"user_id": user_id, "statistics": stats, "sessions": _dump(sessions),
               "messages": _dump(recent), "memories": _dump(memories)}
    return summary, text


async def _conversation(
    memory: Any, conversation_id: str, limit: int
) -> tuple[dict[str, Any], str] | None:
    session = await memory.conversation_session(conversation_id)
    messages = (await memory.page_messages(conversation_id, limit=limit)).items
    if session is None and not messages:
        return None
    owner = session.user_id if session else None
    memories = await memory.memories_between(
        owner, EPOCH, END, conversation_id=conversation_id, limit=limit) if owner else []
    text = "\n\n".join([
        f"conversation {conversation_id}: owner {owner or '(none)'}",
        "latest session\n" + (_sessions([session]) if session else "(none)"),
        "recent messages\n" + _messages(messages),
        "memories\n" + _memories(memories),
    ])
    summary = {"conversation_id": conversation_id, "owner": owner,
               "session": session.model_dump(mode="json") if session else None,
               "messages": _dump(messages), "memories": _dump(memories)}
    return summary, text


def _sessions(sessions: list[Any]) -> str:
    if not sessions:
        return "(none)"
    rows = [[s.session_id, s.conversation_id, _when(s.started_at), _when(s.last_activity),
             "active" if s.is_active else f"ended {_when(s.ended_at)}"] for s in sessions]
    return table([["session", "conversation", "started", "last activity", "state"], *rows])


def _messages(messages: list[Any]) -> str:
    if not messages:
        return "(none)"
    rows = [[_when(m.timestamp), getattr(m.role, "value", str(m.role)), _short(m.content)]
            for m in messages]
    return table([["time", "role", "content"], *rows])


def _memories(memories: list[Any]) -> str:
    if not memories:
        return "(none)"
    rows = [[str(e.id), getattr(e.memory_type, "value", str(e.memory_type)),
             _when(e.updated_at), _short(e.content, 60)] for e in memories]
    return table([["id", "type", "updated", "content"], *rows])


async def _search(args: argparse.Namespace) -> int:
    async with await build_memory(load_config(args.config)) as memory:
        hits = await memory.search(args.query, user_id=args.user, limit=args.limit,
                                   conversation_id=args.conversation, mode=args.mode)
    rows = [[f"{h.score:.4f}", _when(h.item.timestamp), h.item.conversation_id or "-",
             getattr(h.item.role, "value", str(h.item.role)), _short(h.item.content, 60)]
            for h in hits]
    text = table([["score", "time", "conversation", "role", "content"], *rows]) if hits \
        else f"no message of {args.user!r} matches {args.query!r}"
    summary = {"query": args.query, "user_id": args.user, "hits": [
        {"score": h.score, "message": h.item.model_dump(mode="json")} for h in hits]}
    report(args, summary, text)
    return 0


async def _forget(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    async with await build_memory(cfg) as memory:
        stats = await memory.get_statistics(args.user)
        held = {k: stats.get(k, 0) for k in ("total_messages", "sessions", "memories")}
        question = (f"Erase user {args.user!r} from every tier of namespace "
                    f"{cfg.namespace!r}: {held['total_messages']} messages, "
                    f"{held['sessions']} sessions, {held['memories']} memories?")
        stop = confirm(args, question, args.user)
        if stop is not None:
            return stop
        await memory.forget_user(args.user)
        await memory.flush()
    report(args, {"user_id": args.user, "erased": held},
           f"erased user {args.user}: {held['total_messages']} messages, "
           f"{held['sessions']} sessions, {held['memories']} memories")
    return 0


async def _drop(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    memory = await build_memory(cfg)
    try:
        lines = [f"  {tier.name}: {tier!r}" for tier in memory.tiers]  # secrets masked
        question = (f"Drop namespace {cfg.namespace!r} for good: every record of\n"
                    + "\n".join(lines) + "\nStop every process using it first.")
        stop = confirm(args, question, cfg.namespace)
        if stop is not None:
            return stop
        await memory.drop()
    finally:
        await memory.close()
    report(args, {"namespace": cfg.namespace, "dropped": [line.strip() for line in lines]},
           f"dropped namespace {cfg.namespace}:\n" + "\n".join(lines))
    return 0
