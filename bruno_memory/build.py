"""build_memory(): load the config, create each tier, wrap its policies, open, compose."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

from bruno_core.models.message import Message

from bruno_memory.config.lifecycle import LifecycleConfig
from bruno_memory.config.loader import Source, load_config
from bruno_memory.config.models import ContextConfig, StackConfig, TierConfig
from bruno_memory.config.registry import tier_class
from bruno_memory.core.audit import Auditing
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.errors import BrunoMemoryConfigError
from bruno_memory.stack.engine import Engine
from bruno_memory.stack.facade import Composer, MemoryStack
from bruno_memory.stack.plumbing import Conversing
from bruno_memory.stack.redaction import redactor_of
from bruno_memory.stack.routing import check
from bruno_memory.tiers.base import Tier, TierContext

NEEDS: dict[str, frozenset[Capability]] = {
    "invalidation": frozenset({Capability.CLEAR}),  # a cache it can drop when out of sync
}
"""What a tier must be able to do to carry a policy."""

POLICIES: dict[str, str] = {
    "fallback": "bruno_memory.policies.fallback.policy:wrap",
    "write-behind": "bruno_memory.policies.write_behind.policy:wrap",
    "invalidation": "bruno_memory.policies.invalidation:wrap",
}


def create_tier(cfg: TierConfig, context: TierContext, keyring: Any = None) -> Tier:
    """An unopened tier with its policies wrapped around it (innermost first); with a
    ``keyring`` (encryption), a tier storing outside the process is sealed outermost."""
    cls = tier_class(cfg.kind)
    tier: Tier = cls(cfg, context)
    for name in policies_of(cfg):
        module, _, attr = POLICIES[name].partition(":")
        tier = getattr(importlib.import_module(module), attr)(tier, cfg, context)
    if keyring is not None and Capability.IN_PROCESS not in cls.capabilities:
        from bruno_memory.policies.encryption.policy import Encrypting

        tier = Encrypting(tier, keyring)
    return tier


def policies_of(cfg: TierConfig) -> list[str]:
    """The policy wrappers a tier's config asks for, innermost first."""
    out = []
    if cfg.retry or cfg.breaker or cfg.on_error != "fail":
        out.append("fallback")
    if cfg.write == "write-behind" or cfg.on_error == "queue":
        out.append("write-behind")
    if cfg.invalidation is not None:
        out.append("invalidation")
    return out


def check_config(cfg: StackConfig) -> None:
    """Refuse a stack that cannot serve ``MemoryInterface``, or a policy its tier cannot
    carry, before anything connects."""
    classes = [tier_class(t.kind) for t in cfg.tiers]
    if cfg.audit is not None and not any(Capability.AUDIT in c.capabilities for c in classes):
        raise BrunoMemoryConfigError(
            "an audit trail is kept in the authoritative tier, and no tier of this stack "
            "keeps one: add a sqlite or postgres tier, or remove the audit: section",
            path="audit",
        )
    check([c.capabilities for c in classes], [t.name or t.kind for t in cfg.tiers])
    for i, (t, c) in enumerate(zip(cfg.tiers, classes, strict=True)):
        for policy in policies_of(t):
            lacking = NEEDS.get(policy, frozenset()) - c.capabilities
            if lacking:
                raise BrunoMemoryConfigError(
                    f"tier {t.name or t.kind!r} (kind: {t.kind}) cannot carry the {policy} "
                    f"policy: it lacks {', '.join(sorted(x.value for x in lacking))}",
                    path=f"tiers[{i}].{policy}",
                )


async def open_tiers(
    source: Source | StackConfig = None, *, base_dir: Path | None = None
) -> tuple[list[Tier], StackConfig]:
    """Validate, create and open every tier; on a failure close the ones already open."""
    cfg = source if isinstance(source, StackConfig) else load_config(source)
    check_config(cfg)
    base = base_dir or Path.cwd()
    keyring = open_keyring(cfg, base)
    context = TierContext(namespace=cfg.namespace, base_dir=base, embedding=_embedding(cfg),
                          opener=None if keyring is None else keyring.unseal)
    tiers = [create_tier(t, context, keyring) for t in cfg.tiers]
    opened: list[Tier] = []
    try:
        for tier in tiers:
            await tier.open()
            opened.append(tier)
    except BaseException:
        for tier in reversed(opened):
            await tier.aclose()
        raise
    return tiers, cfg


def open_keyring(cfg: StackConfig, base_dir: Path) -> Any:
    """The stack's keyring (``encryption:``), not yet open, or ``None``."""
    if cfg.encryption is None:
        return None
    from bruno_memory.core.blind import profile
    from bruno_memory.policies.encryption.keyring import Keyring
    from bruno_memory.policies.encryption.keystore import keystore

    store = keystore(cfg.encryption.keystore, cfg.namespace, base_dir)
    durable = [t for t in cfg.tiers if Capability.DURABLE in tier_class(t.kind).capabilities]
    language = getattr(durable[-1], "search_config", None) if durable else None
    return Keyring(cfg.encryption, store, cfg.namespace, profile(language))


def _embedding(cfg: StackConfig) -> Any:
    """The stack's embedding provider (cached, batching), or ``None`` if none is configured."""
    if cfg.embedding is None:
        return None
    from bruno_memory.providers.embedding import create_embedding

    return create_embedding(cfg.embedding)


async def open_engine(source: Source | StackConfig = None) -> tuple[Engine, Conversing]:
    """The routing engine over every tier of a config, opened, with what ``get_context``
    returns: the last ``context_messages``, or a budgeted context (``context:``)."""
    tiers, cfg = await open_tiers(source)
    composer = composer_of(cfg.context, cfg.lifecycle is not None and cfg.lifecycle.context)
    lifecycle = cfg.lifecycle or LifecycleConfig()
    conversing = Conversing(cfg.context_messages, composer, cfg.session_gap, lifecycle)
    auditing = None if cfg.audit is None else Auditing(cfg.audit.actor)
    redactor = None if cfg.redact is None else await asyncio.to_thread(redactor_of, cfg.redact)
    engine = Engine(tiers, auditing=auditing, redactor=redactor)
    if cfg.encryption is not None:
        from bruno_memory.policies.encryption.policy import Encrypting

        engine.sealer = next(t.keyring for t in tiers if isinstance(t, Encrypting))
    return engine, conversing


def composer_of(config: ContextConfig | None, summaries: bool = False) -> Composer | None:
    """``get_context``'s messages from a YAML ``context:`` section, or ``None``;
    ``summaries``: its summary section reads the lifecycle's summaries (``lifecycle:``)."""
    if config is None:
        return None
    from bruno_memory.managers.context import ContextBuilder

    made: list[ContextBuilder] = []  # one composer, one stack, one builder (its counts cached)

    async def compose(memory: MemoryStack, user_id: str, conversation_id: str) -> list[Message]:
        if not made:
            made.append(ContextBuilder.from_config(memory, config))
            if summaries:
                from bruno_memory.managers.lifecycle import StoredSummaries

                # most of the summary share: the share is of what pinned and the latest
                # turns leave, and a summary over it is left out whole
                share = (config.max_tokens - config.reserve) * config.shares.summary
                made[0].summaries = StoredSummaries(memory, max_tokens=max(32, int(share * 0.75)))
        budget = config.max_tokens - config.reserve
        built = await made[0].build(user_id, conversation_id, max_tokens=budget)
        return list(built.messages)

    return compose


async def build_memory(source: Source | StackConfig = None, **options: Any) -> MemoryStack:
    """Build an opened ``MemoryStack``.

    Args:
        source: a YAML path, YAML text, a dict, a ``StackConfig``, or ``None`` for the
            embedded default (an LRU over SQLite in ``./bruno-memory.db``).
        options: passed to ``MemoryStack`` (e.g. ``clock``).
    """
    engine, c = await open_engine(source)
    return MemoryStack(engine, context_messages=c.context_messages, composer=c.composer,
                       session_gap=c.session_gap, lifecycle=c.lifecycle, **options)


class ConfiguredMemory(MemoryStack):
    """A ``MemoryStack`` built from a config on first use: what bruno-core's
    ``MemoryBackendRegistry`` instantiates (``get_instance("bruno_memory", config=...)``).

    Args:
        config: what ``build_memory`` accepts.
        options: passed to ``MemoryStack`` (e.g. ``clock``).
    """

    def __init__(self, config: Source | StackConfig = None, **options: Any) -> None:
        super().__init__(opener=lambda: open_engine(config), **options)
