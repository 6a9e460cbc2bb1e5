"""Test-owned ``redis-server`` processes on spare loopback ports, each stopped by its pid.

``cluster_url(request)`` starts one 3-master Redis Cluster per test session (lazily, for
the tier and stack factories) unless ``BRUNO_MEMORY_TEST_REDIS_CLUSTER_URL`` names one.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from bruno_memory.testing import services

CLUSTER_ENV = "BRUNO_MEMORY_TEST_REDIS_CLUSTER_URL"
REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


@dataclass
class RedisServer:
    """One redis-server this test session started."""

    port: int
    proc: subprocess.Popen[bytes]
    password: str | None = None
    log: Path | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password, socket_timeout=5)

    def stop(self) -> None:
        """Stop this process (by its pid), killing it if it does not exit."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def unavailable(reason: str) -> None:
    """Skip, or fail when services are required."""
    if services.services_required():
        pytest.fail(f"redis-server is required (BRUNO_MEMORY_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def spare_port(*, bus: bool = False) -> int:
    """A free loopback port in 7100-7999 (and its cluster bus port +10000 when ``bus``)."""
    for port in random.sample(range(7100, 8000), 900):
        if _free(port) and (not bus or _free(port + 10000)):
            return port
    raise RuntimeError("no spare port in 7100-7999")


def start_server(
    folder: Path, *, password: str | None = None, cluster: bool = False
) -> RedisServer:
    """Start a redis-server without persistence; retries on a port race."""
    if REDIS_SERVER is None:
        unavailable("redis-server is not installed")
    for _ in range(3):
        port = spare_port(bus=cluster)
        log = folder / f"redis-{port}.log"
        args = [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
            "--logfile",
            str(log),
        ]
        if password:
            args += ["--requirepass", password]
        if cluster:
            args += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                "2000",
            ]
        server = RedisServer(port, subprocess.Popen(args, stdin=subprocess.DEVNULL), password, log)
        if _answers(server):
            return server
        server.stop()
    raise RuntimeError(f"redis-server did not start; see the logs in {folder}")


def _answers(server: RedisServer, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.proc.poll() is None:
        try:
            return bool(server.client().ping())
        except redis.ConnectionError:
            time.sleep(0.05)
    return False


@dataclass
class Cluster:
    """A 3-master Redis Cluster of test-owned servers."""

    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster(folder: Path, masters: int = 3) -> Cluster:
    """Start ``masters`` cluster-enabled servers, join them, wait for ``cluster_state:ok``."""
    if REDIS_CLI is None:
        unavailable("redis-cli is not installed")
    cluster = Cluster([])
    try:
        cluster.nodes = [start_server(folder, cluster=True) for _ in range(masters)]
        subprocess.run(
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *(n.address for n in cluster.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _wait_ok(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_ok(cluster: Cluster, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [n.client().cluster("INFO")["cluster_state"] for n in cluster.nodes]
        if all(s == "ok" for s in states):
            return
        time.sleep(0.1)
    raise RuntimeError("the test cluster did not reach cluster_state:ok")


_SESSION: dict[str, str | BaseException] = {}


def cluster_url(request: pytest.FixtureRequest) -> str:
    """The session's Redis Cluster seed URL, started on first use, stopped at session end."""
    if os.environ.get(CLUSTER_ENV):
        return os.environ[CLUSTER_ENV]
    if "url" not in _SESSION:
        try:
            folder = request.getfixturevalue("tmp_path_factory").mktemp("redis-cluster")
            cluster = start_cluster(folder)
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            _SESSION["url"] = exc
        else:
            request.config.add_cleanup(cluster.stop)
            _SESSION["url"] = cluster.url
    found = _SESSION["url"]
    if isinstance(found, BaseException):
        unavailable(f"could not start a Redis Cluster: {found}")
    assert isinstance(found, str)
    return found


def owned_server(folder: Path, **options: object) -> Iterator[RedisServer]:
    """A fixture body: a test-owned server, stopped afterwards."""
    server = start_server(folder, **options)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()
