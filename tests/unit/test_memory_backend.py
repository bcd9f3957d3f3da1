"""The core's semantics on virtual time (looptime): windows, queues, deadlines, leases, alerts."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from hotspot_core.alerts import Alert, AlertState
from hotspot_core.clock import LoopClock, Timer
from hotspot_core.errors import (
    CallerQueueFull,
    InvalidArgument,
    InvalidFixtureId,
    PermitNotFound,
    QueueFull,
    ShuttingDown,
    StoreUnavailable,
    TooManyFixtures,
    WaitTooLong,
)
from hotspot_core.grants import Grant, Outcome
from hotspot_core.leases import LeaseBook
from hotspot_core.memory import MemoryBackend
from hotspot_core.persistence import FixtureRecord
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsView
from tests.unit.core_helpers import (
    CountingClock,
    VirtualWallClock,
    backend,
    now,
    settle,
    spawn,
)

pytestmark = pytest.mark.looptime


async def fill(b: MemoryBackend, fixture_id: str, n: int) -> list[str]:
    """n permits granted and still in flight: each holds its slot until its release."""
    return [(await b.acquire(fixture_id)).permit_id for _ in range(n)]


async def used(b: MemoryBackend, fixture_id: str, n: int = 1, **kw: float | str) -> list[str]:
    """n calls made and over at once: each leaves the window one window after its grant."""
    permits = [(await b.acquire(fixture_id, **kw)).permit_id for _ in range(n)]  # type: ignore[arg-type]
    for permit in permits:
        await b.release(permit, caller=str(kw.get("caller", "")))
    return permits


def spawn_used(b: MemoryBackend, fixture_id: str, **kw: float) -> asyncio.Task[Grant]:
    """A caller that waits for its grant, makes its call at once and releases."""

    async def call() -> Grant:
        grant = await b.acquire(fixture_id, **kw)  # type: ignore[arg-type]
        await b.release(grant.permit_id)
        return grant

    return asyncio.create_task(call())


async def fixture_row(b: MemoryBackend, fixture_id: str):  # type: ignore[no-untyped-def]
    return (await b.stats(StatsView(fixture_ids=(fixture_id,)))).fixtures[0]


# -- Window ---------------------------------------------------------------------------------


async def test_grants_limit_at_once_then_queues_until_the_oldest_leaves() -> None:
    b = backend(limit=50, window=60)
    t0 = now()
    grants = [await b.acquire("f1") for _ in range(50)]
    assert [g.remaining for g in grants[:3]] == [49, 48, 47]
    assert grants[-1].remaining == 0
    assert all(g.queue_position == 0 and g.waited == 0 for g in grants)
    for g in grants:  # every call is over at once: each leaves one window after its grant
        await b.release(g.permit_id)

    late = spawn(b, "f1")
    await asyncio.sleep(59.999)
    assert not late.done()
    grant = await late
    assert now() - t0 == pytest.approx(60)
    assert grant.queue_position == 1
    assert grant.waited == pytest.approx(60)


async def test_window_slides_rather_than_resetting() -> None:
    b = backend(limit=2, window=10)
    await used(b, "f")
    await asyncio.sleep(6)
    await used(b, "f")
    await asyncio.sleep(5)  # t=11: the first grant left, the second (t=6) is still in
    await used(b, "f")
    t = now()
    third = spawn(b, "f")
    grant = await third
    assert now() - t == pytest.approx(5)  # frees when the t=6 grant leaves at t=16
    assert grant.remaining == 0


# -- Queue ----------------------------------------------------------------------------------


async def test_waiters_are_granted_in_arrival_order() -> None:
    b = backend(limit=3, window=10, queue=10)
    await used(b, "f", 3)
    order: list[int] = []

    async def wait(i: int) -> None:
        await b.release((await b.acquire("f")).permit_id)
        order.append(i)

    tasks = [asyncio.create_task(wait(i)) for i in range(7)]
    await asyncio.gather(*tasks)
    assert order == list(range(7))


async def test_no_barging_at_the_instant_a_slot_frees() -> None:
    b = backend(limit=1, window=10, queue=5)
    await used(b, "f")
    waiter = spawn_used(b, "f")
    await settle()
    await asyncio.sleep(10)  # the slot frees now; a newcomer arriving at this instant waits behind
    newcomer = spawn(b, "f")
    first = await waiter
    assert first.queue_position == 1
    second = await newcomer
    assert second.granted_at - first.granted_at == pytest.approx(10)


async def test_newcomer_queues_behind_waiters_even_when_a_refund_frees_a_slot() -> None:
    b = backend(limit=2, window=10, queue=5)
    a, _ = await fill(b, "f", 2)
    waiter = spawn(b, "f")
    await settle()
    await b.release(a, Outcome.NOT_SENT)
    newcomer = spawn(b, "f")
    assert (await waiter).queue_position == 1
    await settle()
    assert not newcomer.done()  # the refunded slot went to the waiter
    newcomer.cancel()


async def test_queue_depth_never_exceeds_capacity_and_overflow_is_refused_at_once() -> None:
    b = backend(limit=50, window=60, queue=100)
    tasks = [spawn(b, "hot") for _ in range(1000)]
    await settle()
    done = [t for t in tasks if t.done()]
    granted = [t for t in done if t.exception() is None]
    refused = [t for t in done if isinstance(t.exception(), QueueFull)]
    assert len(granted) == 50
    assert len(refused) == 850
    row = await fixture_row(b, "hot")
    assert row.queue_depth == 100
    assert row.rejected_total == 850
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert (await fixture_row(b, "hot")).queue_depth == 0


async def test_queue_full_reports_when_the_head_is_granted_and_the_unbounded_wait() -> None:
    b = backend(limit=2, window=10, queue=3)
    await used(b, "f", 2)  # holds seen so far: 0 s, so the forecast expects calls over at once
    await asyncio.sleep(4)  # grants leave at t=10
    waiters = [spawn(b, "f") for _ in range(3)]
    await settle()
    with pytest.raises(QueueFull) as info:
        await b.acquire("f")
    error = info.value
    assert error.retry_after == pytest.approx(6)  # the head is granted at t=10
    # Unbounded, the 4th in line would be the 2nd grant of the following window: t=20.
    assert error.estimated_wait == pytest.approx(16)
    assert error.queue_depth == 3
    assert error.limit == 2
    assert error.fixture_id == "f"
    assert "queue of 3 is full" in str(error)

    await asyncio.sleep(error.retry_after)
    retried = spawn(b, "f")  # with no other traffic, a retry after retry_after is admitted
    await settle()
    assert not retried.done()
    assert sum(w.done() for w in waiters) == 2  # at t=10 both slots went to the queue's head
    assert (await fixture_row(b, "f")).queue_depth == 2
    for t in [*waiters, retried]:
        t.cancel()


async def test_queue_capacity_zero_never_queues() -> None:
    b = backend(limit=1, window=10, queue=0)
    await used(b, "f")
    with pytest.raises(QueueFull) as info:
        await b.acquire("f")
    assert info.value.retry_after == pytest.approx(10)


# -- Deadlines and cancellation -------------------------------------------------------------


async def test_budget_shorter_than_the_estimate_is_refused_at_once_without_queueing() -> None:
    b = backend(limit=1, window=10, queue=5)
    await used(b, "f")
    await asyncio.sleep(2)
    with pytest.raises(WaitTooLong) as info:
        await b.acquire("f", budget=5)
    assert info.value.estimated_wait == pytest.approx(8)
    assert info.value.retry_after == pytest.approx(3)  # then the wait (5s) fits the budget
    assert (await fixture_row(b, "f")).queue_depth == 0
    assert (await fixture_row(b, "f")).rejected_total == 1

    await asyncio.sleep(info.value.retry_after)
    grant = await b.acquire("f", budget=5)
    assert grant.waited == pytest.approx(5)


async def test_zero_budget_never_queues() -> None:
    b = backend(limit=1, window=10)
    await used(b, "f", budget=0)
    with pytest.raises(WaitTooLong):
        await b.acquire("f", budget=0)


async def test_budget_equal_to_the_estimate_is_admitted() -> None:
    b = backend(limit=1, window=10)
    await used(b, "f")
    grant = await b.acquire("f", budget=10)
    assert grant.waited == pytest.approx(10)


async def test_server_max_wait_caps_every_budget() -> None:
    b = backend(limit=1, window=10, max_wait=5)
    await used(b, "f")
    with pytest.raises(WaitTooLong):
        await b.acquire("f")


async def test_cancelled_waiter_leaves_at_once_and_spends_no_grant() -> None:
    b = backend(limit=1, window=10, queue=5)
    await used(b, "f")
    first, second = spawn(b, "f"), spawn(b, "f")
    await settle()
    assert (await fixture_row(b, "f")).queue_depth == 2
    first.cancel()
    await settle()
    assert (await fixture_row(b, "f")).queue_depth == 1
    grant = await second
    assert grant.waited == pytest.approx(10)  # took the slot the cancelled waiter would have had
    assert grant.queue_position == 2
    row = await fixture_row(b, "f")
    assert row.calls_total == 2


async def test_deadline_passing_in_the_queue_leaves_it() -> None:
    b = backend(limit=1, window=10, queue=5)
    await used(b, "f")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(b.acquire("f"), timeout=3)
    assert (await fixture_row(b, "f")).queue_depth == 0


async def test_grant_racing_a_cancellation_goes_to_the_next_waiter() -> None:
    b = backend(limit=1, window=10, queue=5)
    permit = (await b.acquire("f")).permit_id
    first, second = spawn(b, "f"), spawn(b, "f")
    await settle()
    t = now()
    await b.release(permit, Outcome.NOT_SENT)  # grants `first` synchronously...
    first.cancel()  # ...and its caller leaves before it could see the grant
    grant = await second
    assert (now(), grant.waited, grant.queue_position) == (t, 0, 2)
    with pytest.raises(asyncio.CancelledError):
        await first
    row = await fixture_row(b, "f")
    assert (row.calls_in_window, row.in_flight, row.queue_depth) == (1, 1, 0)


async def test_one_timer_per_fixture_however_many_wait() -> None:
    clock = CountingClock()
    b = MemoryBackend(PermitPolicy(limit=5, window=10, queue=100), clock)
    await used(b, "f", 5)
    waiters = [spawn_used(b, "f") for _ in range(100)]
    await settle()
    # One for the fixture, one for the whole lease book: none per waiter or per permit.
    assert clock.live_timers() == 2
    await asyncio.sleep(10)
    await settle()
    assert clock.live_timers() == 2
    for t in waiters:
        t.cancel()


# -- Release, refunds, pauses, leases -------------------------------------------------------


async def test_not_sent_refunds_the_grant_and_wakes_the_next_waiter() -> None:
    b = backend(limit=2, window=10, queue=5)
    a, _ = await fill(b, "f", 2)
    waiter = spawn(b, "f")
    await settle()
    t = now()
    assert await b.release(a, Outcome.NOT_SENT) is False
    grant = await waiter
    assert now() == t
    assert grant.waited == 0
    assert (await fixture_row(b, "f")).calls_in_window == 2


@pytest.mark.parametrize(
    "outcome", [Outcome.SUCCESS, Outcome.FAILURE, Outcome.UPSTREAM_RATE_LIMITED]
)
async def test_sent_outcomes_keep_the_call_in_the_window_until_release_plus_window(
    outcome: Outcome,
) -> None:
    b = backend(limit=2, window=10, queue=5)
    a, b_ = await fill(b, "f", 2)
    await asyncio.sleep(7)  # a call in flight since t=0 may reach the upstream only now
    await b.release(a, outcome, 0.0 if outcome is Outcome.UPSTREAM_RATE_LIMITED else None)
    row = await fixture_row(b, "f")
    assert (row.calls_in_window, row.in_flight) == (2, 1)
    await b.release(b_)
    t = now()
    grant = await b.acquire("f")  # not at t=10 (grant + window) but at t=17 (release + window)
    assert now() - t == pytest.approx(10)
    assert grant.queue_position == 1


async def test_releasing_twice_reports_already_released() -> None:
    b = backend()
    (permit,) = await fill(b, "f", 1)
    assert await b.release(permit) is False
    assert await b.release(permit, Outcome.NOT_SENT) is True
    assert (await fixture_row(b, "f")).calls_in_window == 1  # the second release changed nothing


async def test_unknown_permit_is_not_found_and_empty_id_is_invalid() -> None:
    b = backend()
    with pytest.raises(PermitNotFound):
        await b.release("nope")
    with pytest.raises(InvalidArgument, match="permit_id"):
        await b.release("")


async def test_lease_that_ends_unreleased_is_abandoned_then_not_found() -> None:
    b = backend(limit=5, window=60, lease=30)
    (permit,) = await fill(b, "f", 1)
    await asyncio.sleep(30)
    row = await fixture_row(b, "f")
    assert (row.in_flight, row.abandoned_total, row.calls_in_window) == (0, 1, 1)
    assert (await b.stats(StatsView())).totals.abandoned_total == 1
    with pytest.raises(PermitNotFound):
        await b.release(permit)
    # Its call may have reached the upstream until the lease ended: held until lease end + window.
    await asyncio.sleep(59.9)
    assert (await fixture_row(b, "f")).calls_in_window == 1
    await asyncio.sleep(0.1)
    assert (await fixture_row(b, "f")).calls_in_window == 0


async def test_upstream_rate_limited_pauses_the_fixture_and_waiters_keep_their_places() -> None:
    b = backend(limit=2, window=10, queue=5, max_upstream_pause=60)
    a, c = await fill(b, "f", 2)
    await b.release(c)
    first, second = spawn(b, "f"), spawn(b, "f")
    await settle()
    t = now()
    await b.release(a, Outcome.UPSTREAM_RATE_LIMITED, upstream_retry_after=25)
    row = await fixture_row(b, "f")
    assert row.paused_until is not None
    assert row.queue_depth == 2
    g1, g2 = await first, await second
    assert now() - t == pytest.approx(25)  # not at t=10, when the window freed
    assert (g1.queue_position, g2.queue_position) == (1, 2)
    assert (await fixture_row(b, "f")).paused_until is None


async def test_pause_without_retry_after_lasts_one_window_and_refuses_short_budgets() -> None:
    b = backend(limit=5, window=10)
    (permit,) = await fill(b, "f", 1)
    await b.release(permit, Outcome.UPSTREAM_RATE_LIMITED)  # held 0 s: the forecast expects so
    with pytest.raises(WaitTooLong, match="paused") as info:
        await b.acquire("f", budget=3)
    assert info.value.paused_for == pytest.approx(10)
    assert info.value.retry_after == pytest.approx(7)
    t = now()
    await b.acquire("f")
    assert now() - t == pytest.approx(10)


async def test_pause_tells_waiters_it_pushes_past_their_budget_at_once() -> None:
    b = backend(limit=1, window=10, queue=5, max_upstream_pause=60)
    await used(b, "other")  # one release seen: calls are expected to be over at once
    a = (await b.acquire("f")).permit_id
    patient, hurried = spawn(b, "f"), spawn(b, "f", budget=20)
    await settle()
    t = now()
    await b.release(a, Outcome.UPSTREAM_RATE_LIMITED, upstream_retry_after=30)
    with pytest.raises(WaitTooLong):
        await hurried  # its grant moved from t=20 to t=40: told now, not at its deadline
    assert now() == t
    assert (await patient).waited == pytest.approx(30)  # the pause outlasts the window


# -- Input and memory -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "a b", "x" * 129, "é", "a/b", "fixture\n"])
async def test_fixture_id_rule(bad: str) -> None:
    b = backend()
    with pytest.raises(InvalidFixtureId, match=r"1 to 128 characters of \[A-Za-z0-9._:-\]"):
        await b.acquire(bad)
    assert (await b.stats(StatsView())).totals.fixtures_tracked == 0


@pytest.mark.parametrize("good", ["a", "x" * 128, "20260831B2BB37AB", "nba:game-1.2_x"])
async def test_fixture_ids_that_follow_the_rule(good: str) -> None:
    assert (await backend().acquire(good)).fixture_id == good


async def test_negative_budget_and_long_client_id_are_invalid() -> None:
    b = backend()
    with pytest.raises(InvalidArgument, match="max_wait"):
        await b.acquire("f", budget=-1)
    with pytest.raises(InvalidArgument, match="client_id"):
        await b.acquire("f", client_id="c" * 129)


async def test_idle_fixture_is_forgotten() -> None:
    b = backend(limit=5, window=10)
    permits = await fill(b, "f", 3)
    for p in permits:
        await b.release(p)
    assert (await b.stats(StatsView())).totals.fixtures_tracked == 1
    await asyncio.sleep(10)
    assert (await b.stats(StatsView())).totals.fixtures_tracked == 0


async def test_fixture_with_a_live_lease_or_pause_is_remembered() -> None:
    b = backend(limit=5, window=10, lease=30, max_upstream_pause=60)
    await fill(b, "held", 1)
    (p,) = await fill(b, "paused", 1)
    await b.release(p, Outcome.UPSTREAM_RATE_LIMITED, upstream_retry_after=20)
    await asyncio.sleep(15)
    snapshot = await b.stats(StatsView())
    assert {r.fixture_id for r in snapshot.fixtures} == {"held", "paused"}
    await asyncio.sleep(16)  # "paused" forgotten at t=20; "held" abandoned at t=30, in until t=40
    assert [r.fixture_id for r in (await b.stats(StatsView())).fixtures] == ["held"]
    await asyncio.sleep(10)
    assert (await b.stats(StatsView())).totals.fixtures_tracked == 0


async def test_max_fixtures_caps_tracking() -> None:
    b = backend(max_fixtures=2)
    await b.acquire("a")
    await b.acquire("b")
    with pytest.raises(TooManyFixtures):
        await b.acquire("c")
    await b.acquire("a")  # a tracked fixture is still served


# -- Alerts ---------------------------------------------------------------------------------


async def test_alert_raised_at_40_cleared_below_35_with_one_log_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    b = backend(limit=50, window=60)
    events: list[Alert] = []
    b.subscribe_alerts(events.append)
    caplog.set_level(logging.WARNING, "hotspot.alerts")
    await used(b, "f", 39)
    assert events == []
    await asyncio.sleep(1)
    await used(b, "f", 1)
    await asyncio.sleep(0)  # listeners are told in the next loop step, after the Acquire
    assert [(e.state, e.calls_in_window, e.threshold) for e in events] == [
        (AlertState.RAISED, 40, 40)
    ]
    assert (await fixture_row(b, "f")).hot
    await used(b, "f", 5)
    assert len(events) == 1  # still hot, nothing new
    # At t=60 the first 39 leave: 6 remain, below 35; the fixture's timer notices with no traffic.
    await asyncio.sleep(59)
    assert [e.state for e in events] == [AlertState.RAISED, AlertState.CLEARED]
    assert events[1].calls_in_window < 35
    assert not (await fixture_row(b, "f")).hot
    records = [r for r in caplog.records if r.name == "hotspot.alerts"]
    assert [getattr(r, "event", None) for r in records] == ["alert_raised", "alert_cleared"]


async def test_alert_does_not_flap_when_hovering_at_the_threshold() -> None:
    b = backend(limit=50, window=60, lease=1)
    events: list[Alert] = []
    b.subscribe_alerts(events.append)
    pattern = [1, 2, 0, 1, 1, 0, 2, 1]  # one grant per 1.5 s on average: 40 in the window
    seen: list[int] = []
    for step in range(400):
        await used(b, "f", pattern[step % len(pattern)])
        await asyncio.sleep(1.5)
        if step >= 60:  # after one full window of ramp-up
            seen.append((await fixture_row(b, "f")).calls_in_window)
    assert min(seen) < 40 <= max(seen)  # it really hovered across the threshold
    assert min(seen) >= 35
    assert [e.state for e in events] == [AlertState.RAISED]


# -- Shutdown and stats ---------------------------------------------------------------------


async def test_close_answers_waiters_and_refuses_newcomers() -> None:
    b = backend(limit=1, window=10)
    await used(b, "f")
    waiter = spawn(b, "f")
    await settle()
    await b.close()
    with pytest.raises(ShuttingDown) as info:
        await waiter
    assert info.value.retry_after > 0
    with pytest.raises(ShuttingDown):
        await b.acquire("g")


async def test_stats_rank_hottest_first_and_report_untracked_as_zero() -> None:
    b = backend(limit=3, window=10, queue=5)
    await fill(b, "warm", 2)
    await fill(b, "hot", 3)
    await fill(b, "busy", 3)
    waiters = [spawn(b, "busy")]
    await settle()
    snapshot = await b.stats(StatsView(top_n=2))
    assert [r.fixture_id for r in snapshot.fixtures] == ["busy", "hot"]
    assert snapshot.totals.fixtures_tracked == 3
    assert snapshot.totals.calls_total == 8
    assert snapshot.totals.queue_depth == 1
    assert snapshot.totals.in_flight == 8
    named = await b.stats(StatsView(fixture_ids=("ghost", "warm")))
    assert [(r.fixture_id, r.calls_in_window) for r in named.fixtures] == [
        ("warm", 2),
        ("ghost", 0),
    ]
    assert named.fixtures[0].utilization == pytest.approx(2 / 3)
    assert math.isclose(named.fixtures[0].window, 10)
    for t in waiters:
        t.cancel()


# -- Forecasts: permits in flight are expected back after the fixture's p90 hold ---------------


async def test_expected_hold_is_one_second_then_the_servers_then_the_fixtures_own() -> None:
    b = backend(limit=5, window=10, lease=8)
    assert (await fixture_row(b, "f")).expected_hold == 1.0  # nothing released yet
    for hold in (2.0, 2.0, 3.0):
        permit = (await b.acquire("other")).permit_id
        await asyncio.sleep(hold)
        await b.release(permit)
    assert (await fixture_row(b, "f")).expected_hold == 3.0  # the server's p90, for now
    permit = (await b.acquire("f")).permit_id
    await asyncio.sleep(0.5)
    await b.release(permit)
    assert (await fixture_row(b, "f")).expected_hold == 0.5  # its own, once it has releases
    permit = (await b.acquire("f")).permit_id
    await asyncio.sleep(30)  # abandoned: the lease (8 s) caps what a hold can be
    assert (await fixture_row(b, "f")).expected_hold == 8.0


async def test_a_wait_forecast_counts_the_hold_of_permits_in_flight() -> None:
    b = backend(limit=1, window=10, queue=5)
    first = (await b.acquire("f")).permit_id
    await asyncio.sleep(4)
    await b.release(first)  # held 4 s: in the window until t=14
    await asyncio.sleep(10)
    held = (await b.acquire("f")).permit_id  # t=14, expected back at t=18, gone at t=28
    await asyncio.sleep(1)
    with pytest.raises(WaitTooLong) as info:
        await b.acquire("f", budget=5)
    assert info.value.estimated_wait == pytest.approx(13)
    assert info.value.retry_after == pytest.approx(8)
    # A second in line waits one more period: hold + window.
    waiter = spawn(b, "f")
    await settle()
    with pytest.raises(WaitTooLong) as info:
        await b.acquire("f", budget=0)
    assert info.value.estimated_wait == pytest.approx(13 + 14)
    await b.release(held)
    waiter.cancel()


async def test_a_waiter_is_answered_at_its_deadline_when_a_holder_is_late() -> None:
    b = backend(limit=1, window=10, queue=5, lease=60)
    await used(b, "f")  # a hold of 0 s seen: the next holder is expected back at once
    await asyncio.sleep(10)
    held = (await b.acquire("f")).permit_id
    hurried = spawn(b, "f", budget=15)  # forecast: granted at t=20, within its budget
    patient = spawn_used(b, "f")
    await settle()
    t = now()
    with pytest.raises(WaitTooLong) as info:
        await hurried  # the holder never came back: answered at its deadline, not left waiting
    assert now() - t == pytest.approx(15)
    assert info.value.expired
    assert "held longer than expected" in str(info.value)
    assert (await fixture_row(b, "f")).queue_depth == 1
    await b.release(held)
    assert (await patient).queue_position == 2


class StalledClock(LoopClock):
    """The loop's clock, plus a jump: as if the loop (or the process) stalled that long and
    every timer armed before now fires late."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = 0.0
        self.monotonic = lambda: asyncio.get_running_loop().time() + self.stalled

    def stall(self, seconds: float) -> None:
        self.stalled += seconds

    def call_at(self, when: float, callback: Callable[..., None], *args: Any) -> Timer:
        return super().call_at(when - self.stalled, callback, *args)


async def test_after_a_stall_expired_waiters_are_skipped_and_the_slot_goes_to_the_next() -> None:
    clock = StalledClock()
    b = MemoryBackend(PermitPolicy(limit=2, window=10, queue=5), clock)
    await used(b, "f", 2)  # t=0: both slots free at t=10
    gone = [spawn(b, "f", budget=12), spawn(b, "f", budget=12)]
    alive = spawn(b, "f")
    await settle()
    await asyncio.sleep(5)
    clock.stall(20)  # t=25 now, and no timer has fired since t=5
    grant = await alive
    for task in gone:
        with pytest.raises(WaitTooLong) as info:
            await task
        assert info.value.expired
    assert grant.queue_position == 3
    row = await fixture_row(b, "f")
    assert (row.calls_total, row.rejected_total, row.queue_depth) == (3, 2, 0)


# -- The durable store: one write per loop iteration, no grant answered before it is kept -----


class RecordingStore:
    def __init__(self, records: list[FixtureRecord] | None = None) -> None:
        self.writes: list[tuple[list[str], list[str]]] = []
        self.records = {r.fixture_id: r for r in records or []}
        self.failing: str | None = None

    def load(self) -> list[FixtureRecord]:
        return list(self.records.values())

    def write(self, changed: Sequence[FixtureRecord], forgotten: Sequence[str]) -> None:
        if self.failing is not None:
            raise StoreUnavailable(self.failing)
        self.writes.append(([r.fixture_id for r in changed], list(forgotten)))
        for r in changed:
            self.records[r.fixture_id] = r._replace(held=r.held[:], released=r.released[:])
        for f in forgotten:
            self.records.pop(f, None)

    unwritable_because: str | None = None

    def close(self) -> None:
        pass


async def test_grants_of_one_loop_iteration_are_written_once_before_they_are_answered() -> None:
    store = RecordingStore()
    b = MemoryBackend(PermitPolicy(limit=50, window=10), store=store)
    tasks = [spawn(b, f"f{i % 3}") for i in range(30)]
    await asyncio.sleep(0)  # every acquire ran once: granted, none answered yet
    assert not any(t.done() for t in tasks)
    assert store.writes == []
    await asyncio.gather(*tasks)
    assert len(store.writes) == 1
    assert sorted(store.writes[0][0]) == ["f0", "f1", "f2"]
    assert len(store.records["f0"].held) == 10


async def test_a_grant_the_store_cannot_keep_is_refused_and_taken_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = RecordingStore()
    b = MemoryBackend(PermitPolicy(limit=5, window=10), store=store)
    store.failing = "disk full"
    results = await asyncio.gather(*(b.acquire("f") for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert "disk full" in str(results[0])
    assert b.store_error is not None
    row = await fixture_row(b, "f")
    assert (row.calls_in_window, row.in_flight) == (0, 0)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "state store failed; refusing grants until it writes again: disk full"
    ]
    store.failing = None
    await b.acquire("f")
    assert b.store_error is None
    assert len(store.records["f"].held) == 1


async def test_a_restart_restores_windows_and_holds_permits_in_flight_until_lease_end() -> None:
    store = RecordingStore()
    policy = PermitPolicy(limit=3, window=10, lease=5, max_upstream_pause=60)
    first = MemoryBackend(policy, VirtualWallClock(), store=store)
    await used(first, "f", 2)  # in the window until t=10
    await first.acquire("f")  # in flight at the crash: it may have been sent
    paused = (await first.acquire("paused")).permit_id
    await first.release(paused, Outcome.UPSTREAM_RATE_LIMITED, 30)
    await settle()
    await asyncio.sleep(2)  # the process dies here, without closing
    second = MemoryBackend(policy, VirtualWallClock(), store=store)
    await settle()
    row = await fixture_row(second, "f")
    assert (row.calls_in_window, row.calls_total, row.in_flight) == (3, 3, 0)
    assert (await fixture_row(second, "paused")).paused_until is not None
    t = now()
    grant = await second.acquire("f")  # the two used leave at t=10; the third at 5 + 10
    assert now() - t == pytest.approx(8)
    with pytest.raises(WaitTooLong):
        await second.acquire("paused", budget=15)
    assert grant.queue_position == 1
    await first.close()
    await second.close()


# -- Hostile callers: ownership, pauses, quotas --------------------------------------------------


async def test_only_the_caller_that_acquired_a_permit_may_release_it() -> None:
    b = backend(limit=5, window=10)
    permit = (await b.acquire("f", caller="alice", request_id="r1")).permit_id
    assert len(permit) >= 22  # 128 random bits, not a counter
    with pytest.raises(PermitNotFound):
        await b.release(permit, Outcome.NOT_SENT, caller="mallory")
    with pytest.raises(PermitNotFound):
        b.permit_for_request("r1", caller="mallory")
    assert (await fixture_row(b, "f")).in_flight == 1
    assert b.permit_for_request("r1", caller="alice") == permit
    assert await b.release(permit, caller="alice") is False
    with pytest.raises(PermitNotFound):  # not even "already released" to someone else
        await b.release(permit, caller="mallory")
    assert await b.release(permit, caller="alice") is True


async def test_an_upstream_pause_is_capped_by_policy() -> None:
    b = backend(limit=5, window=10)
    permit = (await b.acquire("f")).permit_id
    await b.release(permit, Outcome.UPSTREAM_RATE_LIMITED, 3600)
    row = await fixture_row(b, "f")
    assert row.paused_until is not None
    assert row.paused_until - b._clock.to_wall(now()) == pytest.approx(10)  # one window


async def test_one_caller_cannot_take_every_fixture_slot() -> None:
    b = backend(limit=5, window=10, max_fixtures=10, max_fixtures_per_caller=3)
    for i in range(3):
        await used(b, f"m{i}", caller="mallory")
    with pytest.raises(TooManyFixtures, match="--max-fixtures-per-caller"):
        await b.acquire("m3", caller="mallory")
    await b.acquire("m0", caller="mallory")  # a fixture it already brought in is still served
    await b.acquire("a0", caller="alice")  # and everyone else can still add fixtures
    await asyncio.sleep(10)  # mallory's fixtures go idle and are forgotten
    await b.acquire("m3", caller="mallory")


async def test_one_caller_cannot_fill_every_queue() -> None:
    b = backend(limit=1, window=10, queue=10, max_waiters_per_caller=2)
    await used(b, "f")
    waiting = [spawn(b, "f", caller="mallory") for _ in range(2)]
    await settle()
    with pytest.raises(CallerQueueFull, match="--max-waiters-per-caller"):
        await b.acquire("f", caller="mallory")
    alice = spawn(b, "f", caller="alice")
    await settle()
    assert (await fixture_row(b, "f")).queue_depth == 3
    waiting[0].cancel()
    await settle()
    third = spawn(b, "f", caller="mallory")  # a place of its own freed up
    await settle()
    assert not third.done()
    for t in [*waiting, alice, third]:
        t.cancel()


async def test_released_permits_are_remembered_within_a_bound() -> None:
    book = LeaseBook(LoopClock(), lambda lease: None, remembered=3)
    leases = [book.issue("f", now(), now() + 60, "") for _ in range(5)]
    for lease in leases:
        book.release(lease)
    assert [book.was_released(lease.permit_id, "") for lease in leases] == [
        False,
        False,
        True,
        True,
        True,
    ]
    book.close()


async def test_a_warming_grant_marks_the_fixture_for_one_window() -> None:
    b = backend(limit=1, window=10, queue=5)
    await used(b, "f")
    waiter = spawn(b, "f", warming=True)
    await settle()
    assert not (await fixture_row(b, "f")).warming
    await b.release((await waiter).permit_id)  # a queued warmer's grant marks it too
    assert (await fixture_row(b, "f")).warming
    await asyncio.sleep(10)
    assert not (await fixture_row(b, "f")).warming
