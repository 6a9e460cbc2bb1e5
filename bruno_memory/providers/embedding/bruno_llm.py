"""``ollama`` and ``openai``: bruno-llm's ``EmbeddingFactory`` providers with YAML settings.

``embedding: {provider: ollama, model: nomic-embed-text, settings: {base_url: ...}}``;
``settings`` are passed to the provider as keyword arguments (``api_key``, ``base_url``,
``timeout``, ``batch_size``, ...). Secrets belong in ``${VAR}`` references.
"""

from __future__ import annotations

from typing import Any

from bruno_core.interfaces import EmbeddingInterface

from bruno_memory.config.models import is_secret_key, redact
from bruno_memory.core.errors import BrunoMemoryConfigError

PROVIDERS = ("ollama", "openai")


def create(provider: str, model: str | None, settings: dict[str, Any]) -> EmbeddingInterface:
    """A bruno-llm embedding provider, or a config error saying what to fix."""
    from bruno_llm.embedding_factory import EmbeddingFactory
    from bruno_llm.exceptions import LLMError

    options = {**settings, **({"model": model} if model else {})}
    try:
        return EmbeddingFactory.create(provider, options)
    except LLMError as exc:
        hint = "" if EmbeddingFactory.is_registered(provider) else (
            f" (bruno-llm offers {provider!r} only when its client library is installed: "
            f"pip install {provider})"
        )
        raise BrunoMemoryConfigError(
            f"bruno-llm could not create the {provider!r} embedding provider: "
            f"{_without_secrets(str(exc), settings)}{hint}",
            path="embedding.settings",
        ) from None


def _without_secrets(text: str, settings: dict[str, Any]) -> str:
    """``text`` without the value of any secret setting, whatever its type (an unquoted
    number in YAML, a list...)."""
    for key, value in settings.items():
        if is_secret_key(key):
            text = redact(text, value)
    return text
