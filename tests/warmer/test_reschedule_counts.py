"""A reschedule while warming keeps what the warming counted: its refresh counts (exported as
Prometheus counters, which must never go down) and its calls in the window (budget used)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from hotspot_warmer.metrics import WarmerCollector
from hotspot_warmer.warming import RefreshResult
from tests.warmer.conftest import KICKOFF, SUPER_BOWL, MakeWarmerRig, super_bowl

pytestmark = pytest.mark.looptime(noop_cycles=3000)


def refreshed_total(collector: WarmerCollector) -> float:
    for family in collector.collect():
        if family.name == "hotspot_warmer_refreshes":
            return sum(s.value for s in family.samples if s.labels["result"] == "refreshed")
    raise AssertionError("no hotspot_warmer_refreshes series")


async def test_a_reschedule_while_warming_keeps_the_counts(make_warmer_rig: MakeWarmerRig) -> None:
    # Never fresh: every refresh reaches the upstream, so the counts move at each one.
    rig = await make_warmer_rig(pregame_fresh=0.0, live_fresh=0.0)
    collector = WarmerCollector(rig.scheduler)
    rig.list_fixtures(super_bowl())
    task = asyncio.create_task(rig.scheduler.run())
    await asyncio.sleep(20 * 60)  # five minutes into the warming
    before = refreshed_total(collector)
    calls_before = rig.scheduler.warmings[SUPER_BOWL].calls_in_window(rig.clock.timestamp(), 60.0)
    assert before >= 25  # of 50 at most
    assert calls_before >= 5  # of 10 allowed (under load a refusal or two can slip in)

    later = KICKOFF + timedelta(minutes=10)  # kick-off moves while the warming runs
    rig.list_fixtures(super_bowl(start_date=later.isoformat()))
    await asyncio.sleep(61)  # the next poll follows it
    warming = rig.scheduler.warmings[SUPER_BOWL]
    assert warming.start_date == later
    after = refreshed_total(collector)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert after >= before, "a Prometheus counter went down"
    assert warming.counts[RefreshResult.REFRESHED] == after
    assert warming.calls_in_window(rig.clock.timestamp(), 60.0) > 0  # budget used, not reset
