"""Every policy preset in policies/ loads, wraps the policies it names, and builds a stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from bruno_memory import build_memory
from bruno_memory.build import policies_of
from bruno_memory.config.loader import load_config

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted(p.stem for p in (ROOT / "policies").glob("*.yaml"))
CACHE_ONLY = {"cache-skip-on-error"}


def _stack(preset: str) -> dict[str, object]:
    cache = {"kind": "lru", "policy": preset} if preset in CACHE_ONLY else {"kind": "lru"}
    durable = {"name": "durable", "kind": "sqlite", "path": "m.db"}
    if preset not in CACHE_ONLY:
        durable["policy"] = preset
    return {"tiers": [cache, durable]}


def test_the_presets_cover_every_policy() -> None:
    """The shipped presets include write-through, batched, journaled and on-error ones."""
    assert {"write-through", "batched", "batched-journaled", "cache-skip-on-error",
            "durable-queue-on-error"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
async def test_a_preset_builds_a_working_stack(
    preset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack using the preset validates, wraps its policies, stores and reads back."""
    monkeypatch.chdir(tmp_path)  # file journals and databases land here
    cfg = load_config(_stack(preset))
    wrapped = [policies_of(t) for t in cfg.tiers]
    expected = {
        "write-through": [[], []],
        "batched": [[], ["write-behind"]],
        "batched-journaled": [[], ["fallback", "write-behind"]],
        "cache-skip-on-error": [["fallback"], []],
        "durable-queue-on-error": [[], ["fallback", "write-behind"]],
        "fail-fast": [[], ["fallback"]],
    }
    if preset in expected:
        assert wrapped == expected[preset]
    memory = await build_memory(cfg)
    try:
        session = await memory.create_session("ann")
        assert (await memory.get_session(session.session_id)) == session
    finally:
        await memory.close()
