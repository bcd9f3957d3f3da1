"""open_cache_store: a CacheStore from a URL (`memory://`, `redis://`, `rediss://`, `unix://`)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from hotspot_client.optic_odds.cache.memory_store import MemoryStore
from hotspot_client.optic_odds.cache.store import CacheStore

REDIS_SCHEMES = ("redis", "rediss", "unix")


def open_cache_store(url: str, now: Callable[[], float]) -> CacheStore:
    """The store a URL names; `now` (Unix seconds) expires the memory store's entries."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryStore(now)
    if scheme in REDIS_SCHEMES:
        # Imported here: redis is the `cache` extra, and a memory cache needs none of it.
        from hotspot_client.optic_odds.cache.redis_store import RedisStore

        return RedisStore(url)
    raise ValueError(f"unknown cache URL {url!r}: use memory:// or redis://HOST:PORT/DB")
