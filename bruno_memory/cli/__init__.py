"""The ``bruno-memory`` command.

Exit status: 0 done; 1 the command ran and found a problem (a tier is down; ``init``'s
target exists: pass ``--force``; a ``copy`` that does not verify; a broken audit chain;
``inspect`` found nothing; an erasure declined at the prompt: nothing changed); 2 bad usage,
a config error or bad input (an archive line that is not valid: the message names the line;
an erasure without ``--yes`` while stdin is not a terminal).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from bruno_core.utils.exceptions import BrunoError

from bruno_memory._version import __version__
from bruno_memory.cli import (
    admin,
    archive,
    backup,
    insights,
    keys,
    maintain,
    metrics,
    migrate,
    privacy,
    stacks,
)

MODULES = (
    stacks, archive, migrate, backup, admin, insights, maintain, privacy, keys, metrics
)
"""Each command module: ``register(subparsers) -> (async commands, local commands)``."""


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
    async_commands: dict[str, Any] = {}
    local: dict[str, Any] = {}  # no tier opened: no event loop
    for module in MODULES:
        run, plain = module.register(commands)
        async_commands.update(run)
        local.update(plain)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse printed them
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    try:
        if args.command in local:
            return int(local[args.command](args))
        return int(asyncio.run(async_commands[args.command](args)))
    except BrunoError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
