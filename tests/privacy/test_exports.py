"""Exports of an encrypted stack are ciphertext unless decryption is asked for; importing
one reads it through the key store, leaving out the users forgotten since."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import pytest
from bruno_core.models.message import Message, MessageRole

from bruno_memory.managers import archive
from tests.privacy.stores import encrypted, new_key, opened, shipped

MARKER = "Pelicanmarzipan"


async def _read(path: Path) -> bytes:
    return await asyncio.to_thread(lambda: gzip.decompress(path.read_bytes()))


async def test_an_export_is_sealed_unless_decrypted_and_imports_without_forgotten_users(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """The default export holds no plaintext; ``decrypt=True`` does; the sealed export
    imported after ``forget_user("alice")`` restores bob's records and none of alice's."""
    keystore, key = str(tmp_path / "keys.db"), new_key()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cfg = encrypted(shipped(request, "laptop", namespace, tmp_path / "a"), [key], keystore)
    sealed, plain = tmp_path / "sealed.jsonl.gz", tmp_path / "plain.jsonl.gz"
    async with opened(cfg) as memory:
        for user in ("alice", "bob"):
            await memory.get_context(user, f"c-{user}")
            await memory.store_message(
                Message(role=MessageRole.USER, content=f"{user} saw a {MARKER}"), f"c-{user}")
        header = archive.Header(namespace)
        await archive.export(memory, sealed, header=header)
        await archive.export(memory, plain, header=header, decrypt=True)
        await memory.forget_user("alice")
    assert MARKER.encode() not in await _read(sealed)
    assert MARKER.encode() in await _read(plain)

    other = encrypted(shipped(request, "laptop", namespace, tmp_path / "b"), [key], keystore)
    async with opened(other) as memory:
        await archive.import_file(memory, sealed)
        assert [m.content for m in await memory.retrieve_messages("c-bob")] == [
            f"bob saw a {MARKER}"]
        assert await memory.retrieve_messages("c-alice") == []


async def test_a_sealed_export_is_refused_by_a_stack_without_encryption(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """Importing ciphertext into a plain stack fails with what to do, storing nothing."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cfg = encrypted(shipped(request, "laptop", namespace, tmp_path / "a"), [new_key()],
                    str(tmp_path / "keys.db"))
    path = tmp_path / "sealed.jsonl.gz"
    async with opened(cfg) as memory:
        await memory.get_context("bob", "c-bob")
        await memory.store_message(Message(role=MessageRole.USER, content="hello"), "c-bob")
        await archive.export(memory, path, header=archive.Header(namespace))
    async with opened(shipped(request, "laptop", namespace, tmp_path / "b")) as memory:
        with pytest.raises(archive.ArchiveError, match="encryption: section"):
            await archive.import_file(memory, path)
        assert await memory.retrieve_messages("c-bob") == []
