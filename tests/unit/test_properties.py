"""Property test: random arrivals, cancellations, releases, lease ends, pauses, clock steps,
crashes and restarts, on virtual time.

Whatever happens, what the upstream sees stays within the limit: give each
answered grant any arrival time between its grant and its release (or its
lease end, if it is never released; never, if it was refunded), and no
half-open interval of length `window` holds more than `limit` arrivals. Grants
follow arrival order, and no queue is deeper than its capacity.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import looptime
from hypothesis import example, given
from hypothesis import strategies as st

from hotspot_core.errors import PermitRefused
from hotspot_core.grants import Grant, Outcome
from hotspot_core.memory import MemoryBackend
from hotspot_core.persistence import FixtureRecord
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsView
from tests.unit.core_helpers import VirtualWallClock

LIMIT, WINDOW, QUEUE = 3, 10.0, 4
LEASE = 20.123  # off the grid of steps, so no lease ends in the same instant as a step
FIXTURES = ("a", "b")

arrive = st.tuples(
    st.just("arrive"),
    st.sampled_from(["a", "a", "a", "b"]),  # mostly one fixture, so that its window fills
    st.sampled_from([math.inf, 0.0, 4.0, 25.0]),
)
cancel = st.tuples(st.just("cancel"), st.integers(0, 50))
release = st.tuples(
    st.just("release"),
    st.integers(0, 50),
    st.sampled_from(list(Outcome)),
    st.sampled_from([None, 0.0, 3.0, 30.0]),
)
# A release that frees a slot and a cancellation in the same instant: the grant races the caller.
release_and_cancel = st.tuples(st.just("release_and_cancel"), st.integers(0, 50))
step = st.tuples(st.just("step"), st.sampled_from([0.0, 0.5, 1.0, 3.0, 9.999, 10.0, 17.0]))
# kill -9: every caller's connection dies with the process; the store keeps what it wrote.
crash = st.tuples(st.just("crash"))
# Arrivals outnumber the rest so that windows fill and queues form.
actions = st.lists(
    st.one_of(arrive, arrive, arrive, arrive, cancel, release, release_and_cancel, step, crash),
    max_size=60,
)


class KeptRecords:
    """A durable store that keeps records in a dict: what survives a crash of the backend."""

    def __init__(self) -> None:
        self.records: dict[str, FixtureRecord] = {}

    def load(self) -> list[FixtureRecord]:
        return list(self.records.values())

    def write(self, changed: Sequence[FixtureRecord], forgotten: Sequence[str]) -> None:
        for record in changed:
            # Copies: the backend's arrays keep changing after the write.
            self.records[record.fixture_id] = record._replace(
                held=record.held[:], released=record.released[:]
            )
        for fixture_id in forgotten:
            self.records.pop(fixture_id, None)

    unwritable_because: str | None = None

    def close(self) -> None:
        pass


@dataclass
class Request:
    fixture_id: str
    arrived: int
    task: asyncio.Task[Grant]
    life: int
    """Which run of the backend (crashes start a new one) took the request."""
    granted: int | None = None  # event number of the grant
    grant: Grant | None = None
    granted_at: float = 0.0
    ended_at: float | None = None
    """When its call was known to be over: release or lease end (None: still in flight)."""
    refunded: bool = False


@dataclass
class Journal:
    ticks: itertools.count[int] = field(default_factory=itertools.count)
    answered: list[Request] = field(default_factory=list)


def make_backend(store: KeptRecords) -> MemoryBackend:
    policy = PermitPolicy(limit=LIMIT, window=WINDOW, queue=QUEUE, lease=LEASE, max_wait=1000.0)
    return MemoryBackend(policy, VirtualWallClock(), store=store)


def kill(backend: MemoryBackend) -> None:
    """Stop a backend dead, as kill -9 would: no timer fires again and nothing more is written."""
    for fx in backend._fixtures.values():
        if fx.timer is not None:
            fx.timer.cancel()
    backend._leases.close()
    backend._store = None
    backend._batch = None


async def scenario(plan: list[tuple[object, ...]]) -> None:
    loop = asyncio.get_running_loop()
    store = KeptRecords()
    backend = make_backend(store)
    life = 0
    journal = Journal()
    requests: list[Request] = []

    def on_done(request: Request, task: asyncio.Task[Grant]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        request.grant = task.result()
        request.granted = next(journal.ticks)
        request.granted_at = loop.time()  # answered in the instant it was granted
        journal.answered.append(request)

    def in_flight(now: float) -> list[Request]:
        """Answered this run, not released, lease not over."""
        return [
            r
            for r in journal.answered
            if r.life == life and r.ended_at is None and r.granted_at + LEASE > now
        ]

    for action in plan:
        kind = action[0]
        if kind == "arrive":
            _, fixture_id, budget = action
            task = asyncio.create_task(backend.acquire(str(fixture_id), budget=float(budget)))  # type: ignore[arg-type]
            request = Request(str(fixture_id), next(journal.ticks), task, life)
            task.add_done_callback(functools.partial(on_done, request))
            requests.append(request)
        elif kind == "cancel":
            pending = [r for r in requests if not r.task.done()]
            if pending:
                pending[int(action[1]) % len(pending)].task.cancel()  # type: ignore[call-overload]
        elif kind in ("release", "release_and_cancel"):
            holders = in_flight(loop.time())
            if holders:
                holder = holders[int(action[1]) % len(holders)]  # type: ignore[call-overload]
                outcome = action[2] if kind == "release" else Outcome.NOT_SENT
                assert isinstance(outcome, Outcome)
                delay = action[3] if outcome is Outcome.UPSTREAM_RATE_LIMITED else None
                assert holder.grant is not None
                already = await backend.release(holder.grant.permit_id, outcome, delay)  # type: ignore[arg-type]
                assert not already
                holder.ended_at = loop.time()
                holder.refunded = outcome is Outcome.NOT_SENT
                # The head of that fixture's queue may have just been granted the freed slot.
                head = [
                    r for r in requests if r.fixture_id == holder.fixture_id and not r.task.done()
                ]
                if kind == "release_and_cancel" and head:
                    head[0].task.cancel()
        elif kind == "step":
            await asyncio.sleep(float(action[1]))  # type: ignore[arg-type]
        elif kind == "crash":
            kill(backend)
            for r in requests:
                if not r.task.done():
                    r.task.cancel()  # their connections died with the process
            await asyncio.sleep(0)
            life += 1
            backend = make_backend(store)
        for _ in range(10):  # a grant is answered once the store has written it: a few turns
            await asyncio.sleep(0)
        await check_queues(backend, requests)
        stats = await backend.stats(StatsView())
        assert stats.totals.in_flight == len(in_flight(loop.time()))

    await asyncio.sleep(3 * WINDOW)  # let every admitted waiter be served
    await check_queues(backend, requests)
    check_upstream(journal.answered)
    check_fifo(requests)
    for r in requests:
        if not r.task.done():
            r.task.cancel()
        elif not r.task.cancelled() and (e := r.task.exception()) is not None:
            assert isinstance(e, PermitRefused), e
    await backend.close()


async def check_queues(backend: MemoryBackend, requests: list[Request]) -> None:
    snapshot = await backend.stats(StatsView(fixture_ids=FIXTURES))
    for row in snapshot.fixtures:
        assert row.queue_depth <= QUEUE
        waiting = sum(1 for r in requests if r.fixture_id == row.fixture_id and not r.task.done())
        assert row.queue_depth == waiting


def check_upstream(answered: list[Request]) -> None:
    """The worst the upstream can see: each call arrives anywhere in [grant, release or lease
    end], so an interval [t, t + window) can catch every call whose span meets it. The count is
    largest at t = some span's end; check every one."""
    for fixture_id in FIXTURES:
        spans = [
            (r.granted_at, r.ended_at if r.ended_at is not None else r.granted_at + LEASE)
            for r in answered
            if r.fixture_id == fixture_id and not r.refunded
        ]
        for _, t in spans:
            caught = [(g, e) for g, e in spans if g < t + WINDOW and e >= t]
            assert len(caught) <= LIMIT, (t, caught)


def check_fifo(requests: list[Request]) -> None:
    for fixture_id in FIXTURES:
        granted = [r for r in requests if r.fixture_id == fixture_id and r.granted is not None]
        by_arrival = sorted(granted, key=lambda r: r.arrived)
        assert [r.granted for r in by_arrival] == sorted(r.granted for r in granted)  # type: ignore[type-var]


@given(actions)
@example([("arrive", "a", math.inf)] * 5 + [("release_and_cancel", 0), ("step", 10.0)])
# A call released at t=3 may have reached the upstream at t=3: its slot is free again at t=13,
# not at t=10 (grant + window).
@example(
    [("arrive", "a", math.inf)] * 4
    + [("step", 3.0), ("release", 0, Outcome.SUCCESS, None), ("step", 9.999)]
)
@example(
    [("arrive", "a", math.inf)] * 3
    + [("step", 3.0), ("release", 0, Outcome.SUCCESS, None), ("crash",), ("arrive", "a", 4.0)]
)
def test_the_upstream_never_sees_more_than_the_limit_under_any_sequence(
    plan: list[tuple[object, ...]],
) -> None:
    loop = looptime.new_event_loop(start=0)
    try:
        loop.run_until_complete(scenario(plan))
    finally:
        loop.close()
