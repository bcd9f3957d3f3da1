"""MemoryStore (`memory://`): entries in this process, expired by the injected clock."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from hotspot_client.optic_odds.cache.entry import CacheEntry

DEFAULT_MAX_ENTRIES = 10_000


class MemoryStore:
    """A bounded map of entries, least recently used dropped first.

    Nothing outside the process shares it, so its lock always succeeds: the
    cache's single-flight already makes one fetch per key in the process.
    """

    shared = False

    def __init__(self, now: Callable[[], float], max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self._now = now
        self._max_entries = max_entries
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()

    async def get(self, key: str) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.age(self._now()) > entry.keep_for:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    async def put(self, key: str, entry: CacheEntry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def lock(self, key: str, ttl: float) -> str | None:
        return "local"

    async def extend(self, key: str, token: str, ttl: float) -> bool:
        return True

    async def is_locked(self, key: str) -> bool:
        return False

    async def unlock(self, key: str, token: str) -> None:
        return None

    async def close(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
