"""metrics: the stack's Prometheus metrics (``managers.metrics``, extra ``metrics``),
served on ``/metrics`` until interrupted, or printed once (``--once``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from bruno_memory.build import build_memory
from bruno_memory.config.loader import load_config

log = logging.getLogger(__name__)


def register(commands: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add the parser; returns (async commands, commands that open no tier)."""
    run = commands.add_parser(
        "metrics", help="serve the stack's Prometheus metrics on /metrics (extra 'metrics')"
    )
    run.add_argument("config", help="YAML file or shipped stack name")
    run.add_argument("--port", type=int, default=9464, help="port to listen on (9464)")
    run.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (127.0.0.1; 0.0.0.0: every interface)")
    run.add_argument("--once", action="store_true",
                     help="print the exposition text to stdout and exit")
    return {"metrics": _metrics}, {}


async def _metrics(args: argparse.Namespace) -> int:
    from bruno_memory.managers import metrics

    metrics.client()  # the extra missing: a clear error before any tier opens
    async with await build_memory(load_config(args.config)) as memory:
        if args.once:
            sys.stdout.write((await metrics.exposition(memory)).decode())
            return 0
        exporter = await metrics.serve(memory, port=args.port, addr=args.host)
        print(f"serving http://{args.host}:{exporter.port}/metrics (Ctrl-C stops)",
              file=sys.stderr, flush=True)
        try:
            await asyncio.Event().wait()  # until interrupted
        finally:
            await asyncio.to_thread(exporter.close)
    return 0
