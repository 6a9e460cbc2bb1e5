"""The ``bruno-memory`` command.

Exit status: 0 done; 1 the command ran and found a problem (a tier is down; ``init``'s
target exists: pass ``--force``; a ``copy`` that does not verify); 2 bad usage, a config
error or bad input (an archive line that is not valid: the message names the line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bruno_core.utils.exceptions import BrunoError

from bruno_memory._version import __version__
from bruno_memory.build import build_memory, check_config, open_tiers
from bruno_memory.config.loader import describe, load_config, shipped_stack, shipped_stacks
from bruno_memory.stack.restore import CONFLICTS
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
    _archive_parsers(commands)
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


def _archive_parsers(commands: Any) -> None:
    """export, import, copy (``managers.archive``)."""
    export = commands.add_parser("export", help="write the store (or one user) to a file")
    export.add_argument("config", help="YAML file or shipped stack name")
    export.add_argument("file", help="JSONL (or CSV) file to write; .gz: gzip")
    export.add_argument("--user", help="only this user's records (a GDPR access request)")
    export.add_argument("--embeddings", action="store_true", help="keep embeddings")
    export.add_argument("--anonymize", action="store_true", help="pseudonymize ids, redact PII")
    export.add_argument("--key", help="the pseudonymization key (default: a new one, on stderr)")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    load = commands.add_parser("import", help="restore the records of an exported file")
    load.add_argument("config", help="YAML file or shipped stack name")
    load.add_argument("file", help="a file written by export (.gz: gzip)")
    load.add_argument("--on-conflict", choices=CONFLICTS, default="skip",
                      help="a record held differently: keep it (skip), keep the newer, take the "
                      "file's (overwrite)")
    copy = commands.add_parser("copy", help="stream one stack into another, then verify")
    copy.add_argument("src", help="YAML file or shipped stack name to read")
    copy.add_argument("dst", help="YAML file or shipped stack name to write")
    copy.add_argument("--on-conflict", choices=CONFLICTS, default="skip")
    for sub in (export, load, copy):
        sub.add_argument("--json", action="store_true", help="print a JSON summary")


def _progress(what: str) -> Any:
    """A progress bar on stderr when it is a terminal, else ``None``."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(desc=what, unit=" records", file=sys.stderr)


def _report(args: argparse.Namespace, summary: dict[str, Any], text: str) -> None:
    print(json.dumps(summary, indent=2) if args.json else text)


async def _export(args: argparse.Namespace) -> int:
    from bruno_memory.managers import archive

    cfg = load_config(args.config)
    anonymizer = None
    if args.anonymize:
        key = args.key or archive.new_key()
        if not args.key:
            print(f"anonymization key (keep it to export with the same pseudonyms): {key}",
                  file=sys.stderr)
        anonymizer = archive.Anonymizer(key)
    bar = _progress("export")
    update = bar.update if bar is not None else None
    options = {"user_id": args.user, "embeddings": args.embeddings, "anonymizer": anonymizer,
               "progress": update}
    try:
        async with await build_memory(cfg) as memory:
            if args.format == "csv":
                counts = await archive.export_csv(memory, args.file, **options)
                summary: dict[str, Any] = {"path": args.file, "rows": counts}
            else:
                emb = cfg.embedding
                header = archive.Header(
                    cfg.namespace,
                    embedding_model=emb.model if emb else None,
                    embedding_dimension=emb.dimension if emb else None,
                )
                summary = (await archive.export(memory, args.file, header=header,
                                                **options)).summary()
    except OSError as exc:
        print(f"error: cannot write {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    total = summary.get("records", sum(summary.get("rows", {}).values()))
    _report(args, summary, f"exported {total} records to {args.file}")
    return 0


async def _import(args: argparse.Namespace) -> int:
    from bruno_memory.managers import archive

    bar = _progress("import")
    try:
        async with await build_memory(load_config(args.config)) as memory:
            done = await archive.import_file(memory, args.file, on_conflict=args.on_conflict,
                                             progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    summary = done.summary()
    _report(args, summary, f"imported {summary['records']} records from {args.file}: "
            f"{done.written} written, {done.unchanged} unchanged, {done.kept} kept")
    return 0


async def _copy(args: argparse.Namespace) -> int:
    from bruno_memory.managers import archive

    src, dst = load_config(args.src), load_config(args.dst)
    bar = _progress("copy")
    try:
        async with await build_memory(src) as source, await build_memory(dst) as target:
            done = await archive.copy(source, target, on_conflict=args.on_conflict,
                                      progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    copied = sum(done.source.counts.values())
    _report(args, done.summary(), f"copied {copied} records: {done.written} written, "
            f"{done.unchanged} unchanged, {done.kept} kept; "
            + ("verified" if done.verified else "NOT verified"))
    for difference in done.differences:
        print(f"differs: {difference}", file=sys.stderr)
    return 0 if done.verified else 1


COMMANDS = {"check": _check, "reindex": _reindex, "export": _export, "import": _import,
            "copy": _copy}
LOCAL = {"init": _init, "list": _list}  # no tier opened: no event loop

if __name__ == "__main__":
    raise SystemExit(main())
