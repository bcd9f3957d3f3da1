"""Real redis-server processes on loopback, one per test (tests/redis_server.py), and one
three-node Redis Cluster for the session (joining one takes a second or two)."""

from collections.abc import Iterator

import pytest

from tests.redis_server import RedisClusterNodes, redis_server, redis_server_missing, redis_url

__all__ = ["redis_cluster", "redis_server", "redis_url"]


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    """Shared: a test that needs it empty calls flush()."""
    missing = redis_server_missing()
    if missing:
        pytest.skip(missing)
    with RedisClusterNodes(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster
