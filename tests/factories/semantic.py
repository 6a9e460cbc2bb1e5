"""The semantic tiers (qdrant, chroma) and stacks over them, with the hashing embedder.

The Chroma server is a ``chroma run`` this session starts on a spare loopback port and
stops by its pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import StackFactory, TierFactory

HASHING = {"provider": "hashing", "dimension": 64}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def chroma_server() -> Iterator[str]:
    """A ``chroma run`` on a spare loopback port, stopped (by its pid) afterwards."""
    exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port, data = _free_port(), tempfile.mkdtemp(prefix="chroma-")
    proc = subprocess.Popen(
        [exe, "run", "--host", "127.0.0.1", "--port", str(port), "--path", data],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(data, ignore_errors=True)


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chroma run exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1).close()
            return
        time.sleep(0.2)
    raise RuntimeError("chroma run did not answer within 60s")


def chroma_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("chroma_server_url")
    return url


def _sqlite(tmp: Path) -> dict[str, Any]:
    return {"name": "durable", "kind": "sqlite", "path": str(tmp / "memory.db")}


def _stack(ns: str, tmp: Path, semantic: dict[str, Any]) -> dict[str, Any]:
    tiers = [{"kind": "lru"}, _sqlite(tmp), {"name": "semantic", **semantic}]
    return {"namespace": ns, "embedding": HASHING, "tiers": tiers}


TIERS = [
    TierFactory("qdrant-edge", lambda r, ns, tmp: {"kind": "qdrant", "path": str(tmp / "qdrant")}),
    TierFactory("qdrant-client-local", lambda r, ns, tmp: {"kind": "qdrant", "url": ":memory:"}),
    TierFactory("chroma-path", lambda r, ns, tmp: {"kind": "chroma", "path": str(tmp / "chroma")}),
    TierFactory("chroma-server", lambda r, ns, tmp: {"kind": "chroma", "url": chroma_url(r)}),
]

STACKS = [
    StackFactory(
        "lru->sqlite->qdrant-edge",
        lambda r, ns, tmp: _stack(ns, tmp, {"kind": "qdrant", "path": str(tmp / "q")}),
    ),
    StackFactory(
        "lru->sqlite->chroma-path",
        lambda r, ns, tmp: _stack(ns, tmp, {"kind": "chroma", "path": str(tmp / "c")}),
    ),
    StackFactory(
        "lru->sqlite->chroma-server",
        lambda r, ns, tmp: _stack(ns, tmp, {"kind": "chroma", "url": chroma_url(r)}),
    ),
]


@pytest.fixture(scope="session")
def chroma_server_url() -> Iterator[str]:
    """URL of a Chroma server this test session started (``chroma run`` on loopback)."""
    with chroma_server() as url:
        yield url
