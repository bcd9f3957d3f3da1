"""MemoryBackend: all permit state in this process, on one event loop, optionally kept durable."""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import logging
import math
from array import array
from bisect import bisect_right, insort
from collections.abc import Callable, Iterable, Sequence

from hotspot_core.alerts import AlertBoard, AlertListener
from hotspot_core.clock import Clock, LoopClock, Timer
from hotspot_core.errors import (
    CallerQueueFull,
    InvalidArgument,
    PermitNotFound,
    PermitRefused,
    QueueFull,
    ShuttingDown,
    StoreUnavailable,
    TooManyFixtures,
    WaitTooLong,
)
from hotspot_core.fixture_id import check_fixture_id
from hotspot_core.grants import Grant, Outcome
from hotspot_core.hold_time import SERVER_REFRESH, SERVER_SAMPLES, HoldTimes, expected_hold
from hotspot_core.leases import LeaseBook, PermitLease
from hotspot_core.log_summary import LogSummary
from hotspot_core.persistence import FixtureRecord, StateStore
from hotspot_core.policy import PermitPolicy
from hotspot_core.ranking import HeatEntry, HeatRanking, heat
from hotspot_core.request_id import check_request_id
from hotspot_core.request_rules import (
    MAX_CLIENT_ID as MAX_CLIENT_ID,
)
from hotspot_core.request_rules import (
    MAX_PERMIT_ID as MAX_PERMIT_ID,
)
from hotspot_core.request_rules import (
    MAX_UPSTREAM_RETRY_AFTER as MAX_UPSTREAM_RETRY_AFTER,
)
from hotspot_core.request_rules import (
    check_acquire,
    check_release,
)
from hotspot_core.stats import FixtureStats, StatsSnapshot, StatsView, Totals
from hotspot_core.waiters import Waiter, WaiterQueue
from hotspot_core.warming_board import ScheduledWarming, WarmingBoard
from hotspot_core.window import FixtureWindow

logger = logging.getLogger("hotspot.permits")

SHUTDOWN_RETRY_AFTER = 1.0
"""Seconds a caller turned away by a shutdown should wait (another replica may answer sooner)."""
LAZY_WRITE = 0.1
"""Seconds a release or refund may wait to be written when no grant comes to carry it."""
RESTORE_CHUNK = 5000
"""Restored fixtures whose timers are armed per loop iteration after a restart."""
_NEVER = -math.inf  # one shared float: `-math.inf` in __init__ would allocate one per fixture


class _Batch(asyncio.Future[None]):
    """One durable-store write, awaited by every grant it carries. A cancelled caller does not
    cancel it for the others: its cancellation takes effect once the write is done (within
    one loop iteration), and its grant is then taken back. Cheaper than a shield per grant."""

    def cancel(self, msg: object = None) -> bool:
        return False


class FixtureState:
    """One fixture: its window, its queue, its counters and its single timer."""

    __slots__ = (
        "abandoned_total",
        "calls_total",
        "deadlines",
        "fixture_id",
        "holds",
        "hot",
        "in_flight",
        "introduced_by",
        "owner",
        "paused_until",
        "rejected_total",
        "timer",
        "waiters",
        "warming_until",
        "window",
    )

    def __init__(self, fixture_id: str, owner: MemoryBackend | None = None) -> None:
        self.fixture_id = fixture_id
        self.owner = owner
        self.window = FixtureWindow()
        self.waiters: WaiterQueue | None = None  # created on the first waiter, dropped when empty
        # Waiters with a finite deadline, soonest first; stale entries are skipped when reached.
        self.deadlines: list[tuple[float, Waiter]] | None = None
        self.holds: HoldTimes | None = None  # created on the first release
        self.in_flight = 0
        self.calls_total = 0
        self.rejected_total = 0
        self.abandoned_total = 0
        self.paused_until = _NEVER
        self.hot = False
        self.timer: Timer | None = None
        self.introduced_by = ""
        self.warming_until = _NEVER
        """Until when a cache warmer's grant marks the fixture as warming (one window)."""
        """The caller whose request made the fixture tracked (its per-caller quota)."""

    def queue_depth(self) -> int:
        return len(self.waiters) if self.waiters is not None else 0

    def __call__(self) -> None:
        """The fixture's timer fired. The state is its own callback: a bound method or an
        args tuple per armed timer would cost every hot fixture another 48-64 bytes."""
        if self.owner is not None:
            self.owner._on_timer(self)


class MemoryBackend:
    """Exact sliding windows and FIFO queues for every fixture, in memory.

    A grant holds its slot from the moment it is granted until `window` after
    its call is known to be over (see FixtureWindow). Each fixture has one
    timer, armed for the next moment its state changes by itself: a released
    grant leaving the window, a pause ending, the soonest deadline of a waiter,
    a hot fixture cooling down, or the fixture going idle. Releases and lease
    ends change it too. Every entry point first settles the fixture at the
    current time, so a timer is a nudge, never the only path to a grant.

    With a `store`, every change is kept durable: the fixtures changed in one
    event-loop iteration are written in one batch, and a grant is answered
    only once its batch is written (a process crash loses no answered grant).
    """

    def __init__(
        self,
        policy: PermitPolicy | None = None,
        clock: Clock | None = None,
        store: StateStore | None = None,
    ) -> None:
        self._policy = policy or PermitPolicy()
        self._clock: Clock = clock or LoopClock()
        self._fixtures: dict[str, FixtureState] = {}
        self._leases = LeaseBook(self._clock, self._abandoned)
        # Callers cause these lines: one per fixture and minute, the rest counted.
        self._abandoned_log = LogSummary(
            self._clock,
            logger,
            what="permits abandoned",
            key_name="fixture_id",
            event="permits_abandoned",
        )
        self._paused_log = LogSummary(
            self._clock, logger, what="pauses", key_name="fixture_id", event="fixtures_paused"
        )
        self._alerts = AlertBoard(
            threshold=self._policy.raise_at, clear_below=self._policy.clear_below
        )
        self._ranking = HeatRanking(self._clock, self._heat, lambda: list(self._fixtures))
        self._warming_board = WarmingBoard()
        self._holds = HoldTimes(SERVER_SAMPLES, SERVER_REFRESH)
        self._closed = False
        self._calls_total = 0
        self._rejected_total = 0
        self._abandoned_total = 0
        self._queue_depth = 0
        self._in_flight = 0
        # Per caller: fixtures it brought in that are still tracked, and its waiters now.
        self._caller_fixtures: dict[str, int] = {}
        self._caller_waiters: dict[str, int] = {}
        self._store = store
        self._dirty: dict[str, FixtureState | None] = {}
        self._batch: asyncio.Future[None] | None = None
        self._lazy_write: asyncio.TimerHandle | None = None
        self._store_error: StoreUnavailable | None = None
        if store is not None:
            if store.unwritable_because is not None:
                self._store_error = StoreUnavailable(store.unwritable_because)
            self._restore(store.load())
            # Timers and the first write belong to the running loop.
            asyncio.get_running_loop().call_soon(self._start)

    @property
    def policy(self) -> PermitPolicy:
        return self._policy

    @property
    def store_error(self) -> StoreUnavailable | None:
        """Why the durable store last failed to write, while it is failing; else None."""
        return self._store_error

    def unready_reason(self) -> str | None:
        return None if self._store_error is None else str(self._store_error)

    # -- Acquire ---------------------------------------------------------------------------

    async def acquire(
        self,
        fixture_id: str,
        *,
        budget: float = math.inf,
        client_id: str = "",
        request_id: str = "",
        caller: str = "",
        warming: bool = False,
    ) -> Grant:
        if self._closed:
            raise ShuttingDown(SHUTDOWN_RETRY_AFTER)
        check_acquire(client_id, budget, request_id)
        if request_id:
            granted = self._leases.permit_for_request(request_id, caller)
            if granted is not None:
                grant = self._granted_before(granted, fixture_id, caller)
                if self._batch is not None:
                    await self._batch  # answered, as any grant, once the store holds it
                return grant
        now = self._clock.monotonic()
        fx = self._fixtures.get(fixture_id)
        if fx is None:  # only a new id needs checking: every tracked one passed
            fx = self._track(check_fixture_id(fixture_id), caller)
        if fx.waiters is None and not fx.hot:
            fx.window.prune(now)  # all that settling does for a fixture with no queue, not hot
        else:
            self._settle(fx, now)
        if fx.waiters is None and fx.paused_until <= now and len(fx.window) < self._policy.limit:
            grant = self._grant(
                fx,
                now,
                arrived_at=now,
                position=0,
                client_id=client_id,
                request_id=request_id,
                caller=caller,
                warming=warming,
            )
            if fx.hot:  # otherwise the live lease means nothing can change before its release
                self._reschedule(fx, now)
            if self._batch is not None:
                await self._recorded(fx, grant, caller, self._batch)
            return grant
        waiter = self._enqueue(
            fx, now, min(budget, self._policy.max_wait), client_id, request_id, caller
        )
        waiter.warming = warming
        try:
            grant = await waiter.future
        except asyncio.CancelledError:
            self._leave_queue(fx, waiter)
            raise
        if waiter.batch is not None:
            await self._recorded(fx, grant, caller, waiter.batch)
        return grant

    def _granted_before(self, permit_id: str, fixture_id: str, caller: str) -> Grant:
        """The permit in flight already granted to a request id, asked for again (a request
        resent after its stream broke, its answer maybe lost): the same grant, not a second."""
        lease = self._leases.get(permit_id, caller)
        if lease is None or lease.fixture_id != fixture_id:
            raise InvalidArgument(
                "request_id already names a permit of another fixture", field="request_id"
            )
        wall = self._clock.to_wall(lease.granted_at)
        remaining = self._policy.limit - len(self._fixtures[fixture_id].window)
        return Grant(
            permit_id,
            fixture_id,
            wall,
            0.0,
            0,
            max(0, remaining),
            self._clock.to_wall(lease.expires_at),
        )

    async def _recorded(
        self, fx: FixtureState, grant: Grant, caller: str, batch: asyncio.Future[None]
    ) -> None:
        """Answer a grant only once the store holds it; else take it back.

        A cancelled caller gets no permit either: the grant goes back at once.
        """
        try:
            await batch  # a _Batch: a caller's cancellation waits for the write, then applies
        except BaseException:
            self._take_back(fx, grant.permit_id, caller)
            now = self._clock.monotonic()
            self._settle(fx, now)
            self._reschedule(fx, now)
            raise

    def _track(self, fixture_id: str, caller: str) -> FixtureState:
        policy = self._policy
        introduced = self._caller_fixtures.get(caller, 0)
        if len(self._fixtures) >= policy.max_fixtures or (
            caller and introduced >= policy.max_fixtures_per_caller
        ):
            self._rejected_total += 1
            own = len(self._fixtures) < policy.max_fixtures
            raise TooManyFixtures(
                fixture_id=fixture_id,
                # An idle fixture is forgotten once its window empties.
                retry_after=policy.window,
                limit=policy.limit,
                max_fixtures=policy.max_fixtures_per_caller if own else policy.max_fixtures,
                caller=caller if own else None,
            )
        fx = self._fixtures[fixture_id] = FixtureState(fixture_id, self)
        if caller:
            fx.introduced_by = caller
            self._caller_fixtures[caller] = introduced + 1
        return fx

    def _enqueue(
        self,
        fx: FixtureState,
        now: float,
        budget: float,
        client_id: str,
        request_id: str,
        caller: str,
    ) -> Waiter:
        policy = self._policy
        depth = fx.queue_depth()
        waiting = self._caller_waiters.get(caller, 0)
        if caller and waiting >= policy.max_waiters_per_caller:
            raise self._refuse(
                fx,
                CallerQueueFull(
                    fixture_id=fx.fixture_id,
                    retry_after=self._grant_time(fx, 1, now) - now,
                    estimated_wait=self._grant_time(fx, depth + 1, now) - now,
                    queue_depth=depth,
                    limit=policy.limit,
                    caller=caller,
                    capacity=policy.max_waiters_per_caller,
                ),
            )
        granted_at = self._grant_time(fx, depth + 1, now)
        wait = granted_at - now
        if depth >= policy.queue:
            refusal = QueueFull(
                fixture_id=fx.fixture_id,
                retry_after=self._grant_time(fx, 1, now) - now,
                estimated_wait=wait,
                queue_depth=depth,
                limit=policy.limit,
                paused_for=fx.paused_until - now,
                window=policy.window,
                capacity=policy.queue,
            )
            raise self._refuse(fx, refusal)
        if wait > budget:
            raise self._refuse(fx, self._too_long(fx, now, wait, budget, depth))
        waiters = fx.waiters
        if waiters is None:
            waiters = fx.waiters = WaiterQueue()
        deadline = now + budget
        waiter = Waiter(
            asyncio.get_running_loop().create_future(),
            arrived_at=now,
            deadline=deadline,
            position=depth + 1,
            client_id=client_id,
            request_id=request_id,
            caller=caller,
        )
        waiters.append(waiter)
        self._ranking.note(fx.fixture_id)  # heats it: the stats ranking measures it again
        if caller:
            self._caller_waiters[caller] = waiting + 1
        if deadline != math.inf:
            if fx.deadlines is None:
                fx.deadlines = []
            heapq.heappush(fx.deadlines, (deadline, waiter))
        self._queue_depth += 1
        self._reschedule(fx, now)
        return waiter

    def _too_long(
        self,
        fx: FixtureState,
        now: float,
        wait: float,
        budget: float,
        depth: int,
        expired: bool = False,
    ) -> WaitTooLong:
        return WaitTooLong(
            fixture_id=fx.fixture_id,
            # With no other traffic, the same request fits its budget once the wait shrinks so much.
            retry_after=wait - budget,
            estimated_wait=wait,
            queue_depth=depth,
            limit=self._policy.limit,
            paused_for=fx.paused_until - now,
            budget=budget,
            expired=expired,
        )

    def _refuse(self, fx: FixtureState, refusal: PermitRefused) -> PermitRefused:
        fx.rejected_total += 1
        self._rejected_total += 1
        return refusal

    def _leave_queue(self, fx: FixtureState, waiter: Waiter) -> None:
        """The waiter's caller went away (cancelled, or its call ended)."""
        future = waiter.future
        if future.done() and not future.cancelled() and future.exception() is None:
            # Granted in the same instant the caller left: the grant goes to the next in line.
            self._take_back(fx, future.result().permit_id, waiter.caller)
        elif fx.waiters is not None and fx.waiters.remove(waiter):
            self._dequeued(waiter)
            if not fx.waiters:
                self._queue_emptied(fx)
        now = self._clock.monotonic()
        self._settle(fx, now)
        self._reschedule(fx, now)

    def _dequeued(self, waiter: Waiter) -> None:
        """A waiter left its queue (granted, answered, or gone): the counts follow."""
        self._queue_depth -= 1
        caller = waiter.caller
        if caller:
            left = self._caller_waiters[caller] - 1
            if left:
                self._caller_waiters[caller] = left
            else:
                del self._caller_waiters[caller]

    def _take_back(self, fx: FixtureState, permit_id: str, caller: str) -> None:
        """A grant that was never answered: it spends no slot."""
        lease = self._leases.get(permit_id, caller)
        if lease is None:
            return
        self._leases.discard(lease)
        fx.in_flight -= 1
        self._in_flight -= 1
        fx.window.refund(lease.granted_at)
        self._changed_lazily(fx)

    def _queue_emptied(self, fx: FixtureState) -> None:
        fx.waiters = None
        fx.deadlines = None

    # -- Granting --------------------------------------------------------------------------

    def _hold(self, fx: FixtureState) -> float:
        return expected_hold(fx.holds, self._holds, self._policy.lease)

    def _grant_time(self, fx: FixtureState, n: int, now: float) -> float:
        policy = self._policy
        return fx.window.grant_time(
            n,
            now,
            limit=policy.limit,
            window=policy.window,
            hold=self._hold(fx),
            lease=policy.lease,
            not_before=fx.paused_until,
        )

    def _settle(self, fx: FixtureState, now: float) -> None:
        """Bring a fixture up to `now`: drop grants that left the window, serve the queue in
        order, and answer every waiter whose deadline has passed instead of granting it."""
        window = fx.window
        window.prune(now)
        waiters = fx.waiters
        if waiters is not None and fx.paused_until <= now:
            limit = self._policy.limit
            while len(window) < limit:
                waiter = waiters.popleft()
                self._dequeued(waiter)
                if waiter.future.done():
                    pass  # its caller left in this same instant
                elif waiter.deadline < now:
                    # A stalled loop or a paused process: the caller has given up by now, so
                    # the slot goes to the next waiter rather than to a call nobody will make.
                    self._expire(fx, waiter, now)
                else:
                    grant = self._grant(
                        fx,
                        now,
                        arrived_at=waiter.arrived_at,
                        position=waiter.position,
                        client_id=waiter.client_id,
                        request_id=waiter.request_id,
                        caller=waiter.caller,
                        warming=waiter.warming,
                    )
                    waiter.batch = self._batch
                    waiter.future.set_result(grant)
                if not waiters:
                    self._queue_emptied(fx)
                    break
        deadlines = fx.deadlines
        if deadlines is not None:
            while deadlines and deadlines[0][0] <= now:
                _, waiter = heapq.heappop(deadlines)
                if not waiter.future.done() and fx.waiters and fx.waiters.remove(waiter):
                    self._dequeued(waiter)
                    self._expire(fx, waiter, now)
            if fx.waiters is not None and not fx.waiters:
                self._queue_emptied(fx)
        if fx.hot and len(window) < self._alerts.clear_below:
            fx.hot = self._alerts.observe(
                fx.fixture_id, len(window), True, self._clock.to_wall(now)
            )

    def _expire(self, fx: FixtureState, waiter: Waiter, now: float) -> None:
        """Answer a waiter whose deadline passed in the queue (it holds no place any more)."""
        depth = fx.queue_depth()
        wait = self._grant_time(fx, depth + 1, now) - now
        budget = waiter.deadline - waiter.arrived_at
        refusal = self._too_long(fx, now, wait, budget, depth, expired=True)
        waiter.future.set_exception(self._refuse(fx, refusal))

    def _grant(
        self,
        fx: FixtureState,
        now: float,
        *,
        arrived_at: float,
        position: int,
        client_id: str,
        request_id: str = "",
        caller: str = "",
        warming: bool = False,
    ) -> Grant:
        policy = self._policy
        window = fx.window
        window.record(now)
        if warming:
            fx.warming_until = now + policy.window
        self._ranking.note(fx.fixture_id)  # heats it: the stats ranking measures it again
        fx.calls_total += 1
        fx.in_flight += 1
        self._calls_total += 1
        self._in_flight += 1
        permit_id = self._leases.issue(
            fx.fixture_id, now, now + policy.lease, client_id, request_id, caller
        ).permit_id
        calls = len(window)
        wall = self._clock.to_wall(now)
        if calls >= self._alerts.threshold and not fx.hot:
            fx.hot = self._alerts.observe(fx.fixture_id, calls, False, wall)
        self._changed(fx)
        return Grant(
            permit_id,
            fx.fixture_id,
            wall,
            now - arrived_at,
            position,
            policy.limit - calls,
            wall + policy.lease,
        )

    # -- The one timer per fixture ---------------------------------------------------------

    def _reschedule(self, fx: FixtureState, now: float) -> None:
        """Arm the fixture's timer for its next change, or forget the fixture if it is idle."""
        at = self._next_change(fx, now)
        if at is None:
            self._forget(fx)
            return
        timer = fx.timer
        if at == math.inf or (timer is not None and timer.when() <= at):
            # An earlier timer is already armed: when it fires it re-evaluates and re-arms.
            return
        if timer is not None:
            timer.cancel()
        fx.timer = self._clock.call_at(at, fx)

    def _next_change(self, fx: FixtureState, now: float) -> float | None:
        """When the fixture next changes by time alone; None if it is idle now.

        Permits in flight leave only on their release or their lease's end, each
        of which settles the fixture itself, so no timer waits for them.
        """
        window = fx.window
        if fx.waiters is not None:
            if fx.paused_until > now:
                at = fx.paused_until
            else:
                leave = window.next_leave()
                at = math.inf if leave is None else leave
            deadlines = fx.deadlines
            if deadlines:
                while deadlines and deadlines[0][1].future.done():
                    heapq.heappop(deadlines)
                if deadlines and deadlines[0][0] < at:
                    at = deadlines[0][0]
            return at
        at = math.inf
        if fx.hot:
            cools = window.falls_to(self._alerts.clear_below - 1)
            if cools is not None:
                at = cools
        idle_at = window.idle_at()
        if idle_at is not None:
            idle_at = max(idle_at, fx.paused_until)
            if idle_at <= now:
                return None
            at = min(at, idle_at)
        return at

    def _on_timer(self, fx: FixtureState) -> None:
        timer = fx.timer
        fx.timer = None
        if timer is None or self._fixtures.get(fx.fixture_id) is not fx:
            return
        # The loop may run a timer a hair before its time; the time it was set for has come.
        now = max(self._clock.monotonic(), timer.when())
        self._settle(fx, now)
        self._reschedule(fx, now)

    def _forget(self, fx: FixtureState) -> None:
        if fx.timer is not None:
            fx.timer.cancel()
            fx.timer = None
        if fx.introduced_by:
            left = self._caller_fixtures[fx.introduced_by] - 1
            if left:
                self._caller_fixtures[fx.introduced_by] = left
            else:
                del self._caller_fixtures[fx.introduced_by]
        if self._fixtures.pop(fx.fixture_id, None) is not None and self._store is not None:
            self._dirty[fx.fixture_id] = None
            if self._batch is None and self._lazy_write is None:
                self._lazy_write = asyncio.get_running_loop().call_later(
                    LAZY_WRITE, self._flush_lazily
                )

    # -- Release and leases ----------------------------------------------------------------

    def permit_for_request(self, request_id: str, caller: str = "") -> str:
        """The caller's permit granted to an Acquire that named `request_id` (for a caller that
        gave up before it saw the answer); PermitNotFound if none is in flight."""
        permit_id = self._leases.permit_for_request(check_request_id(request_id), caller)
        if permit_id is None:
            raise PermitNotFound(request_id, what="request")
        return permit_id

    async def release(
        self,
        permit_id: str,
        outcome: Outcome = Outcome.SUCCESS,
        upstream_retry_after: float | None = None,
        *,
        caller: str = "",
    ) -> bool:
        """End a permit's lease (see PermitBackend.release). Only the caller that acquired a
        permit may release it: to any other it is not found, exactly as an unknown one."""
        check_release(permit_id, upstream_retry_after)
        lease = self._leases.get(permit_id, caller)
        if lease is None:
            if self._leases.was_released(permit_id, caller):
                return True
            raise PermitNotFound(permit_id)
        self._leases.release(lease)
        fx = self._fixtures[lease.fixture_id]  # a fixture with a live lease is never forgotten
        fx.in_flight -= 1
        self._in_flight -= 1
        now = self._clock.monotonic()
        if outcome is Outcome.NOT_SENT:
            fx.window.refund(lease.granted_at)
        else:
            # The call may have reached the upstream at any moment until now.
            fx.window.release(lease.granted_at, now + self._policy.window)
            self._note_hold(fx, now - lease.granted_at)
            if outcome is Outcome.UPSTREAM_RATE_LIMITED:
                self._pause(fx, now, self._pause_for(upstream_retry_after), caller)
        self._changed_lazily(fx)
        self._settle(fx, now)
        self._reschedule(fx, now)
        return False

    def _note_hold(self, fx: FixtureState, seconds: float) -> None:
        holds = fx.holds
        if holds is None:
            holds = fx.holds = HoldTimes()
        holds.add(seconds)
        self._holds.add(seconds)

    def _pause_for(self, asked: float | None) -> float:
        """How long an upstream 429 pauses a fixture: what the upstream asked (one window if it
        did not say), never longer than the policy allows, so no caller can hold a fixture."""
        policy = self._policy
        seconds = policy.window if asked is None else asked
        return min(seconds, policy.upstream_pause_cap)

    def _pause(self, fx: FixtureState, now: float, seconds: float, caller: str = "") -> None:
        until = now + seconds
        if until <= fx.paused_until:
            return
        fx.paused_until = until
        if self._paused_log.first(fx.fixture_id):
            logger.warning(
                "fixture paused after an upstream 429: fixture_id=%s seconds=%.3f queue_depth=%d "
                "caller=%s",
                fx.fixture_id,
                seconds,
                fx.queue_depth(),
                caller or "-",
                extra={
                    "event": "fixture_paused",
                    "fixture_id": fx.fixture_id,
                    "seconds": seconds,
                    "caller": caller,
                },
            )
        waiters = fx.waiters
        if waiters is None:
            return
        # Waiters keep their places; those the pause pushes past their budget are told now
        # rather than at their deadline. A rare event, so one pass over the queue is fine.
        position = 0
        for waiter in list(waiters):
            granted_at = self._grant_time(fx, position + 1, now)
            if granted_at <= waiter.deadline:
                position += 1
                continue
            waiters.remove(waiter)
            self._dequeued(waiter)
            budget = waiter.deadline - waiter.arrived_at
            refusal = self._refuse(fx, self._too_long(fx, now, granted_at - now, budget, position))
            if not waiter.future.done():
                waiter.future.set_exception(refusal)
        if not waiters:
            self._queue_emptied(fx)

    def _abandoned(self, lease: PermitLease) -> None:
        fx = self._fixtures[lease.fixture_id]
        fx.in_flight -= 1
        self._in_flight -= 1
        fx.abandoned_total += 1
        self._abandoned_total += 1
        # Its call may have reached the upstream at any moment until the lease's end.
        fx.window.release(lease.granted_at, lease.expires_at + self._policy.window)
        self._note_hold(fx, lease.expires_at - lease.granted_at)
        if self._abandoned_log.first(lease.fixture_id):
            logger.warning(
                "permit abandoned (lease ended without a release): fixture_id=%s permit_id=%s "
                "client_id=%s",
                lease.fixture_id,
                lease.permit_id,
                lease.client_id or "-",
                extra={
                    "event": "permit_abandoned",
                    "fixture_id": lease.fixture_id,
                    "permit_id": lease.permit_id,
                    "client_id": lease.client_id,
                },
            )
        self._changed_lazily(fx)
        now = self._clock.monotonic()
        self._settle(fx, now)
        self._reschedule(fx, now)

    # -- The durable store -----------------------------------------------------------------

    def _changed(self, fx: FixtureState) -> None:
        """A grant: written before it is answered, with every grant of this loop iteration."""
        if self._store is not None:
            self._dirty[fx.fixture_id] = fx
            self._schedule_flush()

    def _changed_lazily(self, fx: FixtureState) -> None:
        """A change whose loss in a crash errs on the safe side (a release, a refund: the slot
        would stay taken until lease end + window): written with the next grants, or within
        LAZY_WRITE. A pause is written so too, and rediscovered from the upstream if lost."""
        if self._store is not None:
            self._dirty[fx.fixture_id] = fx
            if self._batch is None and self._lazy_write is None:
                self._lazy_write = asyncio.get_running_loop().call_later(
                    LAZY_WRITE, self._flush_lazily
                )

    def _schedule_flush(self) -> None:
        if self._batch is None:
            loop = asyncio.get_running_loop()
            self._batch = _Batch(loop=loop)
            # call_soon runs after every callback already due in this iteration: one write for
            # all the changes of an iteration.
            loop.call_soon(self._flush)

    def _flush_lazily(self) -> None:
        self._lazy_write = None
        if self._batch is None:
            self._flush()

    def _flush(self) -> None:
        # A lazy write still armed is left to fire and find little or nothing to do: cancelling
        # and re-arming it on every batch would churn the loop's timer heap.
        batch, self._batch = self._batch, None
        if self._store is None or not self._dirty:
            if batch is not None:
                batch.set_result(None)
            return
        dirty = self._dirty
        self._dirty = {}
        offset = self._clock.to_wall(0.0)
        changed = [self._record(fx, offset) for fx in dirty.values() if fx is not None]
        forgotten = [f for f, fx in dirty.items() if fx is None]
        try:
            self._store.write(changed, forgotten)
        except StoreUnavailable as error:
            # Kept for the next attempt; the grants of this batch are taken back by their callers.
            for fixture_id, fx in dirty.items():
                self._dirty.setdefault(fixture_id, fx)
            if self._store_error is None:
                logger.error(
                    "state store failed; refusing grants until it writes again: %s",
                    error.why,
                    extra={"event": "store_failed", "reason": error.why},
                )
            self._store_error = error
            if batch is not None:
                batch.set_exception(error)
                batch.exception()  # retrieved here: a batch with no grant waiting on it is fine
            return
        if self._store_error is not None:
            self._store_error = None
            logger.warning("state store writes again", extra={"event": "store_recovered"})
        if batch is not None:
            batch.set_result(None)

    def _record(self, fx: FixtureState, offset: float) -> FixtureRecord:
        return FixtureRecord(
            fixture_id=fx.fixture_id,
            clock_id=self._clock.clock_id,
            clock_offset=offset,
            held=fx.window.held,
            released=fx.window.released,
            lease=self._policy.lease,
            paused_until=fx.paused_until,
            calls_total=fx.calls_total,
            rejected_total=fx.rejected_total,
            abandoned_total=fx.abandoned_total,
        )

    def _restore(self, records: list[FixtureRecord]) -> None:
        """Windows, pauses and counters as a store kept them. A permit in flight at the crash
        may have been sent, and nobody can release it now: it holds its slot until its lease
        end + window. What has left every window is dropped."""
        now = self._clock.monotonic()
        clock_id = self._clock.clock_id
        offset = self._clock.to_wall(0.0)
        window_length = self._policy.window
        for record in records:
            released = record.released
            if record.clock_id != clock_id:  # another boot: through wall time
                shift = record.clock_offset - offset
                released = array("d", [t + shift for t in released])
            else:
                shift = 0.0  # one time base: the kept readings are valid as they are
            if released and released[0] <= now:
                del released[: bisect_right(released, now)]
            for granted_at in record.held:
                leaves = granted_at + shift + record.lease + window_length
                if leaves > now:
                    insort(released, leaves)
            paused_until = record.paused_until + shift
            if not released and paused_until <= now:
                self._dirty[record.fixture_id] = None  # nothing left: dropped from the store
                continue
            fx = self._fixtures[record.fixture_id] = FixtureState(record.fixture_id, self)
            fx.window.released = released
            fx.paused_until = paused_until if paused_until > now else _NEVER
            fx.calls_total = record.calls_total
            fx.rejected_total = record.rejected_total
            fx.abandoned_total = record.abandoned_total
            self._calls_total += record.calls_total
            self._rejected_total += record.rejected_total
            self._abandoned_total += record.abandoned_total
            # Not rewritten: its record stays true until the fixture changes.

    def _start(self, pending: list[FixtureState] | None = None) -> None:
        """Arm the restored fixtures' timers, a chunk per loop iteration: the server answers
        meanwhile (every entry point settles its fixture first), and a restored hot fixture is
        hot again without a second alert for it."""
        if pending is None:
            pending = list(self._fixtures.values())
        now = self._clock.monotonic()
        wall = self._clock.to_wall(now)
        threshold = self._alerts.threshold
        for fx in pending[-RESTORE_CHUNK:]:
            if self._fixtures.get(fx.fixture_id) is not fx:
                continue
            self._settle(fx, now)
            if len(fx.window) >= threshold and not fx.hot:
                fx.hot = True
                self._alerts.restore(fx.fixture_id, wall)
            self._reschedule(fx, now)
        del pending[-RESTORE_CHUNK:]
        if pending:
            asyncio.get_running_loop().call_soon(self._start, pending)
        if self._dirty:
            self._schedule_flush()

    # -- Stats -----------------------------------------------------------------------------

    async def stats(self, view: StatsView) -> StatsSnapshot:
        return (await self.snapshots([view]))[0]

    async def snapshots(self, views: Sequence[StatsView]) -> list[StatsSnapshot]:
        """One snapshot per view, all exact at one moment: the hottest come from one ranking
        (HeatRanking, cost independent of the fixtures tracked), and each row is built once
        however many views show it."""
        top = max((v.top_n for v in views if not v.fixture_ids), default=0)
        if top:
            now, hottest = await self._ranking.hottest(top)
        else:
            now, hottest = self._clock.monotonic(), []
        fixtures = self._fixtures
        rows = {f: self._fixture_stats(fixtures.get(f), f, now) for f in hottest}
        ranked = list(rows.values())
        for view in views:
            for f in view.fixture_ids:
                if f not in rows:
                    rows[f] = self._fixture_stats(fixtures.get(f), f, now)
        alerts = self._alerts.active(
            lambda f: fixtures[f].window.count_at(now) if f in fixtures else 0
        )
        totals = Totals(
            fixtures_tracked=len(fixtures),
            calls_total=self._calls_total,
            rejected_total=self._rejected_total,
            queue_depth=self._queue_depth,
            in_flight=self._in_flight,
            abandoned_total=self._abandoned_total,
        )
        generated_at = self._clock.to_wall(now)
        scheduled_warmings = self._warming_board.listed(generated_at)
        return [
            StatsSnapshot(
                generated_at=generated_at,
                fixtures=sorted((rows[f] for f in view.fixture_ids), key=FixtureStats.heat_key)
                if view.fixture_ids
                else ranked[: view.top_n],
                totals=totals,
                alerts=alerts,
                scheduled_warmings=scheduled_warmings,
            )
            for view in views
        ]

    async def announce_warmings(
        self,
        announcer: str,
        warmings: Sequence[ScheduledWarming],
        ttl: float | None = None,
        *,
        caller: str = "",
    ) -> float:
        now = self._clock.to_wall(self._clock.monotonic())
        return self._warming_board.announce(caller, announcer, warmings, ttl, now)

    def _heat(self, fixture_ids: Iterable[str], now: float) -> list[HeatEntry]:
        """The ranking's measure: each tracked fixture's heat at `now`."""
        get = self._fixtures.get
        entries: list[HeatEntry] = []
        for fixture_id in fixture_ids:
            fx = get(fixture_id)
            if fx is not None:
                entries.append((heat(fx.window.count_at(now), fx.queue_depth()), fixture_id))
        return entries

    def _fixture_stats(self, fx: FixtureState | None, fixture_id: str, now: float) -> FixtureStats:
        policy = self._policy
        if fx is None:
            fx = FixtureState(fixture_id)  # untracked: every count is zero
        calls = fx.window.count_at(now)
        return FixtureStats(
            fixture_id=fixture_id,
            calls_in_window=calls,
            calls_total=fx.calls_total,
            queue_depth=fx.queue_depth(),
            queue_capacity=policy.queue,
            rejected_total=fx.rejected_total,
            in_flight=fx.in_flight,
            limit=policy.limit,
            window=policy.window,
            utilization=calls / policy.limit,
            hot=fx.hot,
            paused_until=self._clock.to_wall(fx.paused_until) if fx.paused_until > now else None,
            abandoned_total=fx.abandoned_total,
            expected_hold=self._hold(fx),
            warming=fx.warming_until > now,
        )

    def subscribe_alerts(self, listener: AlertListener) -> Callable[[], None]:
        return self._alerts.subscribe(listener)

    def set_alert_ratio(self, alert_ratio: float) -> None:
        """A new alert ratio, live (SIGHUP): fixtures are judged by it from their next change."""
        self._policy = dataclasses.replace(self._policy, alert_ratio=alert_ratio)
        self._alerts.threshold = self._policy.raise_at
        self._alerts.clear_below = self._policy.clear_below

    # -- Shutdown --------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for fx in self._fixtures.values():
            if fx.timer is not None:
                fx.timer.cancel()
                fx.timer = None
            if fx.waiters is not None:
                for waiter in fx.waiters:
                    if not waiter.future.done():
                        waiter.future.set_exception(ShuttingDown(SHUTDOWN_RETRY_AFTER))
                self._queue_emptied(fx)
        self._queue_depth = 0
        self._caller_waiters.clear()
        self._leases.close()
        # Summaries still counting are written now, not lost with the process.
        self._abandoned_log.flush()
        self._paused_log.flush()
        if self._dirty:
            self._flush()  # what changed last is kept too
