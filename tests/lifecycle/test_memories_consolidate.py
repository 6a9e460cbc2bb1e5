"""Consolidation through a recording LLM over real stacks: prompts, batching, incremental
reruns, resuming after a crash, cost, and supersession instead of overwrite."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory.core import lifetimes as lt
from bruno_memory.core.errors import InvalidInput
from bruno_memory.managers.lifecycle.calls import LLMCalls
from bruno_memory.managers.lifecycle.consolidate import Consolidate
from bruno_memory.managers.lifecycle.step import Step
from bruno_memory.managers.lifecycle.supersede import add_memory
from bruno_memory.testing.llm import RecordingLLM
from tests.factories import STACKS, opened

LIFECYCLE_STACKS = [s for s in STACKS
                    if s.id in ("lru->sqlite", "lru->redis->postgres", "lru->sqlite->qdrant-edge")]
memory = opened("memory", LIFECYCLE_STACKS,
                "A cached stack over SQLite, Redis over PostgreSQL, and a semantic tier.")

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc)


class Scripted(RecordingLLM):
    """The recording LLM answering from a script (an exception in it is raised)."""

    def __init__(self, answers: list[Any]) -> None:
        super().__init__()
        self.answers = list(answers)

    async def generate(self, messages: list[Message], temperature: float | None = None,
                       max_tokens: int | None = None, **kwargs: Any) -> str:
        await super().generate(messages, temperature, max_tokens, **kwargs)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer if isinstance(answer, str) else json.dumps(answer)


def fact(content: str, *sources: int, kind: str = "fact") -> dict[str, Any]:
    return {"content": content, "kind": kind, "importance": 0.7, "sources": list(sources)}


async def chat(
    memory: Any, user: str, conv: str, texts: list[str], start: int = 0
) -> list[Message]:
    await memory.get_context(user, conv)
    msgs = [Message(role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT, content=t,
                    timestamp=T0 + timedelta(minutes=start + i)) for i, t in enumerate(texts)]
    await memory.store_messages(msgs, conv)
    return msgs


async def current(memory: Any, user: str) -> list[str]:
    return sorted(e.content for e in await memory.retrieve_memories(MemoryQuery(user_id=user)))


async def test_extraction_batches_prompts_and_records_sources_and_cost(memory: Any) -> None:
    """Each batch is one call whose prompt numbers the messages; every memory keeps the ids
    of the messages it came from; tokens and cost are tracked."""
    msgs = await chat(memory, "ada", "c1", ["I live in Porto", "nice", "I have a cat", "ok"])
    llm = Scripted([[fact("User lives in Porto", 1)], [fact("User has a cat", 1)]])
    calls = LLMCalls(llm, pricing={"recording": {"input": 1.0, "output": 2.0}})
    step = Consolidate(calls, batch=2)
    assert isinstance(step, Step)
    report = await step.run(memory, "ada")
    assert report.added == 2 and len(llm.inputs) == 2
    prompt = llm.inputs[0][0].content
    assert "[1] user: I live in Porto" in prompt and "[2] assistant: nice" in prompt
    assert "I have a cat" not in prompt
    found = {e.content: e for e in await memory.retrieve_memories(MemoryQuery(user_id="ada"))}
    assert set(found) == {"User lives in Porto", "User has a cat"}
    assert found["User has a cat"].metadata.custom_fields[lt.SOURCES] == [str(msgs[2].id)]
    assert found["User has a cat"].conversation_id == "c1"
    usage = calls.tracker.get_usage_report() if calls.tracker else {}
    assert usage["total_requests"] == 2 and usage["total_cost"] > 0


async def test_a_rerun_with_nothing_new_makes_no_call(memory: Any) -> None:
    """The cursor makes reruns incremental: only new messages are sent, once."""
    await chat(memory, "bo", "c2", ["I play chess", "cool"])
    llm = Scripted([[fact("User plays chess", 1)], [fact("User owns a bicycle", 1)]])
    step = Consolidate(LLMCalls(llm))
    await step.run(memory, "bo")
    again = await step.run(memory, "bo")
    assert len(llm.inputs) == 1 and again.added == 0
    await chat(memory, "bo", "c2", ["I bought a bicycle"], start=10)
    await step.run(memory, "bo")
    assert len(llm.inputs) == 2 and "I play chess" not in llm.inputs[1][0].content
    assert await current(memory, "bo") == ["User owns a bicycle", "User plays chess"]
    assert (await memory.get_statistics("bo"))["memories"] == 2  # the cursor is not counted
    every = await memory.retrieve_memories(MemoryQuery(user_id="bo", include_expired=True))
    assert len(every) == 2  # nor returned: the cursor is bookkeeping


async def test_a_crash_mid_run_resumes_after_the_last_finished_batch(memory: Any) -> None:
    """A failure on the second batch keeps the first; the next run sends only the second."""
    await chat(memory, "cy", "c3", ["I am vegan", "ok", "I run marathons", "wow"])
    llm = Scripted([[fact("User is vegan", 1)], RuntimeError("provider down")])
    with pytest.raises(RuntimeError):
        await Consolidate(LLMCalls(llm), batch=2).run(memory, "cy")
    assert await current(memory, "cy") == ["User is vegan"]
    llm.answers = [[fact("User runs marathons", 1)]]
    await Consolidate(LLMCalls(llm), batch=2).run(memory, "cy")
    assert "I am vegan" not in llm.inputs[-1][0].content and len(llm.inputs) == 3
    assert await current(memory, "cy") == ["User is vegan", "User runs marathons"]


async def test_an_unreadable_answer_keeps_the_cursor_for_a_retry(memory: Any) -> None:
    """An answer that is not a JSON array adds nothing and is retried next run."""
    await chat(memory, "di", "c4", ["I speak Welsh"])
    llm = Scripted(["sorry, I cannot", [fact("User speaks Welsh", 1)]])
    first = await Consolidate(LLMCalls(llm)).run(memory, "di")
    assert first.added == 0 and first.details[0]["action"] == "retry"
    await Consolidate(LLMCalls(llm)).run(memory, "di")
    assert await current(memory, "di") == ["User speaks Welsh"]


async def test_dry_run_makes_no_call_and_writes_nothing(memory: Any) -> None:
    """A dry run lists the batches it would send."""
    await chat(memory, "ed", "c5", ["I like tea", "ok"])
    llm = Scripted([])
    report = await Consolidate(LLMCalls(llm)).run(memory, "ed", dry_run=True)
    assert llm.inputs == [] and report.details[0]["action"] == "extract"
    assert await memory.retrieve_memories(MemoryQuery(user_id="ed", include_expired=True)) == []


async def test_hate_after_love_supersedes_and_never_empties(memory: Any) -> None:
    """mem0 PR 4580: the update supersedes the old memory; one current, both stored."""
    t1, t2 = T0, T0 + timedelta(days=3)
    love = MemoryEntry(content="I love Chinese food", memory_type=MemoryType.FACT, user_id="fe")
    first = await add_memory(memory, love, now=t1)
    hate = MemoryEntry(content="I hate Chinese food", memory_type=MemoryType.FACT, user_id="fe")
    second = await add_memory(memory, hate, now=t2)
    assert second.verdict == "update" and second.superseded is not None
    assert await current(memory, "fe") == ["I hate Chinese food"]
    old = await memory.get_memory(str(first.kept.id))
    assert old.metadata.custom_fields[lt.SUPERSEDED_BY] == str(second.kept.id)
    assert old.metadata.custom_fields[lt.VALID_TO] == t2.isoformat()
    assert second.kept.metadata.custom_fields[lt.VALID_FROM] == t2.isoformat()
    q = MemoryQuery(user_id="fe")
    then = await memory.query_memories(q, as_of=t1 + timedelta(days=1))
    assert [e.content for e in then] == ["I love Chinese food"]
    assert [e.content for e in await memory.query_memories(q, as_of=t2 + timedelta(hours=1))] \
        == ["I hate Chinese food"]
    assert await memory.query_memories(q, as_of=t1 - timedelta(days=1)) == []
    history = await memory.retrieve_memories(MemoryQuery(user_id="fe", include_expired=True))
    assert len(history) == 2
    searched = await memory.retrieve_memories(MemoryQuery(user_id="fe", query_text="Chinese food"))
    assert [e.content for e in searched] == ["I hate Chinese food"]  # vectors follow too
    assert (await memory.get_statistics("fe"))["memories"] == 1


async def test_the_llm_judge_decides_uncertain_matches(memory: Any) -> None:
    """With a judge, "plays go" after "plays chess" is what the LLM says: a new memory."""
    await chat(memory, "ju", "cj", ["I play chess", "ok", "I also play go", "ok"])
    llm = Scripted([[fact("User plays chess", 1)], [fact("User plays go", 1)], "NEW"])
    report = await Consolidate(LLMCalls(llm), batch=2, judge=True).run(memory, "ju")
    assert report.added == 2 and "User plays chess" in llm.inputs[2][0].content
    assert await current(memory, "ju") == ["User plays chess", "User plays go"]


async def test_adding_the_same_memory_twice_deletes_nothing(memory: Any) -> None:
    """mem0 issue 1674: a repeat merges into the memory it repeats, which is kept whole."""
    a = MemoryEntry(content="Allergic to peanuts", memory_type=MemoryType.FACT, user_id="gi")
    b = MemoryEntry(content="allergic to peanuts!", memory_type=MemoryType.FACT, user_id="gi",
                    tags=[])
    b.metadata.tags = ["health"]
    first = await add_memory(memory, a)
    again = await add_memory(memory, a.model_copy(update={"id": b.id}))
    third = await add_memory(memory, b)
    assert (again.verdict, third.verdict) == ("duplicate", "duplicate")
    stored = await memory.retrieve_memories(MemoryQuery(user_id="gi", include_expired=True))
    assert [e.id for e in stored] == [first.kept.id]
    kept = stored[0]
    assert kept.content == "Allergic to peanuts" and kept.metadata.tags == ["health"]
    assert kept.metadata.custom_fields[lt.MERGED] == 2


def test_bad_settings_are_refused() -> None:
    """A template without {transcript} or a batch below one says what to fix."""
    calls = LLMCalls(RecordingLLM())
    with pytest.raises(InvalidInput, match="transcript"):
        Consolidate(calls, template="no placeholder")
    with pytest.raises(InvalidInput, match="batch"):
        Consolidate(calls, batch=0)
