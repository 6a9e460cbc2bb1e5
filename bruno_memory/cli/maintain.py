"""maintain: the lifecycle steps (summaries, archival, ...) over a stack's users."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bruno_memory.build import build_memory
from bruno_memory.cli.common import report
from bruno_memory.config.lifecycle import LifecycleConfig
from bruno_memory.config.loader import load_config
from bruno_memory.config.models import StackConfig


def register(commands: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add the parser; returns (async commands, commands that open no tier)."""
    run = commands.add_parser("maintain", help="summarise and archive (the lifecycle: section)")
    run.add_argument("config", help="YAML file or shipped stack name")
    run.add_argument("--user", help="only this user")
    run.add_argument("--dry-run", action="store_true", help="report what would be done")
    run.add_argument("--steps", help="comma-separated steps (default: lifecycle.steps)")
    run.add_argument("--json", action="store_true", help="print a JSON summary")
    return {"maintain": _maintain}, {}


def lease_for(cfg: StackConfig) -> Any:
    """The lease of the stack's first shared store: Redis, else PostgreSQL, else a lock file
    next to the SQLite database; ``None`` when the stack has none of them."""
    from bruno_memory.drivers import lease

    name = f"bruno:{cfg.namespace}:maintain"
    ttl = (cfg.lifecycle or LifecycleConfig()).lease_ttl
    kinds = {t.kind: t for t in cfg.tiers}
    if "redis" in kinds:
        from bruno_memory.drivers.redis import connect

        tier: Any = kinds["redis"]
        password = tier.password.get_secret_value() if tier.password is not None else None
        client = connect(tier.url, cluster=tier.cluster, nodes=tier.nodes, password=password)
        return lease.RedisLease(client, name, ttl)
    if "postgres" in kinds:
        return lease.PostgresLease(kinds["postgres"].dsn.get_secret_value(), name, ttl)  # type: ignore[attr-defined]
    if "sqlite" in kinds:
        db = Path(str(kinds["sqlite"].path))  # type: ignore[attr-defined]
        return lease.FileLease(db.with_name(db.name + f".{cfg.namespace}.maintain.lock"), ttl)
    return None


async def _maintain(args: argparse.Namespace) -> int:
    from bruno_memory.managers.lifecycle.runner import Runner, make_steps

    cfg = load_config(args.config)
    embedder = None
    if cfg.embedding is not None:  # the extractive summarizer ranks sentences by meaning
        from bruno_memory.providers.embedding import create_embedding

        embedder = create_embedding(cfg.embedding)
    steps = make_steps(cfg.lifecycle or LifecycleConfig(),
                       args.steps.split(",") if args.steps else None, embedder=embedder)
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(desc="maintain", unit=" steps", file=sys.stderr)
    memory = await build_memory(cfg)
    try:
        runner = Runner(memory, steps, lease=lease_for(cfg),
                        progress=(lambda s, u: bar.update(1)) if bar is not None else None)
        reports = await runner.run([args.user] if args.user else None, dry_run=args.dry_run)
    finally:
        if bar is not None:
            bar.close()
        await memory.close()
    rows = [r.summary() for r in reports]
    totals = {k: sum(r[k] for r in rows) for k in ("added", "changed", "archived", "deleted")}
    text = (f"{'dry run: ' if args.dry_run else ''}{len({r['user_id'] for r in rows})} users, "
            + ", ".join(f"{v} {k}" for k, v in totals.items()))
    report(args, {"dry_run": args.dry_run, "totals": totals, "reports": rows}, text)
    return 0
