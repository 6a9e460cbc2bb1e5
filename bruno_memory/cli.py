"""The ``bruno-memory`` command.

Exit status: 0 done; 1 the command ran and found a problem (a tier is down; ``init``'s
target exists: pass ``--force``); 2 bad usage or a config error (the message says which).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bruno_core.utils.exceptions import BrunoError

from bruno_memory._version import __version__
from bruno_memory.build import check_config, open_tiers
from bruno_memory.config.loader import describe, load_config, shipped_stack, shipped_stacks
from bruno_memory.stack.stats import TierStats


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="bruno-memory",
        description="Check, start from and maintain bruno-memory stacks.",
        epilog="exit status: 0 done, 1 a problem found (a tier down, a file in the way), "
        "2 bad usage or config",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
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
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse printed them
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    try:
        if args.command in LOCAL:
            return LOCAL[args.command](args)
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


COMMANDS = {"check": _check, "reindex": _reindex}
LOCAL = {"init": _init, "list": _list}  # no tier opened: no event loop

if __name__ == "__main__":
    raise SystemExit(main())
