"""PrefetchJob: from warm_from until the game ends, refresh one fixture's odds into the cache."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from hotspot_client import PermitError, RateLimitExceeded
from hotspot_client.optic_odds import (
    OpticOddsClient,
    OpticOddsError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnreachable,
)
from hotspot_warmer.config import WarmingSettings
from hotspot_warmer.leases import FixtureLeases
from hotspot_warmer.utc_clock import UtcClock
from hotspot_warmer.warming import RefreshResult, Warming, WarmingState

logger = logging.getLogger("hotspot.warmer")

MAX_BACKOFF_WINDOWS = 5
"""Failures back off exponentially up to this many windows between tries."""


class PrefetchJob:
    """Each refresh takes a permit only if a slot is free now (max_wait=0): grants are FIFO
    with no barging, so warming never delays a queued user. Refreshes are spaced so that the
    fixture's calls stay within `budget_share` of its limit per window; a refusal waits out
    its retry-after, and failures back off. Nothing here raises out of `run`."""

    def __init__(
        self,
        warming: Warming,
        odds: OpticOddsClient,
        settings: WarmingSettings,
        clock: UtcClock,
        leases: FixtureLeases,
    ) -> None:
        self.warming = warming
        self._odds = odds
        self._settings = settings
        self._clock = clock
        self._leases = leases
        self._failures_in_row = 0

    async def run(self) -> None:
        w = self.warming
        w.next_run = w.warm_from
        await self._clock.sleep_until(w.warm_from)
        w.state = WarmingState.RUNNING
        try:
            while self._clock.now() < w.warm_until:
                delay = await self._tick_safely()
                w.next_run = self._clock.now() + timedelta(seconds=delay)
                await asyncio.sleep(delay)
            w.state = WarmingState.ENDED
            w.next_run = None
        finally:
            await self._leases.release(w.fixture_id)

    async def _tick_safely(self) -> float:
        try:
            return await self.tick()
        except Exception as error:  # a warmer that crashes warms nothing: log, back off, go on
            logger.exception("warming %s failed unexpectedly", self.warming.fixture_id)
            return self._failed(str(error) or type(error).__name__)

    async def tick(self) -> float:
        """One refresh of every sportsbook batch; the seconds until the next."""
        settings, w = self._settings, self.warming
        every = settings.refresh_every
        now = self._clock.now()
        if not await self._leases.hold(w.fixture_id, ttl=3 * every):
            w.record(RefreshResult.NOT_LEASED, now)
            return every
        for books in settings.sportsbook_batches:
            try:
                served = await self._odds.refresh_fixture_odds(
                    w.fixture_id, books, settings.markets or None, max_wait=0
                )
            except RateLimitExceeded as refused:
                w.record(
                    RefreshResult.REFUSED,
                    now,
                    f"{refused.reason}, retry in {refused.retry_after:.1f}s",
                )
                return max(every, refused.retry_after)
            except UpstreamRateLimited as limited:
                self._call_made()  # it reached the upstream, and counts there
                w.record(
                    RefreshResult.REFUSED, now, f"upstream 429, retry in {limited.retry_after}s"
                )
                return max(every, limited.retry_after or settings.window)
            except (PermitError, OpticOddsError) as error:
                if isinstance(error, UpstreamError) and not isinstance(error, UpstreamUnreachable):
                    self._call_made()  # sent: the upstream counted it
                return self._failed(str(error))
            if served is None:
                w.record(RefreshResult.SKIPPED, now)
                continue
            self._call_made()
            w.record(RefreshResult.REFRESHED, now)
        self._failures_in_row = 0
        return every

    def _call_made(self) -> None:
        self.warming.record_call(self._clock.timestamp(), self._settings.window)

    def _failed(self, why: str) -> float:
        self._failures_in_row += 1
        self.warming.record(RefreshResult.FAILED, self._clock.now(), why)
        backoff = self._settings.refresh_every * 2.0 ** (self._failures_in_row - 1)
        return min(backoff, MAX_BACKOFF_WINDOWS * self._settings.window)
