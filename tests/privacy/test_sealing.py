"""Sealing a record and opening it again; blind documents as the engines index them."""

from __future__ import annotations

import os

import orjson
import pytest
from bruno_core.models.message import Message, MessageRole

from bruno_memory.core import codec, records, sealing
from bruno_memory.core.blind import PROFILES, BlindIndex
from bruno_memory.core.codec import DecodeError
from bruno_memory.core.sealing import DataKey


def _record(text: str = "the picnic by the river") -> records.MessageRecord:
    return records.message_record(
        Message(role=MessageRole.USER, content=text, metadata={"mood": "glad"}), "c1", "ann")


def test_a_message_round_trips_through_its_stored_json() -> None:
    """What a store writes (the sealed JSON) reads back, once unsealed, as the message."""
    key = DataKey(os.urandom(32))
    rec = _record()
    stored = sealing.seal(rec, lambda _: key).json()
    assert "picnic" not in stored and "glad" not in stored
    back = sealing.unseal(codec.message_from_row(stored, "c1", "ann"), lambda _: key)
    assert isinstance(back, records.MessageRecord)
    assert back.message == rec.message and back.sort_key == rec.sort_key
    assert back.json() == rec.json()


def test_a_message_sealed_whole_by_an_earlier_version_still_opens() -> None:
    """Envelopes of format 1 hold the message's whole JSON: they stay readable."""
    key = DataKey(os.urandom(32))
    rec = _record()
    env = sealing._box(key, "ann", rec.json().encode(), "message", rec.id)
    assert env.startswith("1.u.")
    body = orjson.loads(sealing.seal(rec, lambda _: key).json())
    body["metadata"] = {sealing.SEALED: env}
    back = sealing.unseal(codec.message_from_row(orjson.dumps(body), "c1", "ann"),
                          lambda _: key)
    assert isinstance(back, records.MessageRecord) and back.message == rec.message


def test_an_envelope_moved_to_another_message_does_not_open() -> None:
    key = DataKey(os.urandom(32))
    one, other = (sealing.seal(_record(t), lambda _: key) for t in ("one", "two"))
    body = orjson.loads(other.json())
    body["metadata"] = one.message.metadata
    with pytest.raises(DecodeError, match="does not decrypt"):
        sealing.unseal(codec.message_from_row(orjson.dumps(body), "c1", "ann"), lambda _: key)


def test_a_message_read_back_from_a_store_seals_again_with_its_blind_document() -> None:
    """The stored JSON holds no blind document (``HOLLOW``): sealing such a record again
    (a copy between stacks) makes it anew, so the copy's full-text column is whole."""
    key = DataKey(os.urandom(32))
    sealed = sealing.seal(_record(), lambda _: key)
    read = codec.message_from_row(sealed.json(), "c1", "ann")
    assert read.message.content == sealing.HOLLOW
    again = sealing.seal(read, lambda _: key)
    assert again.message.content == sealed.message.content != sealing.HOLLOW


@pytest.mark.postgres
async def test_a_postgres_blind_document_keeps_the_plain_texts_positions(postgres_dsn: str) -> None:
    """PostgreSQL's ``english`` index of a blind document places its words where it places
    them in the plain text (stop words keep their positions, a hyphenated word is indexed
    whole then part by part), so ``ts_rank_cd``'s distances and phrases are the same."""
    import asyncpg

    text = ("We walked to the river and then, after the storm, we were not at the lake: "
            "self-care, me-time and an 18th-century hand-painted bowl in 2023")
    document = BlindIndex(os.urandom(32), PROFILES["english"]).document(text)
    positions = ("SELECT array_agg(positions::text ORDER BY positions::text) "
                 "FROM unnest(to_tsvector('english', $1))")  # each lexeme's, as a set
    conn = await asyncpg.connect(postgres_dsn)
    try:
        plain, blind = [await conn.fetchval(positions, t) for t in (text, document)]
    finally:
        await conn.close()
    assert "river" not in document
    assert plain == blind
