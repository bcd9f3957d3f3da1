"""StatsFeed: snapshots streamed to many subscribers, one computation per tick."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from hotspot_core.alerts import Alert
from hotspot_core.backend import PermitBackend
from hotspot_core.errors import InvalidArgument
from hotspot_core.stats import StatsSnapshot, StatsView

MIN_INTERVAL = 0.1
DEFAULT_INTERVAL = 1.0
MAX_PENDING_ALERTS = 1000
"""Alert events kept for a subscriber that is not reading; older ones are dropped."""


def check_interval(seconds: float) -> float:
    """The rule on a stream's interval, for every transport that offers one."""
    if not seconds >= MIN_INTERVAL:  # also catches NaN
        raise InvalidArgument(
            f"interval must be at least {MIN_INTERVAL * 1000:g} ms, got {seconds * 1000:g} ms",
            field="interval",
        )
    return seconds


class StatsSubscription:
    """One subscriber's mailbox: the latest snapshot, plus alert events since its last read.

    Publishing never waits for the subscriber, so a subscriber that stops
    reading delays no one: it simply skips to the newest snapshot.
    """

    def __init__(self, view: StatsView) -> None:
        self.view = view
        self._latest: StatsSnapshot | None = None
        self._events: deque[Alert] = deque(maxlen=MAX_PENDING_ALERTS)
        self._ready = asyncio.Event()
        self._closed = False

    def publish(self, snapshot: StatsSnapshot) -> None:
        self._latest = snapshot
        self._ready.set()

    def note_alert(self, alert: Alert) -> None:
        if not self.view.fixture_ids or alert.fixture_id in self.view.fixture_ids:
            self._events.append(alert)

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def next(self) -> StatsSnapshot | None:
        """The next snapshot, or None once the feed has closed."""
        await self._ready.wait()
        self._ready.clear()
        if self._closed or self._latest is None:
            return None
        events = list(self._events)
        self._events.clear()
        return replace(self._latest, alert_events=events)

    def __aiter__(self) -> AsyncIterator[StatsSnapshot]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StatsSnapshot]:
        while (snapshot := await self.next()) is not None:
            yield snapshot


@dataclass(eq=False)
class _Ticker:
    task: asyncio.Task[None] | None = None
    subscribers: set[StatsSubscription] = field(default_factory=set)
    latest: StatsSnapshot | None = None


class StatsFeed:
    """Runs one ticker per distinct (interval, view); subscribers with equal requests share it,
    and every tick computes one snapshot for all of them."""

    def __init__(self, backend: PermitBackend) -> None:
        self._backend = backend
        self._tickers: dict[tuple[float, StatsView], _Ticker] = {}
        self._closed = False
        self._unsubscribe = backend.subscribe_alerts(self._on_alert)

    def subscriber_count(self) -> int:
        return sum(len(t.subscribers) for t in self._tickers.values())

    @contextlib.asynccontextmanager
    async def subscribe(
        self, view: StatsView, interval: float = DEFAULT_INTERVAL
    ) -> AsyncIterator[StatsSubscription]:
        """A subscription whose first snapshot is ready at once, then one per interval."""
        check_interval(interval)
        subscription = StatsSubscription(view)
        key = (interval, view)
        ticker = self._tickers.get(key)
        if ticker is None:
            ticker = self._tickers[key] = _Ticker()
            ticker.task = asyncio.create_task(self._tick(interval, view, ticker))
        if self._closed:
            subscription.close()
        else:
            # A subscriber joining a running ticker starts from its latest snapshot (at most
            # one interval old), so that many joining at once cost no extra snapshots.
            if ticker.latest is None:
                ticker.latest = await self._backend.stats(view)
            subscription.publish(ticker.latest)
        ticker.subscribers.add(subscription)
        try:
            yield subscription
        finally:
            ticker.subscribers.discard(subscription)
            if not ticker.subscribers and self._tickers.get(key) is ticker:
                del self._tickers[key]
                if ticker.task is not None:
                    ticker.task.cancel()

    async def _tick(self, interval: float, view: StatsView, ticker: _Ticker) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + interval
        while True:
            await asyncio.sleep(due - loop.time())
            snapshot = ticker.latest = await self._backend.stats(view)
            for subscription in ticker.subscribers:
                subscription.publish(snapshot)
            due += interval
            if due < loop.time():  # ran late: skip the missed beats instead of bursting
                due = loop.time() + interval

    def _on_alert(self, alert: Alert) -> None:
        for ticker in self._tickers.values():
            for subscription in ticker.subscribers:
                subscription.note_alert(alert)

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
