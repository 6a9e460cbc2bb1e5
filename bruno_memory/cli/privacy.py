"""audit: list a stack's audit trail and verify its hash chain (``stack.audit``)."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

from bruno_memory.build import build_memory
from bruno_memory.cli.common import report, table

PAGE = 1000


def register(commands: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add the parsers; returns (async commands, commands that open no tier)."""
    audit = commands.add_parser("audit", help="list the audit trail, verify its hash chain")
    audit.add_argument("config", help="YAML file or shipped stack name (with an audit: section)")
    audit.add_argument("--user", help="only the records about this user's data")
    audit.add_argument("--verify", action="store_true",
                       help="check the whole chain; exit 1 naming each edited or deleted record")
    audit.add_argument("--after", type=int, default=0, help="list the records numbered after this")
    audit.add_argument("--limit", type=int, default=100, help="list at most this many (0: none)")
    audit.add_argument("--json", action="store_true", help="print JSON")
    return {"audit": _audit}, {}


async def _audit(args: argparse.Namespace) -> int:
    async with await build_memory(args.config) as memory:
        records = [] if args.limit <= 0 else await memory.audit_trail(
            user_id=args.user, after=args.after, limit=args.limit)
        verdict = await memory.verify_audit() if args.verify else None
    rows = [[str(r.seq), _when(r.event.at), r.event.actor, r.event.action, r.event.kind,
             r.event.subject or "-", ",".join(r.event.targets)[:60]] for r in records]
    lines = [table([["seq", "at", "actor", "action", "kind", "subject", "targets"], *rows])]
    summary: dict[str, Any] = {"records": [_json(r) for r in records]}
    if verdict is not None:
        summary["verify"] = {
            "ok": verdict.ok, "records": verdict.records,
            "problems": [{"seq": p.seq, "what": p.what} for p in verdict.problems],
            "head": None if verdict.head is None else {"seq": verdict.head[0],
                                                        "hash": verdict.head[1]},
        }
        head = f"head {verdict.head[0]} {verdict.head[1]}" if verdict.head else "empty"
        lines.append(f"chain: {verdict.records} records, "
                     f"{'intact' if verdict.ok else 'BROKEN'} ({head})")
        lines += [f"  {p}" for p in verdict.problems]
    report(args, summary, "\n".join(lines))
    return 0 if verdict is None or verdict.ok else 1


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")


def _json(r: Any) -> dict[str, Any]:
    e = r.event
    return {"seq": r.seq, "at": _when(e.at), "actor": e.actor, "action": e.action,
            "kind": e.kind, "subject": e.subject, "targets": list(e.targets),
            "detail": e.detail, "prev": r.prev, "hash": r.hash}
