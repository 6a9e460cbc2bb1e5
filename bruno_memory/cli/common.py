"""What the commands share: tables, progress bars, summaries."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def cfg_of(tier: Any) -> Any:
    return tier.config


def table(rows: list[list[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(line.rstrip() for line in lines)


def progress(what: str) -> Any:
    """A progress bar on stderr when it is a terminal, else ``None``."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(desc=what, unit=" records", file=sys.stderr)


def report(args: argparse.Namespace, summary: dict[str, Any], text: str) -> None:
    print(json.dumps(summary, indent=2) if args.json else text)
