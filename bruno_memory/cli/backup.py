"""backup, restore: consistent snapshots of the durable tier (``bruno_memory.backup``)."""

from __future__ import annotations

import argparse
from typing import Any

from bruno_memory.cli.common import report


def register(commands: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add the parsers; returns (async commands, commands that open no tier)."""
    backup = commands.add_parser(
        "backup", help="back the durable tier up into a folder (full, then incremental)"
    )
    backup.add_argument("config", help="YAML file or shipped stack name")
    backup.add_argument("dir", help="the backup folder (made if missing)")
    backup.add_argument("--full", action="store_true", help="a full backup even if one exists")
    restore = commands.add_parser("restore", help="apply a backup folder to a stack")
    restore.add_argument("config", help="YAML file or shipped stack name to restore into")
    restore.add_argument("dir", help="a folder written by backup")
    for sub in (backup, restore):
        sub.add_argument("--json", action="store_true", help="print a JSON summary")
    return {"backup": _backup, "restore": _restore}, {}


async def _backup(args: argparse.Namespace) -> int:
    from bruno_memory.backup import backup

    entry = await backup(args.config, args.dir, full=args.full)
    report(
        args,
        entry,
        f"{entry['kind']} backup {entry['file']} in {args.dir} "
        f"(watermark {entry['watermark']})",
    )
    return 0


async def _restore(args: argparse.Namespace) -> int:
    from bruno_memory.backup import restore

    done = await restore(args.config, args.dir)
    files = ", ".join(f"{a['file']} ({a['how']})" for a in done["applied"])
    report(args, done, f"restored {files}")
    return 0
