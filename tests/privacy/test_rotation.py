"""Key rotation: ``rotate-key`` rewraps the data keys; old keys decrypt until it is done."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from bruno_core.models.message import Message, MessageRole

from bruno_memory.cli import main
from bruno_memory.core.errors import BrunoMemoryConfigError
from tests.privacy.stores import new_key, opened


def _config(tmp: Path, ns: str, keys: list[str]) -> Path:
    path = tmp / f"stack-{len(keys)}-{keys[0][:6]}.yaml"
    path.write_text(yaml.safe_dump({
        "namespace": ns,
        "tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(tmp / "memory.db")}],
        "encryption": {"key": keys, "keystore": str(tmp / "keys.db")},
    }))
    return path


async def test_rotate_key_rewraps_every_data_key_under_the_new_key(
    namespace: str, tmp_path: Path
) -> None:
    """Data written under the old key reads with [new, old] before rotation and with the
    new key alone after it; the old key alone no longer opens the store."""
    old, new = new_key(), new_key()
    async with opened(_config(tmp_path, namespace, [old])) as memory:  # type: ignore[arg-type]
        await memory.get_context("alice", "c1")
        await memory.store_message(Message(role=MessageRole.USER, content="kept safe"), "c1")
    both = _config(tmp_path, namespace, [new, old])
    async with opened(both) as memory:  # type: ignore[arg-type]
        assert [m.content for m in await memory.retrieve_messages("c1")] == ["kept safe"]
    assert await asyncio.to_thread(main, ["rotate-key", str(both)]) == 0
    async with opened(_config(tmp_path, namespace, [new])) as memory:  # type: ignore[arg-type]
        assert [m.content for m in await memory.retrieve_messages("c1")] == ["kept safe"]
        assert [m.content for m in await memory.search_messages("safe", "alice")] == ["kept safe"]
    with pytest.raises(BrunoMemoryConfigError, match="none of the configured keys"):
        async with opened(_config(tmp_path, namespace, [old])):  # type: ignore[arg-type]
            pass


def test_a_key_that_is_not_32_bytes_of_base64_is_refused_at_load(tmp_path: Path) -> None:
    """A malformed key fails when the config is loaded, naming encryption.key."""
    from bruno_memory.config.loader import load_config

    with pytest.raises(BrunoMemoryConfigError, match=r"encryption\.key: .*not 32"):
        load_config({"tiers": [{"kind": "sqlite", "path": "x.db"}],
                     "encryption": {"key": "c2hvcnQ=", "keystore": "k.db"}})
