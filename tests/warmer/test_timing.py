"""The scheduler on virtual time: warming starts exactly `lead` before kick-off, follows a
reschedule, stops on cancellation or completion, and keeps within its share of the budget."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from hotspot_warmer.warming import WarmingState
from tests.warmer.conftest import KICKOFF, SUPER_BOWL, MakeWarmerRig, super_bowl

# gRPC answers on its own thread, which looptime cannot see: enough no-op cycles between time
# jumps let an answer on loopback arrive before the clock moves on.
pytestmark = pytest.mark.looptime(noop_cycles=3000)

LEAD = 15 * 60


async def test_warming_starts_exactly_fifteen_minutes_before_kickoff(
    make_warmer_rig: MakeWarmerRig,
) -> None:
    rig = await make_warmer_rig()
    rig.list_fixtures(super_bowl())
    task = asyncio.create_task(rig.scheduler.run())
    await asyncio.sleep(20 * 60)  # to kick-off minus 10 min
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert rig.calls, "no warming call was made"
    assert rig.calls[0] == pytest.approx(KICKOFF.timestamp() - LEAD, abs=1e-3)
    warming = rig.scheduler.warmings[SUPER_BOWL]
    assert warming.rule == "super-bowl"
    assert warming.warm_from == KICKOFF - timedelta(seconds=LEAD)


async def test_a_reschedule_moves_the_warming_and_cancellation_stops_it(
    make_warmer_rig: MakeWarmerRig,
) -> None:
    rig = await make_warmer_rig()
    rig.list_fixtures(super_bowl())
    task = asyncio.create_task(rig.scheduler.run())
    await asyncio.sleep(10 * 60)  # kick-off minus 20 min: scheduled, not started
    later = KICKOFF + timedelta(minutes=45)
    rig.list_fixtures(super_bowl(start_date=later.isoformat()))
    await asyncio.sleep(60 * 60)  # past the old kick-off, to the new one minus 5 min
    assert rig.calls, "the rescheduled warming never started"
    assert rig.calls[0] == pytest.approx(later.timestamp() - LEAD, abs=1e-3)
    rig.list_fixtures(super_bowl(start_date=later.isoformat(), status="cancelled"))
    cancelled_at = rig.clock.timestamp()
    await asyncio.sleep(30 * 60)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    after = [c for c in rig.calls if c > cancelled_at + 60]  # the next poll sees it
    assert after == []
    assert rig.scheduler.warmings[SUPER_BOWL].state is WarmingState.CANCELLED


async def test_warming_stops_when_the_game_is_completed(make_warmer_rig: MakeWarmerRig) -> None:
    rig = await make_warmer_rig()
    rig.list_fixtures(super_bowl())
    task = asyncio.create_task(rig.scheduler.run())
    await asyncio.sleep(30 * 60)
    rig.list_fixtures(super_bowl(status="live"))
    await asyncio.sleep(5 * 60)
    rig.list_fixtures(super_bowl(status="completed"))
    completed_at = rig.clock.timestamp()
    await asyncio.sleep(10 * 60)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [c for c in rig.calls if c > completed_at + 60] == []
    assert rig.scheduler.warmings[SUPER_BOWL].state is WarmingState.ENDED


async def test_the_cadence_keeps_within_its_share_of_the_budget(
    make_warmer_rig: MakeWarmerRig,
) -> None:
    rig = await make_warmer_rig()
    rig.list_fixtures(super_bowl(status="live"))  # live odds: fresh for 3 s, so every tick calls
    task = asyncio.create_task(rig.scheduler.run())
    await asyncio.sleep(30 * 60 + 5 * 60)  # 5 minutes of warming a live game
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    budget = 0.2 * 50  # calls per 60 s window
    assert rig.calls_in_any_window(60.0) <= budget
    assert rig.calls_in_any_window(60.0) >= budget - 1  # and it does use its share
    assert len(rig.calls) >= 5 * budget - 1


async def test_each_poll_puts_the_schedule_on_the_permit_servers_warming_board(
    make_warmer_rig: MakeWarmerRig,
) -> None:
    from hotspot.v1 import permits_pb2 as pb
    from hotspot.v1 import permits_pb2_grpc

    # On the permit server's own wall clock: it lists only warmings that have not ended.
    now = datetime.now(UTC)
    kickoff = now + timedelta(minutes=30)
    rig = await make_warmer_rig(start=now)
    rig.scheduler.announcer = "warmer-test"
    rig.list_fixtures(super_bowl(start_date=kickoff.isoformat()))
    task = asyncio.create_task(rig.scheduler.run())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rig.permit_server.port}") as channel:
        stub = permits_pb2_grpc.PermitServiceStub(channel)

        async def board() -> list[tuple[str, str, float]]:
            answer = await stub.Stats(pb.StatsRequest())
            return [
                (w.fixture_id, w.rule, w.starts_at.ToMicroseconds() / 1e6)
                for w in answer.scheduled_warmings
            ]

        await asyncio.sleep(1)  # the first poll: scheduled, a quarter of an hour ahead
        [(fixture_id, rule, starts_at)] = await board()
        assert (fixture_id, rule) == (SUPER_BOWL, "super-bowl")
        assert starts_at == pytest.approx((kickoff - timedelta(minutes=15)).timestamp())
        rig.list_fixtures(super_bowl(start_date=kickoff.isoformat(), status="cancelled"))
        await asyncio.sleep(61)  # the next poll announces a schedule without it
        assert await board() == []
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert rig.scheduler.announce_errors == 0
