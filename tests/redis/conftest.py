"""Real redis-server processes on loopback, one per test (tests/redis_server.py)."""

from tests.redis_server import redis_server, redis_url

__all__ = ["redis_server", "redis_url"]
