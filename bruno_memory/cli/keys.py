"""rotate-key: rewrap every data key of an encrypted stack under its first master key."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bruno_memory.build import open_keyring
from bruno_memory.config.loader import load_config
from bruno_memory.core.errors import BrunoMemoryConfigError


def register(commands: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add the parser; returns (async commands, commands that open no tier)."""
    rotate = commands.add_parser(
        "rotate-key",
        help="rewrap the data keys under the first key of encryption.key (no downtime: "
        "keep the old key listed after it until this is done everywhere)",
    )
    rotate.add_argument("config", help="YAML file of an encrypted stack")
    rotate.add_argument("--json", action="store_true", help="print the summary as JSON")
    return {"rotate-key": _rotate}, {}


async def _rotate(args: argparse.Namespace) -> int:
    from bruno_memory.cli.common import report

    cfg = load_config(args.config)
    keyring = open_keyring(cfg, Path.cwd())
    if keyring is None:
        raise BrunoMemoryConfigError("the stack has no encryption: section", path="encryption")
    await keyring.acquire()
    try:
        done, kept = await keyring.rotate()
    finally:
        await keyring.release()
    summary = {"rewrapped": done, "already_current": kept}
    report(args, summary, f"rewrapped {done} data keys under the first key ({kept} already "
           "were); the other keys of encryption.key can now be removed")
    return 0
