"""The configuration models; every model forbids unknown keys."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    field_serializer,
    model_validator,
)

from bruno_memory.config.encryption import EncryptionConfig
from bruno_memory.config.lifecycle import LifecycleConfig
from bruno_memory.config.types import Bytes as Bytes  # the config's types, re-exported
from bruno_memory.config.types import Duration as Duration
from bruno_memory.config.types import PositiveInt as PositiveInt
from bruno_memory.config.types import Strict as Strict
from bruno_memory.config.types import mask_password as mask_password
from bruno_memory.config.types import parse_bytes as parse_bytes
from bruno_memory.config.types import parse_duration as parse_duration
from bruno_memory.drivers.redis import SeedNodes, check_cluster_db, has_hash_tag

SECRET_WORDS = ("dsn", "url", "password", "passwd", "secret", "token", "key", "credential", "auth")
"""A config key holding one of these words may hold a secret: its value is never echoed."""


def is_secret_key(key: object) -> bool:
    """Whether a config key may hold a secret (``dsn``, ``url``, ``api_key``, ``password``...)."""
    return isinstance(key, str) and any(w in key.lower() for w in SECRET_WORDS)


def secret_texts(value: Any) -> list[str]:
    """Every way ``value`` (a secret of any type: a number, a list...) may appear in a text,
    longest first: its repr and str, and those of everything inside it."""
    out: set[str] = set()

    def walk(v: Any, depth: int) -> None:
        if depth > 8 or v is None or isinstance(v, bool):
            return
        out.update(t for t in (str(v), repr(v)) if len(t) >= 3)
        if isinstance(v, dict):
            for item in v.values():
                walk(item, depth + 1)
        elif isinstance(v, (list, tuple, set, frozenset)):
            for item in v:
                walk(item, depth + 1)

    walk(value, 0)
    return sorted(out, key=len, reverse=True)


def redact(text: str, secrets: Any) -> str:
    """``text`` with every appearance of the ``secrets`` (any values) replaced by ``***``."""
    for s in secret_texts(secrets):
        text = text.replace(s, "***")
    return text


class _HasUrl(Strict):
    """A model with a ``url`` that may carry a password: shown masked in dumps and reprs."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    @field_serializer("url", check_fields=False)
    def _masked(self, url: str | None) -> str | None:
        return None if url is None else mask_password(url)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, mask_password(value) if name == "url" and value else value


class WriteBehindConfig(Strict):
    """Queue, batch and backpressure settings of a write-behind tier."""

    batch_size: PositiveInt = 500  # ops per flush
    flushers: PositiveInt = 1  # batches applied at once, each on a connection of its own
    interval: Duration = 0.05  # longest an op waits before its batch is flushed
    max_pending: PositiveInt = 10_000  # queued ops before backpressure
    when_full: Literal["block", "reject"] = "block"
    block_timeout: Duration = 5.0  # `block`: how long a write waits for room
    max_attempts: PositiveInt = 5  # failures (other than unavailability) before dead-letter
    backoff: Duration = 0.05  # first pause after the tier was unavailable
    max_backoff: Duration = 2.0
    drain_timeout: Duration = 30.0  # flush()/close() give up after this while the tier is down


class JournalConfig(_HasUrl):
    """Where write-behind ops are journaled before they are acknowledged.

    ``redis``: a Redis Stream with a consumer group (at ``url``); ``file``: an
    SQLite WAL file (``path``, default ``<namespace>-<tier>.journal`` in the working
    directory). ``owner`` names this writer (default: host, pid and a random part);
    ``lease``: how long a dead writer's entries wait before another process replays them
    (redis; the file journal detects a dead writer at once). ``on_down``: what a write
    does when the journal cannot be written: ``reject`` it, or ``write-through``.

    A Redis Cluster, as for the ``redis`` tier: ``cluster: true`` treats ``url`` as a
    seed node; ``nodes`` lists seed nodes (``host:port``) and implies a cluster (``url``,
    optional then, lends only its password and TLS); database 0 only. The stream, its
    dead letters (``<stream>:dead``) and liveness keys (``<stream>:alive:<owner>``)
    share one slot through the hash tag of ``stream`` (default
    ``journal:{<namespace>:<tier>}``); on a cluster a ``stream`` without one is refused.
    """

    kind: Literal["redis", "file"]
    url: str | None = None
    cluster: bool = False
    nodes: SeedNodes | None = None
    path: str | None = None
    stream: str | None = None
    group: str = "bruno-memory"
    owner: str | None = None
    lease: Duration = 10.0
    timeout: Duration = 2.0
    on_down: Literal["reject", "write-through"] = "reject"

    @model_validator(mode="after")
    def _where(self) -> JournalConfig:
        if self.kind == "file" and (self.url or self.is_cluster):
            raise ValueError("a file journal takes 'path', not 'url', 'cluster' or 'nodes'")
        if self.kind == "redis" and not (self.url or self.nodes):
            raise ValueError("a redis journal needs 'url' (redis://host:port/db) or 'nodes'")
        if self.url and not self.url.startswith(("redis://", "rediss://")):
            raise ValueError("expected 'url' to be a redis:// or rediss:// URL")
        if self.is_cluster:
            check_cluster_db(self.url or "")
            if self.stream is not None and not has_hash_tag(self.stream):
                raise ValueError(
                    f"on a Redis Cluster 'stream' needs a hash tag, so that its dead letters "
                    f"and liveness keys share its slot: write e.g. '{{{self.stream}}}'"
                )
        return self

    @property
    def is_cluster(self) -> bool:
        return self.cluster or self.nodes is not None


class RetryConfig(Strict):
    """Retries of an unavailable tier: exponential backoff with jitter, in one time budget."""

    attempts: PositiveInt = 3
    initial: Duration = 0.02
    max_wait: Duration = 0.5
    jitter: Duration = 0.02
    budget: Duration = 2.0  # the whole call, every attempt and pause included (a write of
    # more than 500 ops gets one budget per 500: ``policies.fallback.policy.BUDGET_OPS``)


class BreakerConfig(Strict):
    """Circuit breaker: open after ``failures`` failed calls in a row, probe after ``reset``."""

    failures: PositiveInt = 5
    reset: Duration = 5.0


class InvalidationConfig(_HasUrl):
    """Cross-process invalidation of a local cache over Redis pub/sub."""

    url: str
    channel: str | None = None  # default: <namespace>:invalidate
    max_lag: Duration = 1.0  # a change elsewhere stops being served here within this

    @model_validator(mode="after")
    def _url(self) -> InvalidationConfig:
        if not self.url.startswith(("redis://", "rediss://")):
            raise ValueError("expected 'url' to be a redis:// or rediss:// URL")
        if self.max_lag < 0.05:
            raise ValueError("expected max_lag of at least 50ms")
        return self


class TierConfig(Strict):
    """Fields every tier has; each kind adds its own."""

    kind: str
    name: str | None = None
    write: Literal["write-through", "write-behind"] = "write-through"
    on_error: Literal["fail", "skip", "queue"] = "fail"
    write_behind: WriteBehindConfig | None = None
    journal: JournalConfig | None = None
    retry: RetryConfig | None = None
    breaker: BreakerConfig | None = None
    invalidation: InvalidationConfig | None = None

    def check_namespace(self, namespace: str) -> None:
        """Raise ``ValueError`` if this tier cannot live in the stack's ``namespace`` (e.g.
        PostgreSQL, whose schema it names, refuses ``pg_*``); the loader calls it."""

    @model_validator(mode="after")
    def _policies(self) -> TierConfig:
        if self.on_error == "queue" and self.journal is None:
            raise ValueError(
                "on_error: queue needs a journal to queue into: add journal: {kind: file} "
                "or journal: {kind: redis, url: ...}"
            )
        if self.journal is not None and self.write != "write-behind" and self.on_error != "queue":
            raise ValueError("a journal is used by write: write-behind or on_error: queue")
        return self


class EmbeddingConfig(Strict):
    """Which embedding provider feeds the semantic tiers."""

    provider: str = "hashing"
    model: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    dimension: PositiveInt | None = None  # hashing: vector length; others: skip the probe
    cache_size: int = Field(default=10_000, ge=0)  # cached (model, text) vectors


class ContextShares(Strict):
    """Shares of the budget left after the pinned items and the latest ``min_recent`` turns.

    Each section gets its share of what is left for it and the sections after it (summary,
    memories, relevant past messages, the rest of the recent window, in that order), so the
    budget a section leaves unused passes on to the next.
    """

    summary: float = Field(default=0.10, ge=0.0, le=1.0)
    memories: float = Field(default=0.15, ge=0.0, le=1.0)
    search: float = Field(default=0.50, ge=0.0, le=1.0)
    recent: float = Field(default=0.25, ge=0.0, le=1.0)


class ContextConfig(Strict):
    """The ``context:`` section: a token-budgeted context (``bruno_memory.managers.context``)."""

    max_tokens: PositiveInt = 2048
    reserve: int = Field(default=0, ge=0)  # of max_tokens, kept free for the turn the app
    # adds before the LLM call (BaseAssistant appends the new user message to get_context's)
    min_recent: int = Field(default=6, ge=0)  # latest turns always in, when they fit
    shares: ContextShares = Field(default_factory=ContextShares)
    strategy: Literal["adaptive", "fixed", "recent"] = "adaptive"
    scope: Literal["conversation", "user"] = "conversation"  # past messages searched

    @model_validator(mode="after")
    def _reserve_below_budget(self) -> ContextConfig:
        if self.reserve >= self.max_tokens:
            raise ValueError(
                f"reserve ({self.reserve}) must be less than max_tokens ({self.max_tokens})"
            )
        return self


class AuditConfig(Strict):
    """The ``audit:`` section: a hash-chained audit trail in the authoritative tier
    (``bruno_memory.stack.audit``); ``actor`` names whoever acts when no one else is."""

    actor: Annotated[str, Field(min_length=1, max_length=200)] = "app"


RedactKind = Literal["email", "url", "phone", "card", "ip", "name"]


class RedactConfig(Strict):
    """The ``redact:`` section: message and memory contents redacted before they reach any
    tier (``bruno_memory.core.redact``); ``kinds`` leaves URLs out by default. ``names``:
    names to redact (``names_file``: one a line, relative to the working directory)."""

    kinds: list[RedactKind] = ["email", "phone", "card", "ip", "name"]
    names: list[str] = []
    names_file: str | None = None


class StackConfig(Strict):
    """A whole stack: tiers from fastest (first) to authoritative (last)."""

    namespace: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,40}$")] = "bruno"
    embedding: EmbeddingConfig | None = None
    context_messages: PositiveInt = 20
    session_gap: Duration | None = None  # get_context without an id: a new session after
    # this much inactivity in the latest one (a conversation boundary); None: never
    context: ContextConfig | None = None
    audit: AuditConfig | None = None
    redact: RedactConfig | None = None
    lifecycle: LifecycleConfig | None = None  # summaries, archival, maintenance, ranking
    encryption: EncryptionConfig | None = None  # field encryption at rest (config.encryption)
    tiers: list[TierConfig]

