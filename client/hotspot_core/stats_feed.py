"""StatsFeed: snapshots streamed to many subscribers, one ranking per tick for all of them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from hotspot_core.alerts import Alert
from hotspot_core.backend import PermitBackend
from hotspot_core.errors import CapacityReached, InvalidArgument
from hotspot_core.stats import MAX_FIXTURE_IDS, StatsSnapshot, StatsView

MIN_INTERVAL = 0.1
DEFAULT_INTERVAL = 1.0
MAX_PENDING_ALERTS = 1000
"""Alert events kept for subscribers that are not reading; older ones are dropped."""
DEFAULT_MAX_SUBSCRIBERS = 256
DEFAULT_MAX_SUBSCRIBERS_PER_CALLER = 64


def check_interval(seconds: float) -> float:
    """The rule on a stream's interval, for every transport that offers one."""
    if not seconds >= MIN_INTERVAL:  # also catches NaN
        raise InvalidArgument(
            f"interval must be at least {MIN_INTERVAL * 1000:g} ms, got {seconds * 1000:g} ms",
            field="interval",
        )
    return seconds


@dataclass(frozen=True, slots=True)
class StatsCaps:
    """What stats readers may cost: subscriptions open at once, and fixtures named per view."""

    max_subscribers: int = DEFAULT_MAX_SUBSCRIBERS
    max_subscribers_per_caller: int = DEFAULT_MAX_SUBSCRIBERS_PER_CALLER
    max_fixture_ids: int = MAX_FIXTURE_IDS

    def __post_init__(self) -> None:
        if self.max_subscribers < 0 or self.max_subscribers_per_caller < 0:
            raise ValueError("subscriber caps must be 0 or more")
        if not 1 <= self.max_fixture_ids <= MAX_FIXTURE_IDS:
            raise ValueError(f"max_fixture_ids must be from 1 to {MAX_FIXTURE_IDS}")


class TooManySubscribers(CapacityReached):
    """Every subscription this server (or this caller) may hold is open."""

    reason = "TOO_MANY_SUBSCRIBERS"

    def __init__(self, *, scope: str, limit: int) -> None:
        whose = "this server" if scope == "server" else "one caller"
        super().__init__(
            f"{whose} may hold at most {limit} stats subscriptions at once; "
            "close one or poll Stats instead",
            scope=scope,
            limit=limit,
        )


class StatsSubscription:
    """One subscriber's mailbox: the latest snapshot of its view, plus the alert events
    published since its last read.

    Publishing never waits for the subscriber, so a subscriber that stops
    reading delays no one: it simply skips to the newest snapshot.
    """

    def __init__(self, view: StatsView, alert_log: AlertLog, caller: str = "") -> None:
        self.view = view
        self.caller = caller
        self._named = frozenset(view.fixture_ids)
        self._alert_log = alert_log
        self._cursor = alert_log.end
        self._latest: StatsSnapshot | None = None
        self._ready = asyncio.Event()
        self._closed = False

    def publish(self, snapshot: StatsSnapshot) -> None:
        self._latest = snapshot
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def next(self) -> StatsSnapshot | None:
        """The next snapshot, or None once the feed has closed."""
        await self._ready.wait()
        self._ready.clear()
        if self._closed or self._latest is None:
            return None
        events, self._cursor = self._alert_log.since(self._cursor)
        if self._named:
            events = [a for a in events if a.fixture_id in self._named]
        return replace(self._latest, alert_events=events)

    def __aiter__(self) -> AsyncIterator[StatsSnapshot]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StatsSnapshot]:
        while (snapshot := await self.next()) is not None:
            yield snapshot


class AlertLog:
    """Alert events in order, shared by every subscriber: recording one is O(1) however many
    subscribe, and each reader takes what came after its cursor (the newest `keep` at most)."""

    def __init__(self, keep: int = MAX_PENDING_ALERTS) -> None:
        self._keep = keep
        self._events: list[Alert] = []
        self._start = 0
        """Sequence number of _events[0]."""

    @property
    def end(self) -> int:
        """Sequence number of the next event."""
        return self._start + len(self._events)

    def record(self, alert: Alert) -> None:
        self._events.append(alert)
        if len(self._events) >= 2 * self._keep:  # drop in halves: O(1) per event over time
            del self._events[: -self._keep]
            self._start = self.end - self._keep

    def since(self, cursor: int) -> tuple[list[Alert], int]:
        """The events from `cursor` on that are still kept, and the cursor to read next."""
        first = max(cursor - self._start, len(self._events) - self._keep, 0)
        return self._events[first:], self.end


@dataclass(eq=False)
class _Ticker:
    """Every subscriber with one interval: one backend call per tick serves all their views."""

    task: asyncio.Task[None] | None = None
    subscribers: set[StatsSubscription] = field(default_factory=set)
    latest: dict[StatsView, StatsSnapshot] = field(default_factory=dict)


class StatsFeed:
    """Runs one ticker per interval. Each tick asks the backend for the snapshots of every
    distinct view at once (one ranking, each row built once); subscribers of one view share
    its snapshot. Caps bound the subscribers per server and per caller, and ids per view."""

    def __init__(self, backend: PermitBackend, caps: StatsCaps | None = None) -> None:
        self._backend = backend
        self.caps = caps or StatsCaps()
        self._tickers: dict[float, _Ticker] = {}
        self._per_caller: dict[str, int] = {}
        self._subscribers = 0
        self._closed = False
        self._alert_log = AlertLog()
        # The backend tells listeners after the Acquire that raised the alert, in a later loop
        # step; recording it here is O(1), whatever the number of subscribers.
        self._unsubscribe = backend.subscribe_alerts(self._alert_log.record)

    def subscriber_count(self) -> int:
        return self._subscribers

    def check_view(self, view: StatsView) -> StatsView:
        """The view if it names no more fixtures than this server allows; else InvalidArgument."""
        limit = self.caps.max_fixture_ids
        if len(view.fixture_ids) > limit:
            raise InvalidArgument(
                f"fixture_ids may name at most {limit} fixtures, got {len(view.fixture_ids)}",
                field="fixture_ids",
            )
        return view

    @contextlib.asynccontextmanager
    async def subscribe(
        self, view: StatsView, interval: float = DEFAULT_INTERVAL, caller: str = ""
    ) -> AsyncIterator[StatsSubscription]:
        """A subscription whose first snapshot is ready at once, then one per interval.

        `caller` names who subscribes (the authenticated caller, else whatever the transport
        can tell): each caller may hold max_subscribers_per_caller subscriptions at once.
        """
        check_interval(interval)
        self.check_view(view)
        self._admit(caller)
        subscription = StatsSubscription(view, self._alert_log, caller)
        ticker = self._tickers.get(interval)
        if ticker is None:
            ticker = self._tickers[interval] = _Ticker()
            ticker.task = asyncio.create_task(self._tick(interval, ticker))
        ticker.subscribers.add(subscription)
        try:
            if self._closed:
                subscription.close()
            else:
                # A subscriber joining a running ticker starts from its view's latest snapshot
                # (at most one interval old), so that many joining at once cost one snapshot.
                snapshot = ticker.latest.get(view)
                if snapshot is None:
                    snapshot = ticker.latest[view] = await self._backend.stats(view)
                subscription.publish(snapshot)
            yield subscription
        finally:
            ticker.subscribers.discard(subscription)
            self._leave(caller)
            if not ticker.subscribers and self._tickers.get(interval) is ticker:
                del self._tickers[interval]
                if ticker.task is not None:
                    ticker.task.cancel()

    def _admit(self, caller: str) -> None:
        caps = self.caps
        if self._subscribers >= caps.max_subscribers:
            raise TooManySubscribers(scope="server", limit=caps.max_subscribers)
        held = self._per_caller.get(caller, 0)
        if held >= caps.max_subscribers_per_caller:
            raise TooManySubscribers(scope="caller", limit=caps.max_subscribers_per_caller)
        self._per_caller[caller] = held + 1
        self._subscribers += 1

    def _leave(self, caller: str) -> None:
        self._subscribers -= 1
        held = self._per_caller[caller] - 1
        if held:
            self._per_caller[caller] = held
        else:
            del self._per_caller[caller]

    async def _tick(self, interval: float, ticker: _Ticker) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + interval
        while True:
            await asyncio.sleep(due - loop.time())
            views = list({s.view: None for s in ticker.subscribers})
            snapshots = await self._backend.snapshots(views)
            ticker.latest = dict(zip(views, snapshots, strict=True))
            for subscription in list(ticker.subscribers):
                snapshot = ticker.latest.get(subscription.view)
                if snapshot is not None:  # else it joined during this tick, with its own
                    subscription.publish(snapshot)
            due += interval
            if due < loop.time():  # ran late: skip the missed beats instead of bursting
                due = loop.time() + interval

    async def close(self) -> None:
        """End every subscription (their streams finish cleanly)."""
        if self._closed:
            return
        self._closed = True
        self._unsubscribe()
        for ticker in list(self._tickers.values()):
            if ticker.task is not None:
                ticker.task.cancel()
            for subscription in ticker.subscribers:
                subscription.close()
