"""The Redis backend against MemoryBackend, the reference: random operation sequences (acquires
with budgets, releases with each outcome, cancellations, time steps past deadlines and lease
ends) run on both at the same manual times, and every answer and counter must agree."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from hotspot_core.errors import PermitError, PermitRefused, WaitTooLong
from hotspot_core.grants import Grant, Outcome
from hotspot_core.memory import MemoryBackend
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsView
from hotspot_server.redis_backend import RedisBackend
from hotspot_server.redis_backend.keys import CLUSTER_SHARDS, KeyLayout
from tests.redis_server import RedisClusterNodes, RedisServer

POLICY = PermitPolicy(
    limit=3,
    window=1.0,
    queue=3,
    lease=2.0,
    max_wait=5.0,
    max_fixtures=3,
    max_fixtures_per_caller=2,
    max_waiters_per_caller=3,
    max_upstream_pause=1.5,
    alert_ratio=0.6,
)
FIXTURES = ("a", "b", "c", "d")
ONE_SHARD = tuple(f"m{i}" for i in range(200) if KeyLayout(CLUSTER_SHARDS).shard_of(f"m{i}") == 0)[
    :4
]
CALLERS = ("", "x", "y")
SEEDS = 40
CLUSTER_SEEDS = 4
STEPS = 70


class ManualClock:
    """A clock only the test moves; MemoryBackend's timers fire when it passes them."""

    clock_id = "manual"

    def __init__(self) -> None:
        self.now = 1000.0
        self._timers: list[tuple[float, int, _Timer]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def to_wall(self, monotonic: float) -> float:
        return monotonic

    def call_at(self, when: float, callback: Callable[..., None], *args: Any) -> _Timer:
        timer = _Timer(when, callback, args)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    def next_timer(self) -> float:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else math.inf

    def fire_due(self) -> None:
        while self.next_timer() <= self.now:
            _, _, timer = heapq.heappop(self._timers)
            timer.callback(*timer.args)


@dataclass
class _Timer:
    at: float
    callback: Callable[..., None]
    args: tuple[Any, ...]
    cancelled: bool = False

    def when(self) -> float:
        return self.at

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class Pair:
    """One request made to both backends."""

    caller: str
    memory: asyncio.Task[Grant]
    redis: asyncio.Task[Grant]
    released: bool = False


@dataclass
class Run:
    clock: ManualClock
    memory: MemoryBackend
    redis: RedisBackend
    fixtures: tuple[str, ...] = FIXTURES
    pairs: list[Pair] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    async def quiet(self) -> None:
        """Let both backends answer whatever the current time allows."""
        for _ in range(3):
            await asyncio.sleep(0)
        await self.redis.poll_waiters()
        for _ in range(3):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time on, stopping at every moment either backend has a change due."""
        target = self.clock.now + seconds
        while True:
            redis_next = self.clock.now + await self.redis.sweep()
            at = min(self.clock.next_timer(), redis_next)
            if at > target:
                break
            self.clock.now = max(at, self.clock.now)
            self.clock.fire_due()
            await self.redis.sweep()
            await self.quiet()
        self.clock.now = target
        self.clock.fire_due()
        await self.redis.sweep()
        await self.quiet()


def outcome(task: asyncio.Task[Grant]) -> tuple[Any, ...]:
    """What a request got, in terms both backends share (permit ids differ)."""
    if not task.done():
        return ("waiting",)
    if task.cancelled():
        return ("cancelled",)
    error = task.exception()
    if error is None:
        g = task.result()
        return ("granted", g.granted_at, g.waited, g.queue_position, g.remaining)
    if isinstance(error, PermitRefused):
        refusal: tuple[Any, ...] = (
            error.reason,
            round(error.retry_after, 9),
            round(error.estimated_wait, 9),
            error.queue_depth,
            round(error.paused_for, 9),
        )
        if isinstance(error, WaitTooLong):
            refusal += (error.expired, round(error.budget, 9))
        return refusal
    return (type(error).__name__, str(error))


async def compare_state(run: Run) -> None:
    view = StatsView(fixture_ids=run.fixtures)
    memory, redis = await run.memory.stats(view), await run.redis.stats(view)

    def rows(snapshot: Any) -> list[tuple[Any, ...]]:
        return [
            (
                f.fixture_id,
                f.calls_in_window,
                f.calls_total,
                f.queue_depth,
                f.rejected_total,
                f.in_flight,
                f.abandoned_total,
                f.hot,
                f.paused_until,
                round(f.expected_hold, 9),
                f.warming,
            )
            for f in snapshot.fixtures
        ]

    assert rows(redis) == rows(memory), "\n".join(run.log)
    assert redis.totals == memory.totals, "\n".join(run.log)
    assert sorted(a.fixture_id for a in redis.alerts) == sorted(
        a.fixture_id for a in memory.alerts
    ), "\n".join(run.log)


async def step(run: Run, rng: random.Random) -> None:
    op = rng.choices(["acquire", "release", "cancel", "advance"], weights=[5, 4, 1, 3])[0]
    if op == "acquire":
        fixture_id, caller = rng.choice(run.fixtures), rng.choice(CALLERS)
        budget = rng.choice([0.0, 0.4, 1.5, 3.0, math.inf])
        # A few request ids come back: a request id in flight gets its grant again.
        request_id = rng.choice(["", "", "", "r1", "r2"])
        warming = rng.random() < 0.2
        run.log.append(
            f"t={run.clock.now:.3f} acquire {fixture_id} {caller!r} budget={budget} "
            f"request_id={request_id!r} warming={warming}"
        )
        asks = {"budget": budget, "caller": caller, "request_id": request_id, "warming": warming}
        pair = Pair(
            caller,
            asyncio.ensure_future(run.memory.acquire(fixture_id, **asks)),  # type: ignore[arg-type]
            asyncio.ensure_future(run.redis.acquire(fixture_id, **asks)),  # type: ignore[arg-type]
        )
        waiting = run.redis.waiters_here()
        run.pairs.append(pair)
        # The acquire script's answer (a grant, a refusal or a ticket) has no event to wait on.
        while not pair.redis.done() and run.redis.waiters_here() == waiting:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        await run.quiet()
    elif op == "release":
        granted = [p for p in run.pairs if outcome(p.memory)[0] == "granted"]
        if not granted:
            return
        pair = rng.choice(granted)
        how = rng.choice(list(Outcome))
        retry_after = rng.choice([None, 0.5, 3.0])
        caller = pair.caller if rng.random() > 0.1 else "intruder"
        run.log.append(f"t={run.clock.now:.3f} release {how} {retry_after} by {caller!r}")
        answers: list[tuple[Any, ...]] = []
        for backend, task in ((run.memory, pair.memory), (run.redis, pair.redis)):
            try:
                released = await backend.release(
                    task.result().permit_id, how, retry_after, caller=caller
                )
                answers.append(("released", released))
            except PermitError as error:
                answers.append((error.reason,))
        assert answers[0] == answers[1], "\n".join(run.log)
        await run.quiet()
    elif op == "cancel":
        queued = [p for p in run.pairs if not p.memory.done()]
        if not queued:
            return
        pair = rng.choice(queued)
        run.log.append(f"t={run.clock.now:.3f} cancel a waiter")
        pair.memory.cancel()
        pair.redis.cancel()
        await run.quiet()
    else:
        seconds = rng.choice([0.05, 0.3, 0.7, 1.0, 2.5])
        run.log.append(f"t={run.clock.now:.3f} advance {seconds}")
        await run.advance(seconds)
    for i, pair in enumerate(run.pairs):
        assert outcome(pair.redis) == outcome(pair.memory), f"request {i}\n" + "\n".join(run.log)
    await compare_state(run)


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.redis_server import redis_server_missing

    missing = redis_server_missing()
    if missing:
        pytest.skip(missing)
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.mark.parametrize("seed", range(SEEDS))
async def test_redis_backend_agrees_with_memory(shared_redis: RedisServer, seed: int) -> None:
    await agree(shared_redis.url, seed)


@pytest.mark.parametrize("seed", range(CLUSTER_SEEDS))
async def test_redis_cluster_backend_agrees_with_memory(
    redis_cluster: RedisClusterNodes, seed: int
) -> None:
    """The same on a three-node Cluster, its fixtures split into CLUSTER_SHARDS shards, so the
    fleet-wide caps (max_fixtures, per caller) go through the fleet ledger. The fixtures here
    share one shard, as the server-wide hold is the shard's in a Cluster (README); the other
    shards stay empty but are merged into every overview, and the shard is on one node among
    three. Odd seeds cap each caller at one waiter, so that CALLER_QUEUE_FULL comes up."""
    redis_cluster.flush()
    policy = replace(POLICY, max_waiters_per_caller=1) if seed % 2 else POLICY
    await agree(redis_cluster.url, seed, ONE_SHARD, shards=CLUSTER_SHARDS, policy=policy)


async def agree(
    url: str,
    seed: int,
    fixtures: tuple[str, ...] = FIXTURES,
    *,
    shards: int = 1,
    policy: PermitPolicy = POLICY,
) -> None:
    """One random sequence of SEED's on both backends, compared after every step."""
    clock = ManualClock()
    memory = MemoryBackend(policy, clock=clock)
    redis = RedisBackend(
        url,
        policy,
        now=clock.monotonic,
        call_timeout=2.0,
        ticket_lease=math.inf,
        background=False,
        shards=shards,
    )
    await redis._redis.flushall()
    run = Run(clock, memory, redis, fixtures)
    rng = random.Random(seed)
    try:
        for _ in range(STEPS):
            await step(run, rng)
        await run.advance(POLICY.lease + POLICY.window + 1)
        await compare_state(run)
    finally:
        for pair in run.pairs:
            pair.memory.cancel()
            pair.redis.cancel()
        await memory.close()
        await redis.close()
