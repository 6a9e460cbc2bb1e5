"""migrate: the schema version of each durable tier, and moving it up or down."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bruno_memory.cli.common import table
from bruno_memory.config.loader import load_config
from bruno_memory.tiers.sql.schemas import is_durable, open_schema


def register(commands: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add the parser; returns (async commands, commands that open no tier)."""
    migrate = commands.add_parser(
        "migrate", help="show or change the schema version of the durable tiers"
    )
    migrate.add_argument("config", help="YAML file or shipped stack name")
    migrate.add_argument("--status", action="store_true", help="only show each version")
    migrate.add_argument(
        "--to", type=int, metavar="N", help="the version to go to, up or down (default: newest)"
    )
    migrate.add_argument(
        "--dry-run", action="store_true", help="print the statements, change nothing"
    )
    migrate.add_argument("--json", action="store_true", help="print a JSON summary")
    return {"migrate": _migrate}, {}


async def _migrate(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    durable = [t for t in cfg.tiers if is_durable(t)]
    if not durable:
        print("error: the stack has no sqlite or postgres tier to migrate", file=sys.stderr)
        return 2
    out: list[dict[str, Any]] = []
    for tier in durable:
        async with open_schema(tier, cfg.namespace) as schema:
            before = await schema.status()
            row = {**before.summary(), "steps": []}
            if not args.status:
                steps = await schema.migrate(args.to, dry_run=args.dry_run)
                row["steps"] = [
                    {"migration": s.number, "direction": s.direction, "version": s.version,
                     **({"statements": s.statements} if args.dry_run else {})}
                    for s in steps
                ]
                row["version"] = before.version if args.dry_run else (await schema.status()).version
            out.append(row)
    _print(args, out)
    return 0


def _print(args: argparse.Namespace, out: list[dict[str, Any]]) -> None:
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "tiers": out}, indent=2))
        return
    rows = [["tier", "where", "version", "newest", "steps"]]
    for r in out:
        steps = ", ".join(f"{s['direction']} {s['migration']}" for s in r["steps"]) or "-"
        rows.append([r["tier"], r["where"], str(r["version"]), str(r["latest"]), steps])
    print(table(rows))
    if args.dry_run:
        for r in out:
            for s in r["steps"]:
                print(f"\n-- {r['tier']}: {s['direction']} migration {s['migration']}")
                for statement in s["statements"]:
                    print(f"{statement};")
