"""Real redis-server processes on loopback, one per test (tests/redis_server.py), and one
three-node Redis Cluster for the session."""

from tests.redis_server import redis_cluster, redis_server, redis_url

__all__ = ["redis_cluster", "redis_server", "redis_url"]
