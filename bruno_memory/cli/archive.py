"""export, import, copy: moving records in and out (``managers.archive``)."""

from __future__ import annotations

import argparse
import gc
import sys
from typing import Any

from bruno_memory.build import build_memory
from bruno_memory.cli.common import progress, report
from bruno_memory.config.loader import load_config
from bruno_memory.stack.restore import CONFLICTS


def register(commands: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add the parsers; returns (async commands, commands that open no tier)."""
    export = commands.add_parser("export", help="write the store (or one user) to a file")
    export.add_argument("config", help="YAML file or shipped stack name")
    export.add_argument("file", help="JSONL (or CSV) file to write; .gz: gzip")
    export.add_argument("--user", help="only this user's records (a GDPR access request)")
    export.add_argument("--embeddings", action="store_true", help="keep embeddings")
    export.add_argument("--anonymize", action="store_true", help="pseudonymize ids, redact PII")
    export.add_argument("--key", help="the pseudonymization key (default: a new one, on stderr)")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument(
        "--since",
        type=int,
        metavar="WATERMARK",
        help="incremental: only what changed after this watermark (an earlier export's)",
    )
    export.add_argument("--decrypt", action="store_true",
                        help="from an encrypted stack, write plain records (default: sealed)")
    load = commands.add_parser("import", help="restore the records of an exported file")
    load.add_argument("config", help="YAML file or shipped stack name")
    load.add_argument("file", help="a file written by export (.gz: gzip)")
    load.add_argument(
        "--on-conflict",
        choices=CONFLICTS,
        help="a record held differently: keep it (skip), keep the newer, take the "
        "file's (overwrite); default: skip, overwrite for an incremental file",
    )
    copy = commands.add_parser("copy", help="stream one stack into another, then verify")
    copy.add_argument("src", help="YAML file or shipped stack name to read")
    copy.add_argument("dst", help="YAML file or shipped stack name to write")
    copy.add_argument("--on-conflict", choices=CONFLICTS, default="skip")
    for sub in (export, load, copy):
        sub.add_argument("--json", action="store_true", help="print a JSON summary")
    return {"export": _export, "import": _import, "copy": _copy}, {}


async def _export(args: argparse.Namespace) -> int:
    from bruno_memory.managers import archive

    cfg = load_config(args.config)
    anonymizer = None
    if args.anonymize:
        key = args.key or archive.new_key()
        if not args.key:
            print(
                f"anonymization key (keep it to export with the same pseudonyms): {key}",
                file=sys.stderr,
            )
        anonymizer = archive.Anonymizer(key)
    bar = progress("export")
    update = bar.update if bar is not None else None
    options = {
        "user_id": args.user,
        "embeddings": args.embeddings,
        "anonymizer": anonymizer,
        "progress": update,
    }
    try:
        async with await build_memory(cfg) as memory:
            plain = args.decrypt or anonymizer is not None
            if args.format == "csv" and not plain and await memory.encrypted():
                print("error: a CSV export is plain text: pass --decrypt (or --anonymize)",
                      file=sys.stderr)
                return 2
            if args.format == "csv":
                if args.since is not None:
                    print("error: --since is for JSONL exports", file=sys.stderr)
                    return 2
                counts = await archive.export_csv(memory, args.file, **options)
                summary: dict[str, Any] = {"path": args.file, "rows": counts}
            else:
                emb = cfg.embedding
                header = archive.Header(
                    cfg.namespace,
                    embedding_model=emb.model if emb else None,
                    embedding_dimension=emb.dimension if emb else None,
                )
                summary = (
                    await archive.export(
                        memory, args.file, header=header, since=args.since,
                        decrypt=args.decrypt, **options,
                    )
                ).summary()
    except OSError as exc:
        print(f"error: cannot write {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    total = summary.get("records", sum(summary.get("rows", {}).values()))
    report(args, summary, f"exported {total} records to {args.file}")
    return 0


async def _import(args: argparse.Namespace) -> int:
    from bruno_memory.managers import archive

    bar = progress("import")
    try:
        async with await build_memory(load_config(args.config)) as memory:
            gc.freeze()  # the heap so far outlives the import: full collections skip it
            try:  # (they walked it once per few thousand records: ~1/5 of the CPU)
                done = await archive.import_file(
                    memory,
                    args.file,
                    on_conflict=args.on_conflict,
                    progress=bar.update if bar is not None else None,
                )
            finally:
                gc.unfreeze()
    finally:
        if bar is not None:
            bar.close()
    summary = done.summary()
    report(
        args,
        summary,
        f"imported {summary['records']} records from {args.file}: "
        f"{done.written} written, {done.unchanged} unchanged, {done.kept} kept, "
        f"{done.erased} deletes applied",
    )
    return 0


async def _copy(args: argparse.Namespace) -> int:
    from bruno_memory.managers import archive

    src, dst = load_config(args.src), load_config(args.dst)
    bar = progress("copy")
    try:
        async with await build_memory(src) as source, await build_memory(dst) as target:
            done = await archive.copy(
                source,
                target,
                on_conflict=args.on_conflict,
                progress=bar.update if bar is not None else None,
            )
    finally:
        if bar is not None:
            bar.close()
    copied = sum(done.source.counts.values())
    report(
        args,
        done.summary(),
        f"copied {copied} records: {done.written} written, "
        f"{done.unchanged} unchanged, {done.kept} kept; "
        + ("verified" if done.verified else "NOT verified"),
    )
    for difference in done.differences:
        print(f"differs: {difference}", file=sys.stderr)
    return 0 if done.verified else 1
