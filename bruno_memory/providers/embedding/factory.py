"""``embedding:`` -> a cached, batching ``EmbeddingInterface``."""

from __future__ import annotations

from bruno_memory.config.models import EmbeddingConfig
from bruno_memory.core.errors import BrunoMemoryConfigError
from bruno_memory.providers.embedding.cache import CachedEmbedder

PROVIDERS = ("hashing", "local", "ollama", "openai")


def create_embedding(cfg: EmbeddingConfig | None = None) -> CachedEmbedder:
    """The provider ``cfg.provider`` names, wrapped in the (model, text) cache and batcher.

    Args:
        cfg: the stack's ``embedding:`` section; ``None`` means the hashing embedder.
    """
    cfg = cfg or EmbeddingConfig()
    settings = dict(cfg.settings)
    batch = int(settings.pop("max_batch", 64))
    if cfg.provider == "hashing":
        from bruno_memory.providers.embedding.hashing import HashingEmbedder

        inner = HashingEmbedder(cfg.dimension or 384)
        return CachedEmbedder(
            inner, maxsize=cfg.cache_size, max_batch=batch, dimension=inner.dimension
        )
    if cfg.provider == "local":
        from bruno_memory.providers.embedding.local import LocalEmbedder

        local = LocalEmbedder(cfg.model or "all-MiniLM-L6-v2", **settings)
        return CachedEmbedder(
            local, maxsize=cfg.cache_size, max_batch=batch, dimension=cfg.dimension
        )
    if cfg.provider in ("ollama", "openai"):
        from bruno_memory.providers.embedding import bruno_llm

        remote = bruno_llm.create(cfg.provider, cfg.model, settings)
        return CachedEmbedder(
            remote, maxsize=cfg.cache_size, max_batch=batch, dimension=cfg.dimension
        )
    raise BrunoMemoryConfigError(
        f"unknown embedding provider {cfg.provider!r}; known providers: {', '.join(PROVIDERS)}",
        path="embedding.provider",
    )
