"""A redis journal on a Redis Cluster is configured as the redis tier is: ``cluster`` or
seed ``nodes``, database 0 only; a stream it is given must carry a hash tag."""

from __future__ import annotations

from typing import Any

import pytest

from bruno_memory.config.loader import load_config
from bruno_memory.config.models import JournalConfig
from bruno_memory.core.errors import BrunoMemoryConfigError


def journal_of(**journal: Any) -> JournalConfig:
    cfg = load_config({"tiers": [{"kind": "sqlite", "write": "write-behind", "journal": journal}]})
    found = cfg.tiers[0].journal
    assert found is not None
    return found


def refused(**journal: Any) -> str:
    with pytest.raises(BrunoMemoryConfigError) as info:
        journal_of(**journal)
    return str(info.value)


def test_cluster_and_seed_nodes_make_a_cluster_journal() -> None:
    """``cluster: true`` or ``nodes`` (which needs no url) mean a cluster; neither, one node."""
    assert journal_of(kind="redis", url="redis://h:7000", cluster=True).is_cluster
    seeded = journal_of(kind="redis", nodes=["h1:7000", "[::1]:7001"])
    assert seeded.is_cluster and seeded.nodes == ("h1:7000", "[::1]:7001") and seeded.url is None
    assert not journal_of(kind="redis", url="redis://h:6379/3").is_cluster


@pytest.mark.parametrize("nodes", [["h1"], ["h1:0"], ["h1:70000"], ["h 1:7000"], []])
def test_a_bad_seed_node_is_refused_with_what_to_write(nodes: list[str]) -> None:
    """Each seed node is host:port with a port in 1-65535, and there is at least one."""
    message = refused(kind="redis", nodes=nodes)
    assert "tiers[0].journal.nodes: expected" in message and "host:port" in message


@pytest.mark.parametrize(
    "where",
    [
        {"url": "redis://h:7000/2", "cluster": True},
        {"url": "redis://h:7000?db=1", "cluster": True},
        {"url": "redis://h:7000/1", "nodes": ["h:7000"]},
    ],
)
def test_a_cluster_journal_refuses_a_database_other_than_0(where: dict[str, Any]) -> None:
    """A Redis Cluster has only database 0: a URL that selects another is refused."""
    assert "only database 0" in refused(kind="redis", **where)
    assert journal_of(kind="redis", url="redis://h:7000/0", cluster=True).is_cluster


def test_a_cluster_journals_stream_needs_a_hash_tag() -> None:
    """On a cluster a stream without a hash tag (``{...}``) is refused with the name to
    write instead; one node takes any name."""
    message = refused(kind="redis", url="redis://h:7000", cluster=True, stream="journal")
    assert "tiers[0].journal: on a Redis Cluster 'stream' needs a hash tag" in message
    assert "'{journal}'" in message
    assert "hash tag" in refused(kind="redis", nodes=["h:7000"], stream="journal:{}")
    assert journal_of(kind="redis", url="redis://h:7000", cluster=True, stream="j:{a}").stream
    assert journal_of(kind="redis", url="redis://h:6379/0", stream="journal").stream


def test_a_file_journal_takes_no_cluster_and_a_redis_journal_needs_a_server() -> None:
    """``cluster``/``nodes`` belong to a redis journal, which needs a url or seed nodes."""
    assert "file journal takes 'path'" in refused(kind="file", nodes=["h:7000"])
    assert "file journal takes 'path'" in refused(kind="file", cluster=True)
    assert "needs 'url'" in refused(kind="redis", cluster=True)
