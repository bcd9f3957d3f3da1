"""Property test: random arrivals, cancellations, releases and clock steps on virtual time.

Whatever happens: no window ever holds more than `limit` grants, grants follow
arrival order, and no queue is deeper than its capacity.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
from dataclasses import dataclass, field

import looptime
from hypothesis import example, given
from hypothesis import strategies as st

from hotspot_core.errors import PermitRefused
from hotspot_core.grants import Grant, Outcome
from hotspot_core.memory import MemoryBackend
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsView

LIMIT, WINDOW, QUEUE = 3, 10.0, 4
FIXTURES = ("a", "b")

arrive = st.tuples(
    st.just("arrive"),
    st.sampled_from(FIXTURES),
    st.sampled_from([math.inf, 0.0, 4.0, 25.0]),
)
cancel = st.tuples(st.just("cancel"), st.integers(0, 50))
release = st.tuples(st.just("release"), st.integers(0, 50), st.sampled_from(list(Outcome)))
# A release that frees a slot and a cancellation in the same instant: the grant races the caller.
release_and_cancel = st.tuples(st.just("release_and_cancel"), st.integers(0, 50))
step = st.tuples(st.just("step"), st.sampled_from([0.0, 0.5, 1.0, 3.0, 9.999, 10.0, 17.0]))
# Arrivals outnumber the rest so that windows fill and queues form.
actions = st.lists(
    st.one_of(arrive, arrive, arrive, arrive, cancel, release, release_and_cancel, step),
    max_size=60,
)


@dataclass
class Request:
    fixture_id: str
    arrived: int
    task: asyncio.Task[Grant]
    granted: int | None = None  # event number of the grant
    grant: Grant | None = None


@dataclass
class Journal:
    """Every grant and refund, numbered in the order they happened."""

    ticks: itertools.count[int] = field(default_factory=itertools.count)
    grants: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # (event, time)
    refunded: dict[str, int] = field(default_factory=dict)  # permit_id -> event


async def scenario(plan: list[tuple[object, ...]]) -> None:
    loop = asyncio.get_running_loop()
    backend = MemoryBackend(
        PermitPolicy(limit=LIMIT, window=WINDOW, queue=QUEUE, lease=1e6, max_wait=1000.0)
    )
    journal = Journal()
    requests: list[Request] = []
    permits: list[tuple[Request, str]] = []
    released: set[str] = set()

    def on_done(request: Request, task: asyncio.Task[Grant]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        request.grant = task.result()
        request.granted = next(journal.ticks)
        journal.grants.setdefault(request.fixture_id, []).append((request.granted, loop.time()))
        permits.append((request, request.grant.permit_id))

    for action in plan:
        kind = action[0]
        if kind == "arrive":
            _, fixture_id, budget = action
            task = asyncio.create_task(backend.acquire(str(fixture_id), budget=float(budget)))  # type: ignore[arg-type]
            request = Request(str(fixture_id), next(journal.ticks), task)
            task.add_done_callback(functools.partial(on_done, request))
            requests.append(request)
        elif kind == "cancel":
            pending = [r for r in requests if not r.task.done()]
            if pending:
                pending[int(action[1]) % len(pending)].task.cancel()  # type: ignore[call-overload]
        elif kind in ("release", "release_and_cancel") and permits:
            holder, permit_id = permits[int(action[1]) % len(permits)]  # type: ignore[call-overload]
            outcome = action[2] if kind == "release" else Outcome.NOT_SENT
            assert isinstance(outcome, Outcome)
            already = await backend.release(permit_id, outcome)
            assert already == (permit_id in released)
            released.add(permit_id)
            if not already and outcome is Outcome.NOT_SENT:
                journal.refunded[permit_id] = next(journal.ticks)
            # The head of that fixture's queue may have just been granted the freed slot.
            head = [r for r in requests if r.fixture_id == holder.fixture_id and not r.task.done()]
            if kind == "release_and_cancel" and head:
                head[0].task.cancel()
        elif kind == "step":
            await asyncio.sleep(float(action[1]))  # type: ignore[arg-type]
        for _ in range(3):
            await asyncio.sleep(0)
        await check_queues(backend, requests)
        in_flight = (await backend.stats(StatsView())).totals.in_flight
        assert in_flight == len({p for _, p in permits} - released)

    await asyncio.sleep(3 * WINDOW)  # let every admitted waiter be served
    await check_queues(backend, requests)
    check_windows(journal, requests)
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


def check_windows(journal: Journal, requests: list[Request]) -> None:
    """At each grant, the grants of the last `window` not refunded before it number <= limit."""
    permit_of = {r.granted: r.grant.permit_id for r in requests if r.grant is not None}
    for grants in journal.grants.values():
        for event, t in grants:
            live = [
                e
                for e, g in grants
                if t - WINDOW < g <= t
                and e <= event
                and journal.refunded.get(permit_of[e], math.inf) > event
            ]
            assert len(live) <= LIMIT, (t, live)


def check_fifo(requests: list[Request]) -> None:
    for fixture_id in FIXTURES:
        granted = [r for r in requests if r.fixture_id == fixture_id and r.granted is not None]
        by_arrival = sorted(granted, key=lambda r: r.arrived)
        assert [r.granted for r in by_arrival] == sorted(r.granted for r in granted)  # type: ignore[type-var]


@given(actions)
@example([("arrive", "a", math.inf)] * 5 + [("release_and_cancel", 0), ("step", 10.0)])
def test_windows_order_and_queue_bounds_hold_under_any_sequence(
    plan: list[tuple[object, ...]],
) -> None:
    loop = looptime.new_event_loop(start=0)
    try:
        loop.run_until_complete(scenario(plan))
    finally:
        loop.close()
