"""The ``bruno-memory`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from bruno_core.utils.exceptions import BrunoError

from bruno_memory.build import check_config, open_tiers
from bruno_memory.config.loader import load_config
from bruno_memory.stack.stats import TierStats


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="bruno-memory", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a config, open each tier, print a table")
    check.add_argument("config", nargs="?", help="YAML file (default: the embedded default)")
    reindex = commands.add_parser("reindex", help="re-embed everything with the configured model")
    reindex.add_argument("config", help="YAML file of the stack")
    args = parser.parse_args(argv)
    try:
        return int(asyncio.run(COMMANDS[args.command](args)))
    except BrunoError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


async def _check(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    check_config(cfg)
    tiers, _ = await open_tiers(cfg)
    try:
        rows = [(t, await TierStats().probe(t)) for t in tiers]
    finally:
        for t in reversed(tiers):
            await t.aclose()
    print(
        table(
            [["tier", "kind", "write", "status", "latency", "capabilities"]]
            + [
                [
                    t.name,
                    r["kind"],
                    cfg_of(t).write,
                    r["status"],
                    f"{r['latency_ms']:.2f} ms",
                    ", ".join(r["capabilities"]),
                ]
                for t, r in rows
            ]
        )
    )
    down = [t.name for t, r in rows if r["status"] != "up"]
    for t, r in rows:
        if r["status"] != "up":
            print(f"{t.name}: {r.get('error')}", file=sys.stderr)
    return 1 if down else 0


def cfg_of(tier: Any) -> Any:
    return tier.config


def table(rows: list[list[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(line.rstrip() for line in lines)


async def _reindex(args: argparse.Namespace) -> int:
    from bruno_memory.reindex import reindex

    done = await reindex(args.config)
    print(
        f"re-embedded {done['records']} records into {', '.join(done['tiers']) or 'no tier'}"
        + (f"; dropped {', '.join(done['dropped'])}" if done["dropped"] else "")
    )
    return 0


COMMANDS = {"check": _check, "reindex": _reindex}

if __name__ == "__main__":
    raise SystemExit(main())
