"""The ``context:`` section of a stack config."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bruno_memory.config.loader import load_config
from bruno_memory.config.models import ContextConfig
from bruno_memory.core.errors import BrunoMemoryConfigError

TIERS = [{"kind": "lru"}, {"kind": "sqlite"}]


def test_context_is_optional_and_defaults_are_sane() -> None:
    assert load_config({"tiers": TIERS}).context is None
    cfg = load_config({"context": {}, "tiers": TIERS}).context
    assert cfg == ContextConfig()
    assert (cfg.max_tokens, cfg.min_recent, cfg.strategy, cfg.scope) == (
        2048,
        6,
        "adaptive",
        "conversation",
    )


def test_context_section_is_read() -> None:
    cfg = load_config(
        {
            "context": {
                "max_tokens": 4096,
                "min_recent": 10,
                "strategy": "fixed",
                "scope": "user",
                "shares": {"search": 0.7, "recent": 0.1},
            },
            "tiers": TIERS,
        }
    ).context
    assert cfg is not None and cfg.max_tokens == 4096 and cfg.shares.search == 0.7
    assert cfg.shares.memories == 0.15  # unspecified shares keep their defaults
    with pytest.raises(ValidationError):
        cfg.max_tokens = 1  # type: ignore[misc]  (frozen)


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ({"max_tokens": 0}, "context.max_tokens"),
        ({"max_tokens": "lots"}, "context.max_tokens"),
        ({"min_recent": -1}, "context.min_recent"),
        ({"strategy": "best"}, "context.strategy"),
        ({"shares": {"search": 2}}, "context.shares.search"),
        ({"shares": {"serch": 0.5}}, "context.shares.serch"),
        ({"budget": 10}, "context.budget"),
    ],
)
def test_bad_context_section_names_the_key(section: dict[str, object], where: str) -> None:
    with pytest.raises(BrunoMemoryConfigError, match=where.replace(".", r"\.")):
        load_config({"context": section, "tiers": TIERS})
