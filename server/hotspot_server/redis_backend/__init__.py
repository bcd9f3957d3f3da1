"""The redis:// backend: replicas sharing each fixture's exact window and FIFO queue in Redis."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from hotspot_core.policy import PermitPolicy
from hotspot_server.redis_backend.backend import CALL_TIMEOUT, RedisBackend


def open_redis_backend(url: str, policy: PermitPolicy) -> RedisBackend:
    """The backend for `redis://[USER:PASSWORD@]HOST:PORT/DB[?timeout=SECONDS]` (`rediss://`
    for TLS), or for the primary a set of Sentinels names (connection.SENTINEL_FORM).
    `timeout` bounds every Redis call (default 0.1 s); the rest is redis-py's."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    timeout = [value for key, value in query if key == "timeout"]
    try:
        call_timeout = float(timeout[-1]) if timeout else CALL_TIMEOUT
    except ValueError:
        raise ValueError(f"timeout must be seconds, got {timeout[-1]!r}") from None
    if not 0 < call_timeout <= 60:
        raise ValueError(f"timeout must be above 0 and at most 60 seconds, got {call_timeout}")
    rest = urlencode([(key, value) for key, value in query if key != "timeout"])
    return RedisBackend(urlunsplit(parts._replace(query=rest)), policy, call_timeout=call_timeout)


__all__ = ["RedisBackend", "open_redis_backend"]
