"""The admin commands: stats, inspect, search, forget-user and drop, with their JSON
output, confirmations and exit statuses."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bruno_memory.build import build_memory
from bruno_memory.cli import main
from tests.factories.populated import Populated, populate


class Terminal(io.StringIO):
    """A stdin that is a terminal, holding what the operator types."""

    def isatty(self) -> bool:
        return True


def _config(tmp: Path, namespace: str) -> str:
    path = tmp / "stack.yaml"
    path.write_text(yaml.safe_dump({"namespace": namespace, "tiers": [
        {"kind": "lru"}, {"name": "durable", "kind": "sqlite", "path": str(tmp / "m.db")}]}))
    return str(path)


async def _populate(config: str, **sizes: Any) -> Populated:
    async with await build_memory(config) as memory:
        return await populate(memory, **sizes)


async def _statistics(config: str, user: str) -> dict[str, Any]:
    async with await build_memory(config) as memory:
        return await memory.get_statistics(user)


@pytest.fixture
def store(tmp_path: Path, namespace: str) -> tuple[str, Populated]:
    config = _config(tmp_path, namespace)
    return config, asyncio.run(_populate(config, messages=120, conversations=6, memories=3))


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], status: int = 0) -> Any:
    assert main(argv) == status
    return json.loads(capsys.readouterr().out)


def test_stats_json_reports_totals_growth_and_topics(
    store: tuple[str, Populated], capsys: pytest.CaptureFixture[str]
) -> None:
    """``stats --json`` prints the analytics report of the whole store."""
    config, made = store
    found = _json(capsys, ["stats", config, "--json"])
    assert found["totals"]["messages"] == made.total == 120
    assert found["totals"]["users"] == 3 and found["totals"]["memories"] == 9
    assert sum(d["messages"] for d in found["growth"]["daily"]) == 120
    assert "picnic" in {w["keyword"] for p in found["topics"]["ada"].values() for w in p}
    assert found["tiers"]["durable"]["operations"]["Scan"]["count"] >= 3


def test_stats_for_one_user_counts_only_hers(
    store: tuple[str, Populated], capsys: pytest.CaptureFixture[str]
) -> None:
    """``stats --user`` scopes every figure to that user."""
    config, made = store
    found = _json(capsys, ["stats", config, "--user", "bob", "--json", "--no-topics"])
    assert found["scope"] == {"user_id": "bob"}
    assert found["totals"]["messages"] == made.messages["bob"]
    assert {r["user_id"] for r in found["growth"]["by_user"]} == {"bob"}
    assert main(["stats", config, "--user", "bob", "--no-topics"]) == 0
    assert capsys.readouterr().out.startswith(f"{made.messages['bob']} messages, 1 users")


def test_inspect_user_and_conversation(
    store: tuple[str, Populated], capsys: pytest.CaptureFixture[str]
) -> None:
    """``inspect`` shows a user's sessions, recent messages and memories, and a
    conversation's owner and messages; an unknown id exits 1."""
    config, made = store
    user = _json(capsys, ["inspect", config, "--user", "ada", "--limit", "5", "--json"])
    assert user["statistics"]["total_messages"] == made.messages["ada"]
    assert len(user["messages"]) == 5 and len(user["memories"]) == 3
    assert {s["user_id"] for s in user["sessions"]} == {"ada"}
    conversation, owner = next(iter(made.conversations.items()))
    conv = _json(capsys, ["inspect", config, "--conversation", conversation, "--json"])
    assert conv["owner"] == owner and len(conv["messages"]) == 10
    assert main(["inspect", config, "--user", "nobody"]) == 1
    assert "nothing stored" in capsys.readouterr().err
    assert main(["inspect", config]) == 2  # --user or --conversation is required


def test_search_ranks_only_that_users_messages(
    store: tuple[str, Populated], capsys: pytest.CaptureFixture[str]
) -> None:
    """``search`` returns the user's messages matching the query, best first."""
    config, _ = store
    found = _json(capsys, ["search", config, "picnic", "--user", "ada", "--json"])
    assert found["hits"] and all("picnic" in h["message"]["content"] for h in found["hits"])
    scores = [h["score"] for h in found["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert _json(capsys, ["search", config, "picnic", "--user", "bob", "--json"])["hits"] == []


def test_forget_user_refuses_without_a_terminal_or_yes(
    store: tuple[str, Populated], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without ``--yes`` and with stdin not a terminal, nothing is erased (exit 2); a
    declined prompt exits 1; the right answer or ``--yes`` erases the user."""
    config, made = store
    monkeypatch.setattr("sys.stdin", io.StringIO("ada\n"))
    assert main(["forget-user", config, "ada"]) == 2
    assert "pass --yes" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", Terminal("no\n"))
    assert main(["forget-user", config, "ada"]) == 1
    assert asyncio.run(_statistics(config, "ada"))["total_messages"] == made.messages["ada"]
    monkeypatch.setattr("sys.stdin", Terminal("ada\n"))
    assert main(["forget-user", config, "ada"]) == 0
    assert capsys.readouterr().out.startswith("erased user ada")
    assert asyncio.run(_statistics(config, "ada"))["total_messages"] == 0
    erased = _json(capsys, ["forget-user", config, "bob", "--yes", "--json"])
    assert erased["erased"]["total_messages"] == made.messages["bob"]
    assert asyncio.run(_statistics(config, "bob"))["total_messages"] == 0
    assert asyncio.run(_statistics(config, "cy"))["total_messages"] == made.messages["cy"]


def test_drop_asks_then_removes_the_database(
    store: tuple[str, Populated], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, namespace: str,
) -> None:
    """``drop`` asks for the namespace on a terminal, refuses without one, and with the
    answer (or ``--yes``) deletes the SQLite file."""
    config, _ = store
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["drop", config]) == 2
    monkeypatch.setattr("sys.stdin", Terminal("yes\n"))
    assert main(["drop", config]) == 1
    assert (tmp_path / "m.db").exists()
    monkeypatch.setattr("sys.stdin", Terminal(f"{namespace}\n"))
    assert _json(capsys, ["drop", config, "--json"])["namespace"] == namespace
    assert not (tmp_path / "m.db").exists()
    assert _json(capsys, ["stats", config, "--json", "--no-topics"])["totals"]["messages"] == 0
    assert main(["drop", config, "--yes"]) == 0


def test_stats_exits_1_when_a_tier_is_down(
    tmp_path: Path, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A skipped Redis tier nobody answers: the figures come from SQLite, the tier is
    reported down and the exit status is 1."""
    path = tmp_path / "down.yaml"
    path.write_text(yaml.safe_dump({"namespace": namespace, "tiers": [
        {"name": "hot", "kind": "redis", "url": "redis://127.0.0.1:1/0", "on_error": "skip",
         "connect_timeout": 0.5},
        {"name": "durable", "kind": "sqlite", "path": str(tmp_path / "m.db")}]}))
    assert main(["stats", str(path), "--json", "--no-topics"]) == 1
    out, err = capsys.readouterr()
    found = json.loads(out)
    assert found["tiers"]["hot"]["status"] == "down"
    assert found["tiers"]["durable"]["status"] == "up"
    assert "tier hot is down" in err
