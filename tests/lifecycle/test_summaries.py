"""Summaries: per-session segments, hierarchy, triggers, incremental reruns, LLM path."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.message import Message, MessageRole

from bruno_memory.config.lifecycle import SegmentConfig, SummariesConfig
from bruno_memory.managers.lifecycle import (
    USER_LEVEL,
    ExtractiveSummarizer,
    LLMSummarizer,
    Prompts,
    SummarizeStep,
    info_of,
    summaries_of,
)
from bruno_memory.testing.llm import RecordingLLM
from tests.lifecycle.conftest import at
from tests.lifecycle.helpers import TOPICS, converse

NOW = at(10 * 600).timestamp()  # long after every session


class FailingLLM(RecordingLLM):
    """Fails every call after the first ``ok`` (a crash mid-run)."""

    def __init__(self, ok: int) -> None:
        super().__init__()
        self.ok = ok

    async def generate(self, messages: list[Message], *args: Any, **kwargs: Any) -> str:
        if len(self.inputs) >= self.ok:
            raise RuntimeError("the provider went away")
        return await super().generate(messages, *args, **kwargs)


def _step(summarizer: Any, **config: Any) -> SummarizeStep:
    return SummarizeStep(summarizer, SummariesConfig(**config), clock=lambda: NOW)


async def test_one_summary_per_session_with_provenance(memory: Any) -> None:
    """Each session becomes a level-0 summary naming its messages, span and token counts."""
    conversation = await converse(memory, "ann", sessions=3)
    report = await _step(ExtractiveSummarizer(), user_summary=False).run(memory, "ann")
    held = await summaries_of(memory, "ann")
    assert report.added == 3 and len(held) == 3
    messages = await memory.retrieve_messages(conversation)
    by_id = {str(m.id): m for m in messages}
    for entry in held:
        info = info_of(entry)
        assert info.level == 0 and info.conversation_id == conversation
        assert len(info.source_ids) == 6 and set(info.source_ids) <= set(by_id)
        assert info.output_tokens < info.input_tokens
        assert info.extracted and set(info.extracted) <= set(info.source_ids)
        for line in entry.content.splitlines():  # each line quotes one of its sources
            speaker, sentence = line.split(": ", 1)
            assert any(sentence in by_id[i].content and by_id[i].role.value == speaker
                       for i in info.extracted)
    assert len(messages) == 18  # the originals are untouched


async def test_rerun_does_nothing_new(memory: Any) -> None:
    """A second run over unchanged history adds nothing and calls the LLM zero times."""
    await converse(memory, "ben", sessions=3)
    llm = RecordingLLM()
    step = _step(LLMSummarizer(llm))
    first = await step.run(memory, "ben")
    calls = len(llm.inputs)
    second = await step.run(memory, "ben")
    assert first.added == 4  # three sessions and the user's summary
    assert second.added == 0 and len(llm.inputs) == calls


async def test_new_messages_are_summarised_incrementally(sqlite_memory: Any) -> None:
    """Only the sessions after the cursor are read and summarised on the next run."""
    memory = sqlite_memory
    conversation = await converse(memory, "cyd", sessions=2)
    llm = RecordingLLM()
    step = _step(LLMSummarizer(llm), user_summary=False)
    await step.run(memory, "cyd")
    assert len(llm.inputs) == 2
    from tests.lifecycle.helpers import session_turns

    await memory.store_messages(session_turns(5), conversation)
    report = await step.run(memory, "cyd")
    assert report.added == 1 and len(llm.inputs) == 3
    assert "Session 5 turn 0" in llm.inputs[-1][-1].content
    assert "Session 1" not in llm.inputs[-1][-1].content


async def test_open_tail_waits_for_a_trigger(sqlite_memory: Any) -> None:
    """The last, still open session is summarised only once it ends, ages or grows."""
    memory = sqlite_memory
    session = await memory.create_session("dee")
    from tests.lifecycle.helpers import session_turns

    for s in range(2):
        await memory.store_messages(session_turns(s), session.conversation_id)
    soon = at(600 + 10).timestamp()  # just after the second session
    step = SummarizeStep(ExtractiveSummarizer(), SummariesConfig(user_summary=False),
                         clock=lambda: soon)
    assert (await step.run(memory, "dee")).added == 1
    big = SummarizeStep(ExtractiveSummarizer(), SummariesConfig(user_summary=False,
                        tail_tokens=20), clock=lambda: soon)
    assert (await big.run(memory, "dee")).added == 1  # the tail is over 20 tokens
    await memory.store_messages(session_turns(2)[:2], session.conversation_id)
    assert (await step.run(memory, "dee")).added == 0
    await memory.end_session(session.session_id)
    assert (await step.run(memory, "dee")).added == 1  # the session ended


async def test_prompts_are_the_templates_with_the_lines(sqlite_memory: Any) -> None:
    """The LLM gets the system template and the user template filled with the segment."""
    memory = sqlite_memory
    await converse(memory, "eve", sessions=1)
    llm = RecordingLLM()
    prompts = Prompts(system="Be brief about this $kind.", user="LINES:\n$lines")
    await _step(LLMSummarizer(llm, prompts=prompts), user_summary=False).run(memory, "eve")
    (call,) = llm.inputs
    assert call[0].content == "Be brief about this conversation."
    lines = call[1].content.splitlines()
    assert lines[0] == "LINES:" and len(lines) == 7
    assert lines[1].startswith("user: Session 0 turn 0.")
    assert lines[2].startswith("assistant: Session 0 turn 1.")
    held = await summaries_of(memory, "eve")
    assert held[0].content == "echo #1: " + call[1].content


async def test_cost_and_tokens_are_recorded(sqlite_memory: Any) -> None:
    """Every call is tracked with the provider's token counts, priced by the tracker."""
    from bruno_llm.base.cost_tracker import CostTracker

    memory = sqlite_memory
    await converse(memory, "fay", sessions=2)
    llm = RecordingLLM()
    tracker = CostTracker("test", {"recording": {"input": 1.0, "output": 2.0}})
    summarizer = LLMSummarizer(llm, tracker=tracker)
    await _step(summarizer, user_summary=False).run(memory, "fay")
    assert tracker.get_request_count() == len(llm.inputs) == 2
    tokens = tracker.get_total_tokens()
    expected_in = sum(llm.get_token_count(m.content) for call in llm.inputs for m in call)
    assert tokens["input"] == expected_in
    assert tracker.get_total_cost() == pytest.approx(
        tokens["input"] / 1000 + 2 * tokens["output"] / 1000
    )
    infos = [info_of(e) for e in await summaries_of(memory, "fay")]
    assert sum(i.input_tokens for i in infos) == tokens["input"]
    assert all(i.model == "recording" for i in infos)


async def test_a_long_segment_is_summarised_in_chunks(sqlite_memory: Any) -> None:
    """A segment over max_input_tokens goes in several calls, then one call joins them."""
    memory = sqlite_memory
    await converse(memory, "gus", sessions=1, turns=30)
    llm = RecordingLLM()
    summarizer = LLMSummarizer(llm, max_input_tokens=150)
    await _step(summarizer, user_summary=False).run(memory, "gus")
    assert len(llm.inputs) > 2
    *parts, final = llm.inputs
    assert all("Session 0" in p[1].content for p in parts)
    assert "set of summaries" in final[1].content and "echo #1" in final[1].content
    assert all(llm.get_token_count(c[0].content) + llm.get_token_count(c[1].content) <= 150
               for c in parts)


async def test_crash_mid_run_resumes_without_duplicates(sqlite_memory: Any) -> None:
    """A run that fails after two summaries resumes at the third on the next run."""
    memory = sqlite_memory
    await converse(memory, "hal", sessions=4)
    failing = FailingLLM(ok=2)
    with pytest.raises(RuntimeError):
        await _step(LLMSummarizer(failing, concurrency=1), batch=1,
                    user_summary=False).run(memory, "hal")
    assert len(await summaries_of(memory, "hal")) == 2
    llm = RecordingLLM()
    report = await _step(LLMSummarizer(llm), batch=1, user_summary=False).run(memory, "hal")
    assert report.added == 2 and len(llm.inputs) == 2
    assert "Session 2 turn 0" in llm.inputs[0][1].content
    held = await summaries_of(memory, "hal")
    covered = [i for e in held for i in info_of(e).source_ids]
    assert len(held) == 4 and len(covered) == len(set(covered)) == 24


async def test_hierarchy_rolls_up_to_a_user_summary(sqlite_memory: Any) -> None:
    """With fanout 2, four sessions give two level-1, one level-2 and a user summary."""
    memory = sqlite_memory
    await converse(memory, "ivy", sessions=4)
    await converse(memory, "ivy", sessions=1)
    await _step(ExtractiveSummarizer(), fanout=2).run(memory, "ivy")
    levels = sorted(info_of(e).level for e in await summaries_of(memory, "ivy"))
    assert levels == [0, 0, 0, 0, 0, 1, 1, 2, USER_LEVEL]
    user = next(e for e in await summaries_of(memory, "ivy") if info_of(e).level == USER_LEVEL)
    assert len(info_of(user).source_ids) == 2  # the first conversation's top, the second's


async def test_segments_by_turns(sqlite_memory: Any) -> None:
    """``segment: {by: turns}`` cuts every N messages."""
    memory = sqlite_memory
    await converse(memory, "jon", sessions=1, turns=10)
    cfg = {"segment": SegmentConfig(by="turns", turns=4), "user_summary": False}
    await _step(ExtractiveSummarizer(), **cfg).run(memory, "jon")
    sizes = sorted(len(info_of(e).source_ids) for e in await summaries_of(memory, "jon"))
    assert sizes == [2, 4, 4]


async def test_dry_run_writes_nothing(sqlite_memory: Any) -> None:
    """A dry run reports the summaries due and writes none."""
    memory = sqlite_memory
    await converse(memory, "kim", sessions=2)
    llm = RecordingLLM()
    report = await _step(LLMSummarizer(llm), user_summary=False).run(memory, "kim", dry_run=True)
    assert report.added == 2 and report.dry_run and llm.inputs == []
    assert await summaries_of(memory, "kim") == []


async def test_memory_reads_leave_summaries_out_unless_asked(memory: Any) -> None:
    """retrieve_memories and search_memories skip summaries (also through vector search);
    their category brings them."""
    await _memory_reads_leave_summaries_out(memory)


async def test_memory_reads_leave_summaries_out_unless_asked_semantic(semantic_memory: Any) -> None:
    """The same with a semantic tier (hybrid search, vector candidates)."""
    await _memory_reads_leave_summaries_out(semantic_memory)


async def _memory_reads_leave_summaries_out(memory: Any) -> None:
    from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType

    from bruno_memory.core.summaries import SUMMARY_CATEGORY

    await converse(memory, "lia", sessions=2)
    await _step(ExtractiveSummarizer(), user_summary=False).run(memory, "lia")
    fact = MemoryEntry(content="Lia adopted a grey cat named Pixel", user_id="lia",
                       memory_type=MemoryType.FACT)
    await memory.store_memory(fact)
    for query in (MemoryQuery(user_id="lia"), MemoryQuery(user_id="lia", query_text="Pixel")):
        assert [m.id for m in await memory.retrieve_memories(query)] == [fact.id]
    assert [m.id for m in await memory.search_memories("lia", "grey cat Pixel")] == [fact.id]
    asked = await memory.retrieve_memories(
        MemoryQuery(user_id="lia", categories=[SUMMARY_CATEGORY]))
    assert len(asked) == 2 and all(info_of(m).level == 0 for m in asked)
    stats = await memory.get_statistics("lia")  # the summaries are not the user's memories
    assert stats["memories"] == 1 and stats["memories_by_type"] == {"fact": 1}


async def test_extractive_uses_the_embedder_when_given(sqlite_memory: Any) -> None:
    """With an embedder, sentences are ranked on its vectors (one batch for all segments)."""
    from bruno_memory.providers.embedding.hashing import HashingEmbedder

    class Counting(HashingEmbedder):
        batches: list[int] = []

        async def embed_texts(self, texts: list[str]) -> list[list[float]]:
            self.batches.append(len(texts))
            return await super().embed_texts(texts)

    await converse(sqlite_memory, "mo", sessions=3)
    summarizer = ExtractiveSummarizer(Counting(dimension=64))
    assert summarizer.model == "extractive-mmr-embedding"
    await _step(summarizer, user_summary=False).run(sqlite_memory, "mo")
    held = await summaries_of(sqlite_memory, "mo")
    assert len(held) == 3 and Counting.batches and len(Counting.batches) == 1
    assert all(info_of(e).model == "extractive-mmr-embedding" and e.content for e in held)


async def test_periodic_from_config_needs_an_interval(sqlite_memory: Any) -> None:
    """``lifecycle.interval`` drives Periodic; without one it says what to set."""
    from bruno_memory.config.lifecycle import LifecycleConfig
    from bruno_memory.core.errors import InvalidInput
    from bruno_memory.managers.lifecycle.runner import Periodic

    assert Periodic.from_config(sqlite_memory, LifecycleConfig(interval="1h")).interval == 3600
    with pytest.raises(InvalidInput, match="interval"):
        Periodic.from_config(sqlite_memory, LifecycleConfig())


async def test_provider_gives_what_came_before_within_its_size(sqlite_memory: Any) -> None:
    """StoredSummaries shows summaries ending before ``before``, newest that fit, oldest
    first; a roll-up too long gives way to the summaries it covers."""
    from bruno_memory.managers.lifecycle import StoredSummaries

    memory = sqlite_memory
    conversation = await converse(memory, "pat", sessions=4)
    llm = RecordingLLM()  # its summaries echo their prompt: a roll-up is the longest
    await _step(LLMSummarizer(llm), fanout=2, user_summary=False).run(memory, "pat")
    held = await summaries_of(memory, "pat")
    infos = {str(e.id): info_of(e) for e in held}
    newest = max((e for e in held if info_of(e).level == 0), key=lambda e: info_of(e).end)
    counter = StoredSummaries(memory).count
    one = counter("Summary of the earlier conversation:") + counter(
        f"- (01 Mar 2024) {newest.content}") + 3  # room for the newest session alone

    async def shown(max_tokens: int, before: Any) -> list[tuple[int, str]]:
        provider = StoredSummaries(memory, max_tokens=max_tokens)
        message = await provider.summary("pat", conversation, before)
        if message is None:
            return []
        assert provider.count(message.content) <= max_tokens
        return [(infos[i].level, infos[i].end) for i in message.metadata["bruno_summary_of"]]

    wide = await shown(2000, None)
    assert [level for level, _ in wide] == [2]  # the roll-up of all four sessions
    cut = at(3 * 600)  # the start of the fourth session
    assert [level for level, _ in await shown(2000, cut)] == [1, 0]  # before it only
    assert all(datetime.fromisoformat(end) < cut for _, end in await shown(2000, cut))
    small = await shown(one, None)  # the roll-ups do not fit: the newest session does
    assert small == [(0, info_of(newest).end)]
    assert await shown(one, at(0)) == []


async def test_summaries_are_not_counted_on_an_encrypted_stack(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """Categories are stored hashed when a stack encrypts: the statistics still leave the
    summaries out (the hidden categories are hashed like the stored ones)."""
    from bruno_core.models.memory import MemoryEntry, MemoryType

    from tests.factories.encrypted import STACKS as ENCRYPTED

    laptop = next(f for f in ENCRYPTED if f.id == "encrypted:lru->sqlite")
    async with laptop.open(request, namespace, tmp_path) as memory:
        await converse(memory, "eli", sessions=2)
        await _step(ExtractiveSummarizer(), user_summary=False).run(memory, "eli")
        await memory.store_memory(MemoryEntry(content="Eli keeps bees", user_id="eli",
                                              memory_type=MemoryType.FACT))
        assert len(await summaries_of(memory, "eli")) == 2
        stats = await memory.get_statistics("eli")
        assert stats["memories"] == 1 and stats["memories_by_type"] == {"fact": 1}


async def test_provider_given_a_query_shows_the_relevant_lines_first(
    sqlite_memory: Any,
) -> None:
    """With the build's query and a size, StoredSummaries fills the size with the lines of
    the session summaries holding enough of the query's content words first, then the
    newest others; shown in their order in time, sessions only (no roll-up)."""
    from bruno_memory.managers.lifecycle import StoredSummaries

    memory = sqlite_memory
    conversation = (await memory.create_session("kim")).conversation_id
    for session in range(3):  # two topics each, ten hours apart
        await memory.store_messages([
            Message(role=MessageRole.USER if i == 0 else MessageRole.ASSISTANT,
                    content=TOPICS[2 * session + i], timestamp=at(session * 600 + i))
            for i in range(2)], conversation)
    await _step(ExtractiveSummarizer(), fanout=2, user_summary=False).run(memory, "kim")
    level0 = {str(e.id): e for e in await summaries_of(memory, "kim") if info_of(e).level == 0}
    provider = StoredSummaries(memory, max_tokens=2000)

    async def shown(query: str, max_tokens: int) -> list[str]:
        message = await provider.summary("kim", conversation, None, query=query,
                                         max_tokens=max_tokens)
        assert message is not None and provider.count(message.content) <= max_tokens
        assert set(message.metadata["bruno_summary_of"]) <= set(level0)  # no roll-up
        lines = message.content.splitlines()
        assert lines[0] == "Summary of the earlier conversation:"
        return lines[1:]

    header = provider.count("Summary of the earlier conversation:")
    one = header + 2 + max(provider.count(f"- (01 Mar 2024) {line}")  # room for one line
                           for e in level0.values() for line in e.content.splitlines())
    clara = await shown("Where did Clara move for her robotics job?", one)
    assert len(clara) == 1 and "Clara moved to Lisbon" in clara[0]
    pottery = await shown("What does the pottery class teach on the wheel?", one)
    assert len(pottery) == 1 and "pottery class" in pottery[0]
    assert len(await shown("What about quantum chromodynamics?", one)) == 1
    everything = await shown("Clara", 2000)  # all, in their order in time
    quoted = [next(i for i, t in enumerate(TOPICS) if t in line) for line in everything]
    assert quoted == sorted(quoted) and len(quoted) >= 3
    assert await provider.summary("kim", conversation, None, query="Clara", max_tokens=3) is None
