"""OddsCache: read-through with coalescing and stale-while-revalidate.

A read is served from the entry while it is fresh; past that, while it is within
its maximum staleness, it is served at once (marked stale) and one refresh runs
in the background. With nothing servable the caller waits for a fetch, which
concurrent callers share: one task per key in the process (SingleFlight), and
across replicas a short lock in the store, the others polling for its result.
Only the fetch takes permits, so only the caller that makes it does.

Failures are never cached: a refused permit or an upstream error reaches the
callers of that one fetch, and the next read tries again (a failed background
refresh waits out the refusal's retry-after first). A store that fails is
skipped: the read calls through, and one warning is logged per outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hotspot_client.optic_odds.cache.entry import CacheEntry
from hotspot_client.optic_odds.cache.freshness import Freshness, FreshnessRules
from hotspot_client.optic_odds.cache.metrics import CacheEvent, CacheMetrics
from hotspot_client.optic_odds.cache.open_store import open_cache_store
from hotspot_client.optic_odds.cache.outage import CacheOutage
from hotspot_client.optic_odds.cache.single_flight import SingleFlight
from hotspot_client.optic_odds.cache.store import CacheStore, CacheUnavailable
from hotspot_core.clock import LoopClock

logger = logging.getLogger("hotspot.cache")

LOCK_TTL = 10.0
"""Seconds a replica's refresh lock lasts at most: enough for a permit wait and the call."""
POLL_EVERY = 0.02
"""Seconds between looks at the store while another replica fetches."""
REFRESH_BACKOFF = 1.0
"""Seconds before retrying a failed background refresh when the failure named no delay."""
_MAX_BACKOFFS = 10_000


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a fetch returns: the upstream body and the freshness its content calls for."""

    body: bytes
    freshness: Freshness


Fetch = Callable[[], Awaitable[Fetched]]


@dataclass(frozen=True, slots=True)
class Served:
    entry: CacheEntry
    age: float
    """Seconds since the upstream answered."""
    stale: bool
    """Past its freshness (served within the maximum staleness)."""


class WallClock:
    """Unix seconds on the running loop's clock (virtual under looptime), anchored once."""

    def __init__(self) -> None:
        self._clock: LoopClock | None = None

    def __call__(self) -> float:
        if self._clock is None:
            self._clock = LoopClock()
        return self._clock.to_wall(self._clock.monotonic())


class OddsCache:
    """Read-through cache of upstream bodies; see the module docstring for the rules."""

    def __init__(
        self,
        store: CacheStore,
        *,
        freshness: FreshnessRules | None = None,
        now: Callable[[], float] | None = None,
        metrics: CacheMetrics | None = None,
        lock_ttl: float = LOCK_TTL,
        poll_every: float = POLL_EVERY,
        refresh_backoff: float = REFRESH_BACKOFF,
    ) -> None:
        self.store = store
        self.freshness = freshness or FreshnessRules()
        """What the client stores each answer for (chosen from the answer's fixtures)."""
        self.now = now or WallClock()
        self.metrics = metrics or CacheMetrics()
        self.outage = CacheOutage(self.now)
        self._lock_ttl = lock_ttl
        self._poll_every = poll_every
        self._refresh_backoff = refresh_backoff
        self._gets: SingleFlight[CacheEntry | None] = SingleFlight()
        self._fetches: SingleFlight[CacheEntry] = SingleFlight()
        self._refreshes: SingleFlight[CacheEntry | None] = SingleFlight()
        self._refresh_after: dict[str, float] = {}

    @classmethod
    def from_url(
        cls, url: str, *, now: Callable[[], float] | None = None, **options: Any
    ) -> OddsCache:
        """A cache on the store `url` names (memory:// or redis://...); options as __init__."""
        clock = now or WallClock()
        return cls(open_cache_store(url, clock), now=clock, **options)

    async def close(self) -> None:
        """Stop the refreshes and fetches still running and close the store."""
        await self._refreshes.cancel_all()
        await self._fetches.cancel_all()
        await self.store.close()

    # -- Reads -----------------------------------------------------------------------------

    async def read(self, key: str, endpoint: str, fetch: Fetch) -> Served:
        """The entry for `key`: fresh, stale (refreshing in the background), or fetched now.

        Raises what the fetch raises when nothing servable is cached. Cancelling a read
        never cancels the fetch it waits on: the other readers still get its result and
        the entry is stored; the cancelled reader itself holds no permit.
        """
        cached = await self._get(key, endpoint)
        now = self.now()
        if cached is not None and cached.is_fresh(now):
            self.metrics.count(endpoint, CacheEvent.HIT)
            return Served(cached, cached.age(now), stale=False)
        if cached is not None and cached.is_servable(now):
            self.metrics.count(endpoint, CacheEvent.STALE)
            self._refresh_in_background(key, endpoint, fetch, cached)
            return Served(cached, cached.age(now), stale=True)
        self.metrics.count(endpoint, CacheEvent.MISS)
        entry, joined = await self._fetches.run(
            key, lambda: self._fetch_once(key, endpoint, fetch, cached)
        )
        if joined:
            self.metrics.count(endpoint, CacheEvent.COALESCED)
        now = self.now()
        return Served(entry, entry.age(now), stale=not entry.is_fresh(now))

    async def refresh(
        self, key: str, endpoint: str, fetch: Fetch, *, unless_fresh: bool = False
    ) -> Served | None:
        """Fetch now and store, whatever is cached (the warmer's call).

        `unless_fresh`: leave a fresh entry alone. None when nothing was fetched here:
        the entry is fresh, or another caller or replica is fetching it right now.
        Raises what the fetch raises; nothing is stored then.
        """
        cached = await self._get(key, endpoint)
        if unless_fresh and cached is not None and cached.is_fresh(self.now()):
            return None
        if self._fetches.running(key) or self._refreshes.running(key):
            return None
        entry, _ = await self._refreshes.run(
            key, lambda: self._refresh_once(key, endpoint, fetch, raise_errors=True)
        )
        if entry is None:
            return None
        return Served(entry, entry.age(self.now()), stale=False)

    # -- Fetching --------------------------------------------------------------------------

    async def _fetch_once(
        self, key: str, endpoint: str, fetch: Fetch, seen: CacheEntry | None
    ) -> CacheEntry:
        """The one fetch of this process for `key`; on a shared store, at most one across all."""
        if not self.store.shared:
            return await self._fetch_and_store(key, endpoint, fetch)
        deadline = self.now() + self._lock_ttl
        while True:
            token = await self._lock(key, endpoint)
            if token is None:  # another replica fetches: wait for what it stores
                found = await self._wait_for_newer(key, endpoint, seen, deadline)
                if found is not None:
                    self.metrics.count(endpoint, CacheEvent.COALESCED)
                    return found
                if self.now() < deadline:
                    continue  # its lock went without a result: take the lock ourselves
                return await self._fetch_and_store(key, endpoint, fetch)
            try:
                if token:  # the store answered: it may hold what another replica just stored
                    latest = await self._get(key, endpoint)
                    if latest is not None and _newer(latest, seen) and latest.is_fresh(self.now()):
                        return latest
                return await self._fetch_holding(key, endpoint, fetch, token)
            finally:
                await self._unlock(key, token, endpoint)

    async def _refresh_once(
        self, key: str, endpoint: str, fetch: Fetch, *, raise_errors: bool
    ) -> CacheEntry | None:
        """One refresh: None if another replica holds the key's lock (it refreshes it)."""
        token = await self._lock(key, endpoint)
        if token is None:
            return None
        try:
            return await self._fetch_holding(key, endpoint, fetch, token)
        except Exception as error:
            if raise_errors:
                raise
            self._back_off(key, error)
            return None
        finally:
            await self._unlock(key, token, endpoint)

    def _refresh_in_background(
        self, key: str, endpoint: str, fetch: Fetch, cached: CacheEntry
    ) -> None:
        if self._refreshes.running(key) or self._fetches.running(key):
            return
        if self.now() < self._refresh_after.get(key, 0.0):
            return  # the last refresh was refused or failed: wait out its delay
        self._refreshes.start(
            key, lambda: self._refresh_once(key, endpoint, fetch, raise_errors=False)
        )

    async def _fetch_holding(self, key: str, endpoint: str, fetch: Fetch, token: str) -> CacheEntry:
        """_fetch_and_store, renewing the key's lock while it runs.

        A fetch may outlast the lock's TTL (queued for a permit at a hot fixture's kick-off,
        or a slow upstream): an expired lock would let another replica fetch the same entry
        under a second permit. The TTL still frees the lock of a replica that dies.
        """
        if not token or not self.store.shared:  # no lock to keep: store down, or one process
            return await self._fetch_and_store(key, endpoint, fetch)
        keeper = asyncio.create_task(self._keep_lock(key, token))
        try:
            return await self._fetch_and_store(key, endpoint, fetch)
        finally:
            keeper.cancel()

    async def _keep_lock(self, key: str, token: str) -> None:
        """Renew the lock every third of its TTL until cancelled, lost, or the store fails."""
        while True:
            await asyncio.sleep(self._lock_ttl / 3)
            try:
                if not await self.store.extend(key, token, self._lock_ttl):
                    return  # not ours any more: nothing to keep
            except CacheUnavailable:
                return  # the TTL ends it; the fetch goes on and the read never fails

    async def _fetch_and_store(self, key: str, endpoint: str, fetch: Fetch) -> CacheEntry:
        try:
            fetched = await fetch()
        except Exception:
            self.metrics.count(endpoint, CacheEvent.REFRESH_FAILURE)
            raise
        freshness = fetched.freshness
        entry = CacheEntry(fetched.body, self.now(), freshness.fresh_for, freshness.max_stale)
        self.metrics.count(endpoint, CacheEvent.REFRESH)
        self._refresh_after.pop(key, None)
        await self._put(key, entry, endpoint)
        return entry

    def _back_off(self, key: str, error: Exception) -> None:
        delay = getattr(error, "retry_after", None)
        if not isinstance(delay, int | float) or delay <= 0:
            delay = self._refresh_backoff
        if len(self._refresh_after) >= _MAX_BACKOFFS:
            self._refresh_after.clear()  # a bound, not a policy: forgetting only retries sooner
        self._refresh_after[key] = self.now() + float(delay)
        logger.info(
            "odds cache refresh of %s failed, serving stale for now: %s",
            key,
            error,
            extra={"event": "cache_refresh_failed"},
        )

    async def _wait_for_newer(
        self, key: str, endpoint: str, seen: CacheEntry | None, deadline: float
    ) -> CacheEntry | None:
        """An entry newer than `seen`, once another replica stores it; None once its lock is
        gone without one (its fetch failed), at the deadline, or when the store fails."""
        while self.now() < deadline:
            await asyncio.sleep(self._poll_every)
            latest = await self._get(key, endpoint)
            if latest is not None and _newer(latest, seen):
                return latest
            try:
                if not await self.store.is_locked(key):
                    return None
            except CacheUnavailable as error:
                self._store_failed(error, endpoint)
                return None
        return None

    # -- The store, never failing a read ---------------------------------------------------

    def _store_failed(self, error: CacheUnavailable, endpoint: str) -> None:
        self.metrics.count(endpoint, CacheEvent.CACHE_ERROR)
        self.outage.failed(error)

    async def _get(self, key: str, endpoint: str) -> CacheEntry | None:
        if self.outage.should_skip():
            return None
        try:
            # Concurrent reads of one key share one GET: a burst costs the store one round trip.
            entry, _ = await self._gets.run(key, lambda: self.store.get(key))
        except CacheUnavailable as error:
            self._store_failed(error, endpoint)
            return None
        self.outage.succeeded()
        return entry

    async def _put(self, key: str, entry: CacheEntry, endpoint: str) -> None:
        if self.outage.should_skip():
            return
        try:
            await self.store.put(key, entry)
        except CacheUnavailable as error:
            self._store_failed(error, endpoint)

    async def _lock(self, key: str, endpoint: str) -> str | None:
        """The lock's token; "" when the store is down (so the caller fetches on its own)."""
        if self.outage.should_skip():
            return ""
        try:
            return await self.store.lock(key, self._lock_ttl)
        except CacheUnavailable as error:
            self._store_failed(error, endpoint)
            return ""

    async def _unlock(self, key: str, token: str, endpoint: str) -> None:
        if not token:
            return
        try:
            await self.store.unlock(key, token)
        except CacheUnavailable as error:
            self._store_failed(error, endpoint)  # the lock's TTL ends it


def _newer(entry: CacheEntry, than: CacheEntry | None) -> bool:
    return than is None or entry.fetched_at > than.fetched_at
