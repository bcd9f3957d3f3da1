"""The load generator's engine: permits asked for at a planned rate through a PermitClient, and
a log of what each one got, in the machine's monotonic clock (one time base for every process
of a boot, so logs of several load processes merge as they are)."""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hotspot_client import PermitClient
from hotspot_client.errors import PermitError, RateLimitExceeded


@dataclass
class LoadLog:
    """Every request's fate: the generator's ground truth. Columns, not objects: a full-budget
    minute is 500,000 grants."""

    fixtures: list[str]
    grant_fixture: array[int] = field(default_factory=lambda: array("i"))
    sent_at: array[float] = field(default_factory=lambda: array("d"))
    """When the acquire was asked for (its first attempt)."""
    granted_at: array[float] = field(default_factory=lambda: array("d"))
    """When the grant reached the generator: the call may go upstream from then."""
    released_at: array[float] = field(default_factory=lambda: array("d"))
    """When the release was sent: the call is over by then."""
    waited: array[float] = field(default_factory=lambda: array("d"))
    """The server's own figure: seconds in the queue."""
    queued: array[int] = field(default_factory=lambda: array("b"))
    """1 when the grant came from the queue (queue_position > 0)."""
    refused_fixture: array[int] = field(default_factory=lambda: array("i"))
    refused_at: array[float] = field(default_factory=lambda: array("d"))
    refused_reason: list[str] = field(default_factory=list)
    retry_after: array[float] = field(default_factory=lambda: array("d"))
    retried: list[tuple[float, float, int]] = field(default_factory=list)
    """Each caller that honoured a retry_delay and was granted in the end: (the first promised
    retry_after, the actual wait from that refusal to the grant, retries it took)."""
    retrying: int = 0
    """Callers refused that waited their retry_delay to ask again."""
    retries_refused_again: int = 0
    """Retries refused once more: each means a promise not kept (or other traffic took it)."""
    errors: list[str] = field(default_factory=list)
    """Anything but a grant or a refusal (unavailable, not found): named, never hidden."""
    skipped: int = 0
    """Requests the plan held back because max_in_flight were already out."""

    def grant(self, fixture: int, sent: float, granted: float, waited: float, queued: bool) -> int:
        self.grant_fixture.append(fixture)
        self.sent_at.append(sent)
        self.granted_at.append(granted)
        self.released_at.append(granted)  # until the release is sent
        self.waited.append(waited)
        self.queued.append(1 if queued else 0)
        return len(self.granted_at) - 1

    def refusal(self, fixture: int, at: float, error: RateLimitExceeded) -> None:
        self.refused_fixture.append(fixture)
        self.refused_at.append(at)
        self.refused_reason.append(error.reason)
        self.retry_after.append(error.retry_after)

    def merge(self, other: LoadLog) -> None:
        """Appends another process's log over the same fixture list."""
        for name in (
            "grant_fixture", "sent_at", "granted_at", "released_at", "waited", "queued",
            "refused_fixture", "refused_at", "retry_after",
        ):  # fmt: skip
            getattr(self, name).extend(getattr(other, name))
        self.refused_reason += other.refused_reason
        self.retried += other.retried
        self.retrying += other.retrying
        self.retries_refused_again += other.retries_refused_again
        self.errors += other.errors
        self.skipped += other.skipped


class Meter:
    """Running counts for the progress line and the over-time plots: per second, the grants,
    the refusals and the p99 of grant latency (time from asking to the grant)."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.grants = 0
        self.refusals = 0
        self.in_flight = 0
        self._latencies: list[float] = []
        self.per_second: list[tuple[float, int, int, float]] = []
        """(seconds since start, grants, refusals, p99 ms) of each closed second."""
        self._second_grants = self._second_refusals = 0

    def granted(self, latency: float) -> None:
        self.grants += 1
        self._second_grants += 1
        self._latencies.append(latency)

    def refused(self) -> None:
        self.refusals += 1
        self._second_refusals += 1

    def close_second(self, now: float) -> tuple[float, int, int, float]:
        self._latencies.sort()
        latencies = self._latencies
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0
        entry = (now - self.start, self._second_grants, self._second_refusals, p99 * 1000)
        self.per_second.append(entry)
        self._latencies = []
        self._second_grants = self._second_refusals = 0
        return entry


@dataclass(frozen=True)
class Plan:
    """What one generator asks for: `rate` acquires per second (open loop: on schedule, whatever
    the answers) for `seconds`, fixtures taken in turn; or, with rate None, `burst` acquires all
    at once. Each grant is held `hold` seconds and released SUCCESS."""

    fixture_ids: Sequence[str]
    seconds: float = 0.0
    rate: float | None = None
    burst: int = 0
    max_wait: float | None = None
    hold: float = 0.0
    honour_retry: bool = False
    """A refused caller waits its retry_delay and asks again, until it is granted or the plan's
    time is up."""
    max_in_flight: int = 20_000


async def drive(
    client: PermitClient,
    plan: Plan,
    log: LoadLog,
    meter: Meter,
    on_second: Callable[[tuple[float, int, int, float]], None] | None = None,
) -> None:
    """Runs the plan to its end, every request answered (or its caller's own deadline passed)."""
    loop = asyncio.get_running_loop()
    fixture_ids = plan.fixture_ids
    end = meter.start + plan.seconds
    tasks: set[asyncio.Task[None]] = set()

    async def ask(fixture: int) -> None:
        sent = time.monotonic()
        promised = first_refusal = None
        retries = 0
        meter.in_flight += 1
        try:
            while True:
                try:
                    permit = await client.acquire(fixture_ids[fixture], max_wait=plan.max_wait)
                except RateLimitExceeded as error:
                    now = time.monotonic()
                    log.refusal(fixture, now, error)
                    meter.refused()
                    if not plan.honour_retry or now + error.retry_after > end:
                        return
                    if promised is None:
                        promised, first_refusal = error.retry_after, now
                        log.retrying += 1
                    else:
                        log.retries_refused_again += 1
                    retries += 1
                    await asyncio.sleep(error.retry_after)
                    continue
                break
            granted = time.monotonic()
            meter.granted(granted - sent)
            index = log.grant(fixture, sent, granted, permit.waited, permit.queue_position > 0)
            if promised is not None and first_refusal is not None:
                log.retried.append((promised, granted - first_refusal, retries))
            if plan.hold:
                await asyncio.sleep(plan.hold)
            log.released_at[index] = time.monotonic()
            await client.release(permit)
        except PermitError as error:
            log.errors.append(f"{type(error).__name__}: {error.message}")
        finally:
            meter.in_flight -= 1

    def start(fixture: int) -> None:
        if meter.in_flight >= plan.max_in_flight:
            log.skipped += 1
            return
        task = loop.create_task(ask(fixture))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def tick_seconds() -> None:
        next_second = meter.start + 1
        while True:
            await asyncio.sleep(max(0.0, next_second - time.monotonic()))
            entry = meter.close_second(time.monotonic())
            if on_second is not None:
                on_second(entry)
            next_second += 1

    ticker = loop.create_task(tick_seconds())
    try:
        if plan.rate is None:
            for i in range(plan.burst):
                start(i % len(fixture_ids))
        else:
            launched = 0
            while (now := time.monotonic()) < end:
                due = int((now - meter.start) * plan.rate)
                for i in range(launched, due):
                    start(i % len(fixture_ids))
                launched = max(launched, due)
                await asyncio.sleep(0.005)  # the loop's own granularity sets the batch size
        while tasks:
            await asyncio.wait(set(tasks))
    finally:
        ticker.cancel()
        last = meter.per_second[-1][0] if meter.per_second else 0.0
        if time.monotonic() - meter.start - last > 0.1:  # the last, partial second
            entry = meter.close_second(time.monotonic())
            if on_second is not None:
                on_second(entry)
