"""The HTML report: self-contained (nothing fetched), and in headless Chromium on a store
of 10,000 messages it renders every chart and logs nothing to the console."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from bruno_llm.base.cost_tracker import CostTracker

from bruno_memory.build import build_memory
from bruno_memory.cli import main
from bruno_memory.managers.analytics import CHARTS, analyze, render_html
from bruno_memory.testing import services
from tests.factories.populated import populate

CONSOLE = re.compile(r":CONSOLE[:(]")
"""A console message in Chromium's stderr log (its level is not told apart: any counts)."""


def chromium() -> str:
    """The Chromium binary, or a skip (a failure where services are required, as in CI)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "headless Chromium is not installed (Debian: apt-get install chromium)"
        if services.services_required():
            pytest.fail(f"{reason}; it is required with BRUNO_MEMORY_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    return found


def render(page: Path, *extra: str) -> tuple[str, list[str]]:
    """The DOM Chromium builds from ``page``, and the console messages it logged."""
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--enable-logging=stderr", "--v=0", f"--user-data-dir={page.parent / 'profile'}",
         *extra, "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return done.stdout, [line for line in done.stderr.splitlines() if CONSOLE.search(line)]


class Charts(HTMLParser):
    """Per ``data-chart`` figure: how many marks (bars, lines) its SVG draws."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: dict[str, int] = {}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "figure" and a.get("data-chart"):
            self._in = str(a["data-chart"])
            self.marks.setdefault(self._in, 0)
        elif self._in and tag in ("rect", "path") and "mark" in (a.get("class") or ""):
            self.marks[self._in] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._in = None


def charts_of(dom: str) -> dict[str, int]:
    parser = Charts()
    parser.feed(dom)
    return parser.marks


def _screenshot(page: Path) -> None:
    """A screenshot next to the page, and in ``BRUNO_MEMORY_ARTIFACTS`` when set (CI)."""
    shot = page.with_suffix(".png")
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                    f"--user-data-dir={page.parent / 'profile'}", "--window-size=1300,2600",
                    f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000
    artifacts = os.environ.get("BRUNO_MEMORY_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / "analytics-report.png")


async def _populate(config: str) -> None:
    async with await build_memory(config) as memory:
        await populate(memory, messages=10_000, conversations=50, memories=20)


def test_report_of_10000_messages_renders_every_chart(tmp_path: Path, namespace: str) -> None:
    """``report --html`` on 10,000 messages: Chromium draws every chart with data and
    logs no console message. The CLI's own process made no hot read and has no
    ``CostTracker``: those two charts say so instead of drawing."""
    config = tmp_path / "stack.yaml"
    config.write_text(yaml.safe_dump({"namespace": namespace, "tiers": [
        {"kind": "lru"}, {"name": "durable", "kind": "sqlite", "path": str(tmp_path / "m.db")}]}))
    asyncio.run(_populate(str(config)))
    page = tmp_path / "report.html"
    assert main(["report", str(config), "--html", str(page)]) == 0
    dom, console = render(page)
    assert console == []
    marks = charts_of(dom)
    assert set(marks) == set(CHARTS)
    for name in set(CHARTS) - {"llm-cost", "tier-hit-ratio"}:
        assert marks[name] > 0, f"chart {name} draws nothing"
    assert "10,000" in dom and "no CostTracker" in dom and "no hot read" in dom
    _screenshot(page)


async def test_report_with_cost_draws_the_cost_chart(tmp_path: Path, namespace: str) -> None:
    """Inside an application (hot reads counted, a ``CostTracker`` passed) every chart is
    drawn; the page references nothing outside itself (no script, link, image or URL)."""
    tracker = CostTracker("openai", {"m": {"input": 0.5, "output": 1.5}})
    for purpose in ("summary", "extraction", "embedding"):
        tracker.track_request("m", 1200, 300, {"purpose": purpose})
    config = {"namespace": namespace, "tiers": [
        {"kind": "lru"}, {"name": "durable", "kind": "sqlite", "path": str(tmp_path / "m.db")}]}
    async with await build_memory(config) as memory:
        made = await populate(memory, messages=200, conversations=4, memories=3)
        for conversation, user in made.conversations.items():
            for _ in range(2):
                await memory.get_context(user, conversation)  # the second read hits the LRU
        found: dict[str, Any] = await analyze(memory, cost=[tracker])
    page = render_html(found, "Report <ada & co>")
    assert "<script" not in page and " src=" not in page and " href=" not in page
    assert "url(" not in page and "@import" not in page
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"] * len(
        re.findall("<svg", page))
    assert "Report &lt;ada &amp; co&gt;" in page
    target = tmp_path / "cost.html"
    await asyncio.to_thread(target.write_text, page, encoding="utf-8")
    dom, console = await asyncio.to_thread(render, target)
    assert console == []
    marks = charts_of(dom)
    assert all(marks[name] > 0 for name in CHARTS), marks
    assert marks["llm-cost"] == 1  # one bar: every request was tracked today


def test_console_messages_are_caught(tmp_path: Path) -> None:
    """The console check sees an error a page logs (so a clean report is evidence)."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>nowhere();</script>")
    _, console = render(page)
    assert console and "nowhere" in console[0]
