"""check, list, init, reindex: commands about a stack's config and tiers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bruno_memory.build import check_config, open_tiers
from bruno_memory.cli.common import cfg_of, table
from bruno_memory.config.loader import describe, load_config, shipped_stack, shipped_stacks
from bruno_memory.stack.stats import TierStats


def register(commands: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add the parsers; returns (async commands, commands that open no tier)."""
    check = commands.add_parser("check", help="validate a config, open each tier, print a table")
    check.add_argument(
        "config",
        nargs="?",
        help="YAML file or shipped stack name, e.g. laptop (default: the embedded default)",
    )
    init = commands.add_parser("init", help="write a copy of a shipped stack to edit")
    init.add_argument("name", nargs="?", help="a shipped stack (none: list them)")
    init.add_argument("path", nargs="?", help="file or folder to write (default: ./NAME.yaml)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    commands.add_parser("list", help="list the shipped stacks")
    reindex = commands.add_parser("reindex", help="re-embed everything with the configured model")
    reindex.add_argument("config", help="YAML file or shipped stack name")
    return {"check": _check, "reindex": _reindex}, {"init": _init, "list": _list}


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


async def _reindex(args: argparse.Namespace) -> int:
    from bruno_memory.reindex import reindex

    done = await reindex(args.config)
    print(
        f"re-embedded {done['records']} records into {', '.join(done['tiers']) or 'no tier'}"
        + (f"; dropped {', '.join(done['dropped'])}" if done["dropped"] else "")
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = [[name, describe(f.read_text(encoding="utf-8"))] for name, f in shipped_stacks().items()]
    print(table([["stack", "description"], *rows]))
    return 0


def _init(args: argparse.Namespace) -> int:
    if args.name is None:
        _list(args)
        print("\nname one: bruno-memory init NAME [PATH]", file=sys.stderr)
        return 0
    text = shipped_stack(args.name)
    target = Path(args.path or f"{args.name}.yaml")
    if target.is_dir():
        target /= f"{args.name}.yaml"
    try:
        with target.open("w" if args.force else "x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        print(f"error: {target} exists; pass --force to overwrite it", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {target} (the shipped stack {args.name!r}); edit it, then run:")
    print(f"  bruno-memory check {target}")
    return 0
