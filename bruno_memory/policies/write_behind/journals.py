"""The journal a write-behind tier's config asks for."""

from __future__ import annotations

from pathlib import Path

from bruno_memory.config.models import JournalConfig
from bruno_memory.policies.write_behind.journal import Journal, default_owner
from bruno_memory.policies.write_behind.journal_file import FileJournal


def create_journal(cfg: JournalConfig, tier: str, namespace: str, base_dir: Path) -> Journal:
    """The journal a tier's config asks for (not opened)."""
    owner = cfg.owner or default_owner()
    if cfg.kind == "redis":
        from bruno_memory.policies.write_behind.journal_redis import RedisJournal

        # one hash tag: the stream, its dead letters and liveness keys share a cluster slot;
        # not under the cache's "{namespace:" prefix, so clearing the cache spares it
        stream = cfg.stream or f"journal:{{{namespace}:{tier}}}"
        return RedisJournal(cfg, stream, owner, tier)
    path = Path(cfg.path) if cfg.path else Path(f"{namespace}-{tier}.journal")
    return FileJournal(path if path.is_absolute() else base_dir / path, owner, tier)
