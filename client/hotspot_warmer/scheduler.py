"""WarmingScheduler: poll /fixtures, classify, and run a PrefetchJob per major fixture.

It follows what each poll says: a new start_date reschedules the warming, a
completed or cancelled fixture stops it, and a game with no final status stops
`max_game_length` after kick-off. /fixtures is not fixture-specific: it takes no permit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence
from datetime import timedelta

from hotspot_client.errors import PermitError
from hotspot_client.optic_odds import Fixture, OpticOddsClient, OpticOddsError
from hotspot_core.warming_board import MAX_TTL, ScheduledWarming
from hotspot_warmer.config import WarmerConfig
from hotspot_warmer.leases import FixtureLeases, LocalLeases
from hotspot_warmer.prefetch import PrefetchJob
from hotspot_warmer.rules import classify
from hotspot_warmer.utc_clock import UtcClock
from hotspot_warmer.warming import Warming, WarmingState, warming_for

logger = logging.getLogger("hotspot.warmer")

FINAL = {"completed": WarmingState.ENDED, "cancelled": WarmingState.CANCELLED}
MAX_PAGES = 50
"""Pages of /fixtures read per poll at most (100 fixtures each)."""
IDS_PER_CALL = 50


class WarmingScheduler:
    def __init__(
        self,
        odds: OpticOddsClient,
        config: WarmerConfig,
        clock: UtcClock,
        leases: FixtureLeases | None = None,
        announcer: str | None = None,
    ) -> None:
        """`announcer`: the name under which each poll puts the schedule on the permit
        service's warming board (AnnounceWarmings); None announces nothing."""
        self.odds = odds
        self.config = config
        self.clock = clock
        self.leases = leases or LocalLeases()
        self.warmings: dict[str, Warming] = {}
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self.polls = 0
        self.poll_errors = 0
        self.announcer = announcer
        self.announce_errors = 0

    async def run(self) -> None:
        """Poll every `poll_every` until cancelled; a failed poll is logged and counted."""
        try:
            while True:
                try:
                    await self.poll()
                except OpticOddsError as error:
                    self.poll_errors += 1
                    logger.warning("polling /fixtures failed: %s", error)
                await self.announce()
                await asyncio.sleep(self.config.warming.poll_every)
        finally:
            await self.stop()
            if self.announcer is not None:
                with contextlib.suppress(PermitError):  # else it lapses after its ttl
                    await self.odds.permits.announce_warmings([], announcer=self.announcer)

    async def stop(self) -> None:
        jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        self._jobs.clear()

    async def poll(self) -> None:
        settings = self.config.warming
        now = self.clock.now()
        fixtures = await self._listed(
            start_date_after=now - timedelta(seconds=settings.max_game_length),
            start_date_before=now + timedelta(seconds=settings.lookahead),
        )
        seen = {f.id for f in fixtures}
        # Warmings the window no longer lists (rescheduled far away): asked for by id.
        followed = [fid for fid, w in self.warmings.items() if fid not in seen and not _over(w)]
        for i in range(0, len(followed), IDS_PER_CALL):
            page = await self.odds.fixtures(fixture_ids=followed[i : i + IDS_PER_CALL])
            fixtures.extend(page.data)
        for fixture in fixtures:
            self.consider(fixture)
        self.polls += 1

    async def _listed(self, **window: object) -> list[Fixture]:
        fixtures: list[Fixture] = []
        for page in range(1, MAX_PAGES + 1):
            answer = await self.odds.fixtures(page=page, **window)  # type: ignore[arg-type]
            fixtures.extend(answer.data)
            if not answer.has_more:
                break
        return fixtures

    def consider(self, fixture: Fixture) -> None:
        """Start, move or stop the fixture's warming after what the latest poll says."""
        settings = self.config.warming
        decision = classify(fixture, self.config.rules)
        warming = self.warmings.get(fixture.id)
        final = FINAL.get(fixture.status or "")
        if warming is not None and _over(warming):
            return
        if warming is not None and (final is not None or not decision.major):
            self._end(warming, final or WarmingState.CANCELLED)
            return
        if not decision.major or final is not None or fixture.start_date is None:
            return
        assert decision.rule is not None
        if warming is not None and warming.start_date == fixture.start_date:
            return
        if warming is not None:
            logger.info(
                "fixture %s rescheduled: %s -> %s",
                fixture.id,
                warming.start_date,
                fixture.start_date,
            )
            self._cancel_job(fixture.id)
        fresh = warming_for(
            fixture.id,
            decision.rule.name,
            fixture.start_date,
            settings.lead,
            settings.max_game_length,
        )
        if warming is not None:  # what it counted carries over: /metrics counters never go down
            fresh.counts, fresh.calls = warming.counts, warming.calls
            fresh.last_run, fresh.last_result = warming.last_run, warming.last_result
        if self.clock.now() >= fresh.warm_until:
            return
        self.warmings[fixture.id] = fresh
        job = PrefetchJob(fresh, self.odds, settings, self.clock, self.leases)
        task = asyncio.create_task(job.run(), name=f"warm-{fixture.id}")
        self._jobs[fixture.id] = task
        task.add_done_callback(functools.partial(self._job_done, fixture.id))
        logger.info("warming %s (rule %s) from %s", fixture.id, decision.rule.name, fresh.warm_from)

    def _end(self, warming: Warming, state: WarmingState) -> None:
        self._cancel_job(warming.fixture_id)
        warming.state = state
        warming.next_run = None
        logger.info("warming of %s %s", warming.fixture_id, state.value)

    def _cancel_job(self, fixture_id: str) -> None:
        job = self._jobs.pop(fixture_id, None)
        if job is not None:
            job.cancel()

    def _job_done(self, fixture_id: str, task: asyncio.Task[None]) -> None:
        if self._jobs.get(fixture_id) is task:
            del self._jobs[fixture_id]
        if not task.cancelled() and task.exception() is not None:
            logger.error("warming job of %s ended: %r", fixture_id, task.exception())

    async def announce(self) -> None:
        """Put every warming not over on the permit service's board; it lapses after three
        polls unless announced again, so a warmer that dies drops off by itself."""
        if self.announcer is None:
            return
        schedule = [
            ScheduledWarming(
                w.fixture_id,
                w.rule,
                w.warm_from.timestamp(),
                w.start_date.timestamp(),
                w.warm_until.timestamp(),
            )
            for w in self.warmings.values()
            if not _over(w)
        ]
        ttl = min(MAX_TTL, max(60.0, 3 * self.config.warming.poll_every))
        try:
            await self.odds.permits.announce_warmings(schedule, announcer=self.announcer, ttl=ttl)
        except PermitError as error:
            self.announce_errors += 1
            logger.warning("announcing the warmings to the permit service failed: %s", error)

    def running(self) -> Sequence[Warming]:
        return [w for w in self.warmings.values() if w.state is WarmingState.RUNNING]


def _over(warming: Warming) -> bool:
    return warming.state in (WarmingState.ENDED, WarmingState.CANCELLED)
