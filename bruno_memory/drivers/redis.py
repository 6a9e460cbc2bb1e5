"""Redis connection settings shared by the ``redis`` tier and the redis journal.

The rules of seed nodes and of a Redis Cluster are checked here without the driver (the
config models use them whatever is installed); ``connect`` imports redis-py on use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import AfterValidator

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

NODE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):(\d{1,5})$")


def check_nodes(nodes: tuple[str, ...]) -> tuple[str, ...]:
    """Seed nodes: at least one, each ``host:port`` (``[v6]:port``)."""
    if not nodes:
        raise ValueError("expected at least one host:port, or no 'nodes' key")
    for node in nodes:
        if not NODE.match(node) or not 0 < int(node.rpartition(":")[2]) < 65536:
            raise ValueError(f"expected host:port (e.g. 127.0.0.1:7000), got {node!r}")
    return nodes


SeedNodes = Annotated[tuple[str, ...], AfterValidator(check_nodes)]
"""``nodes:`` of a config: seed nodes of a Redis Cluster (declare it ``SeedNodes | None``)."""


def check_cluster_db(url: str) -> None:
    """Refuse a URL that selects a database other than 0 (a Cluster has only that one)."""
    parts = urlsplit(url)  # read as redis-py reads it: ?db=N, else /N
    db = parse_qs(parts.query).get("db", [unquote(parts.path).replace("/", "")])[0]
    if db.strip().isdigit() and int(db) != 0:
        raise ValueError("a Redis Cluster has only database 0: drop the /N from 'url'")


def has_hash_tag(key: str) -> bool:
    """Whether ``key`` has a Cluster hash tag (``{...}``, not empty): keys that begin
    with it, whatever follows, share one slot."""
    start = key.find("{")
    return start >= 0 and key.find("}", start + 1) > start + 1


def host_port(node: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) split; the port as a number."""
    host, _, port = node.rpartition(":")
    return host.strip("[]"), int(port)


def connect(
    url: str,
    *,
    cluster: bool = False,
    nodes: Sequence[str] | None = None,
    password: str | None = None,
    **common: Any,
) -> Redis | RedisCluster:
    """A redis-py asyncio client, not yet connected.

    Args:
        url: the node, or (``cluster``) one seed node of a Redis Cluster; with ``nodes``
            it only lends its options (user, password, TLS).
        cluster: ``url`` is a seed node of a Cluster.
        nodes: seed nodes (``host:port``) of a Cluster.
        password: overrides the URL's.
        common: keyword arguments of both clients (timeouts, retry, client_name...).
    """
    from redis.asyncio import Redis
    from redis.asyncio.cluster import ClusterNode, RedisCluster
    from redis.asyncio.connection import SSLConnection, parse_url

    if password is not None:
        common["password"] = password
    if nodes:
        options: dict[str, Any] = dict(parse_url(url))
        for name in ("host", "port", "db"):
            options.pop(name, None)
        if options.pop("connection_class", None) is SSLConnection:
            common["ssl"] = True
        seeds = [ClusterNode(*host_port(n)) for n in nodes]
        return RedisCluster(startup_nodes=seeds, **options, **common)
    if cluster:
        return RedisCluster.from_url(url, **common)
    return Redis.from_url(url, **common)


__all__ = ["SeedNodes", "check_cluster_db", "check_nodes", "connect", "has_hash_tag", "host_port"]
