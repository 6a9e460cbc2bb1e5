"""Embedding providers behind bruno-core's ``EmbeddingInterface``, chosen by ``embedding:``."""

from bruno_memory.providers.embedding.factory import create_embedding

__all__ = ["create_embedding"]
