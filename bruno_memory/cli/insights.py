"""stats, report: what is in a store and how its tiers perform (``managers.analytics``);
exit status 1 when a tier is down (the figures come from the others).

Tier performance counts the calls of this process: in the CLI, the report's own reads;
inside an application, ``analyze(memory)`` or the Prometheus exporter see the live ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from bruno_memory.build import build_memory
from bruno_memory.cli.common import progress, table
from bruno_memory.config.loader import load_config


def register(commands: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add the parsers; returns (async commands, commands that open no tier)."""
    stats = commands.add_parser("stats", help="growth, patterns, topics and tier performance")
    stats.add_argument("--json", action="store_true", help="print the whole report as JSON")
    report = commands.add_parser("report", help="write the analytics as an HTML dashboard")
    report.add_argument("--html", required=True, metavar="FILE", help="the page to write")
    report.add_argument("--title", default=None, help="the page title")
    for sub in (stats, report):
        sub.add_argument("config", help="YAML file or shipped stack name")
        sub.add_argument("--user", help="only this user's data")
        sub.add_argument("--period", choices=("day", "week", "month"), default="month",
                         help="topics per period (month)")
        sub.add_argument("--top-users", type=int, default=10,
                         help="topics of this many users, the most active (10)")
        sub.add_argument("--no-topics", action="store_true", help="skip keyword extraction")
    return {"stats": _stats, "report": _report}, {}


async def _analyze(args: argparse.Namespace) -> dict[str, Any]:
    from bruno_memory.managers.analytics import Options, analyze

    options = Options(period=args.period, top_users=args.top_users,
                      topics=not args.no_topics)
    bar = progress("analyze")
    try:
        async with await build_memory(load_config(args.config)) as memory:
            return await analyze(memory, user_id=args.user, options=options,
                                 progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()


async def _stats(args: argparse.Namespace) -> int:
    found = await _analyze(args)
    print(json.dumps(found, indent=2) if args.json else summary(found))
    return _status(found)


def _status(report: dict[str, Any]) -> int:
    """1 if a tier is down (named on stderr), else 0."""
    down = [name for name, t in report["tiers"].items() if t["status"] != "up"]
    for name in down:
        print(f"tier {name} is {report['tiers'][name]['status']}", file=sys.stderr)
    return 1 if down else 0


async def _report(args: argparse.Namespace) -> int:
    from bruno_memory.managers.analytics import render_html

    found = await _analyze(args)
    page = render_html(found, args.title or f"bruno-memory · {Path(args.config).stem}")
    target = Path(args.html)
    try:
        await asyncio.to_thread(target.write_text, page, encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    t = found["totals"]
    print(f"wrote {target}: {t['messages']} messages, {t['users']} users, "
          f"{t['memories']} memories")
    return _status(found)


def summary(report: dict[str, Any]) -> str:
    """The report as text: totals, recent growth, patterns, topics and tiers."""
    t, p = report["totals"], report["patterns"]
    r = p["responses"]
    lines = [
        f"{t['messages']} messages, {t['users']} users, {t['conversations']} conversations, "
        f"{t['sessions']} sessions, {t['memories']} memories",
        f"turns per session: mean {p['turns_per_session']['mean']}, "
        f"max {p['turns_per_session']['max']}; replies {r['responses']}, "
        f"mean {r['mean_seconds']} s, longest {r['max_seconds']} s",
    ]
    busiest = max(range(24), key=lambda h: p["active_hours"][h])
    if any(p["active_hours"]):
        lines.append(f"busiest hour (UTC): {busiest:02d}:00")
    daily = report["growth"]["daily"][-7:]
    if daily:
        lines += ["", table([["day", "messages", "memories"],
                             *([d["day"], str(d["messages"]), str(d["memories"])]
                               for d in daily)])]
    for user, periods in report["topics"].items():
        if periods:
            latest = max(periods)
            words = ", ".join(w["keyword"] for w in periods[latest][:6])
            lines.append(f"topics of {user} ({latest}): {words}")
    rows = [[name, x["status"] or "-",
             "-" if x["hit_ratio"] is None else f"{100 * x['hit_ratio']:.1f}%", op,
             str(o["count"]), f"{o['p50_ms']:.3f}", f"{o['p99_ms']:.3f}"]
            for name, x in report["tiers"].items()
            for op, o in (sorted(x["operations"].items()) or [("-", _NONE)])]
    lines += ["", table([["tier", "status", "hit ratio", "operation", "calls", "p50 ms",
                          "p99 ms"], *rows])]
    return "\n".join(lines)


_NONE = {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0}
