"""CacheStore: where entries live (one process, or a Redis that every replica shares)."""

from __future__ import annotations

from typing import Protocol

from hotspot_client.optic_odds.cache.entry import CacheEntry


class CacheUnavailable(Exception):
    """The store could not be reached or answered garbage; the caller goes on without it."""


class CacheStore(Protocol):
    shared: bool
    """True when other processes read and write the same entries (and honour its locks)."""

    async def get(self, key: str) -> CacheEntry | None:
        """The entry, or None if there is none (or it is past any use)."""
        ...

    async def put(self, key: str, entry: CacheEntry) -> None:
        """Store the entry; the store may drop it once `entry.keep_for` has passed."""
        ...

    async def lock(self, key: str, ttl: float) -> str | None:
        """Take the key's refresh lock for at most `ttl` seconds: a token, or None if held."""
        ...

    async def extend(self, key: str, token: str, ttl: float) -> bool:
        """Renew the lock for `ttl` seconds if `token` still holds it; False if it does not."""
        ...

    async def is_locked(self, key: str) -> bool: ...

    async def unlock(self, key: str, token: str) -> None:
        """Release the lock if `token` still holds it (an expired lock may be someone else's)."""
        ...

    async def close(self) -> None: ...
