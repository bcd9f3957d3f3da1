"""Real redis-server processes on loopback, one per test (tests/redis_server.py); the
session's Redis Cluster is tests/conftest.py's."""

from tests.redis_server import redis_server, redis_url

__all__ = ["redis_server", "redis_url"]
