"""Redaction: one pluggable redactor (e-mails, URLs, Luhn-checked card numbers, IPs,
phones, listed names) for anonymized exports and, with a YAML ``redact:`` section, for
every write before any tier has it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.config.loader import load_config
from bruno_memory.core import redact
from bruno_memory.core.errors import BrunoMemoryConfigError
from bruno_memory.managers import archive

CARD = "4111 1111 1111 1111"  # passes the Luhn check
NOT_A_CARD = "4111 1111 1111 1112"
TEXT = (f"Ada Lovelace (ada@example.com) paid with {CARD} from 192.168.1.20 and "
        "fe80::1; call +44 20 7946 0958 or see https://x.org/a")


def test_each_kind_is_redacted() -> None:
    """Every default kind gets its label; listed names match whole words in any case."""
    r = redact.RegexRedactor(names=["Ada Lovelace", "bob"])
    assert r(TEXT) == ("[name] ([email]) paid with [card] from [ip] and [ip]; call [phone] "
                       "or see [url]")
    assert r("BOB met Bobby") == "[name] met Bobby"
    assert r("3 cats in 2024, room 101") == "3 cats in 2024, room 101"


def test_card_numbers_are_luhn_checked() -> None:
    """Only digit runs passing the Luhn check are labelled as cards."""
    assert redact.luhn("4111111111111111") and not redact.luhn("4111111111111112")
    r = redact.RegexRedactor(kinds=["card"])
    assert r(f"card {CARD}.") == "card [card]."
    assert r("card 4111-1111-1111-1111") == "card [card]"
    assert r(f"order {NOT_A_CARD}") == f"order {NOT_A_CARD}"


def test_kinds_can_be_chosen_and_are_checked() -> None:
    """A subset of kinds leaves the others; an unknown kind is a config error."""
    assert redact.RegexRedactor(kinds=["email"])(TEXT).count("[") == 1
    with pytest.raises(BrunoMemoryConfigError, match="unknown redaction kind 'emails'"):
        redact.RegexRedactor(kinds=["emails"])
    with pytest.raises(BrunoMemoryConfigError, match="redact"):
        load_config({"redact": {"kinds": ["emails"]}, "tiers": [{"kind": "sqlite"}]})


def say(text: str) -> Message:
    return Message(role=MessageRole.USER, content=text)


async def test_the_anonymized_export_uses_the_same_redactor(tmp_path: Path) -> None:
    """The archive's redactor is core.redact's; given names, the export drops them."""
    assert archive.RegexRedactor is redact.RegexRedactor
    async with await build_memory({"tiers": [
            {"kind": "sqlite", "path": str(tmp_path / "e.db")}]}) as memory:
        ctx = await memory.get_context("ada", "c1")
        await memory.store_message(say(TEXT), ctx.conversation_id)
        anonymizer = archive.Anonymizer("k", redactor=redact.RegexRedactor(names=["Ada Lovelace"]))
        path = tmp_path / "out.jsonl"
        await archive.export(memory, path, header=archive.Header("t"), anonymizer=anonymizer)
    lines = [json.loads(x) for x in path.read_text().splitlines()[1:]]
    content = next(x["record"]["content"] for x in lines if x["kind"] == "message")
    assert content.startswith("[name] ([email]) paid with [card]")


def stack(tmp_path: Path, journaled: bool) -> dict[str, Any]:
    names = tmp_path / "names.txt"
    names.write_text("# staff\nAda Lovelace\n\n")
    durable: dict[str, Any] = {"kind": "sqlite", "path": str(tmp_path / "r.db")}
    if journaled:
        durable |= {"policy": "batched-journaled",
                    "journal": {"kind": "file", "path": str(tmp_path / "r.journal")}}
    return {"redact": {"names_file": str(names)}, "tiers": [{"kind": "lru"}, durable]}


def stored_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and p.name != "names.txt"}


@pytest.mark.parametrize("journaled", [False, True], ids=["laptop", "laptop-journaled"])
async def test_redact_on_write_reaches_no_tier(tmp_path: Path, journaled: bool) -> None:
    """With a redact: section, no store (cache, journal, database, index) holds what the
    redactor removes, and reads return the redacted text."""
    memory = await build_memory(stack(tmp_path, journaled))
    ctx = await memory.get_context("ada", "c1")
    await memory.store_message(say(TEXT), ctx.conversation_id)
    await memory.store_memory(MemoryEntry(user_id="ada", content=f"card {CARD}",
                                          memory_type=MemoryType.FACT))
    got = await memory.retrieve_messages(ctx.conversation_id)
    assert got[0].content.startswith("[name] ([email]) paid with [card] from [ip]")
    memories = await memory.search_memories("ada", "card")
    assert [m.content for m in memories] == ["card [card]"]
    assert not await memory.search_messages("lovelace", user_id="ada")
    await memory.close()
    files = stored_bytes(tmp_path)
    assert "r.db" in files
    for secret in ("ada@example.com", "1111 1111", "Lovelace", "lovelac", "7946"):
        for name, data in files.items():
            assert secret.encode() not in data, f"{name} holds {secret!r}"
