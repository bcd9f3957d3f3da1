"""RedisBackend: the permit rules of MemoryBackend, with the state in one Redis shared by replicas.

Each operation is one Lua script (the *.lua files beside this module: common.lua, a port of
hotspot_core's window, hold-time and queue rules, then the operation's own file), run
atomically on one fixture's keys, so arrival order is the order Redis saw the requests in and
no replica's clock matters: time is Redis's `TIME`. An uncontended Acquire is one round trip.

Queued requests are tickets in Redis, in order. Whatever script grants a ticket stores the
answer and publishes the fixture's id to the channel of the replica holding the caller; that
replica then polls the fixture (one more round trip) and answers its caller. A lost message
only delays an answer: each replica keeps one timer per fixture it has waiters on, armed for
the fixture's next change and at most HEARTBEAT away; its poll also renews its tickets' lease,
so the tickets of a replica that died expire within TICKET_LEASE and the queue moves on. One
sweep per replica settles fixtures whose next change has come (lease ends, cool-downs, idle
fixtures), so the fleet's state moves on however many replicas die.

With several shards (a Redis Cluster), the fleet-wide caps (--max-fixtures, per caller) are
counted in one fleet ledger (ledger.lua): an Acquire that would track a new fixture or queue a
new waiter reserves the count there first, then runs its shard's script again with the
reservation; counts that shards lower reach the ledger through their outboxes, drained by any
replica; a reservation whose replica died before its shard saw it is revoked after a grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import math
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import replace
from typing import Any, NoReturn

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import (
    ClusterError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hotspot_core.alerts import Alert, AlertListener, AlertState
from hotspot_core.errors import (
    BackendUnavailable,
    CallerQueueFull,
    InvalidArgument,
    PermitNotFound,
    PermitRefused,
    QueueFull,
    ShuttingDown,
    TooManyFixtures,
    WaitTooLong,
)
from hotspot_core.fixture_id import check_fixture_id
from hotspot_core.grants import Grant, Outcome
from hotspot_core.leases import RELEASED_REMEMBERED
from hotspot_core.memory import SHUTDOWN_RETRY_AFTER
from hotspot_core.policy import PermitPolicy
from hotspot_core.request_id import check_request_id
from hotspot_core.request_rules import check_acquire, check_release
from hotspot_core.stats import FixtureStats, StatsSnapshot, StatsView, Totals
from hotspot_core.warming_board import ScheduledWarming
from hotspot_server.redis_backend.breaker import CircuitBreaker
from hotspot_server.redis_backend.connection import open_clients
from hotspot_server.redis_backend.keys import KeyLayout
from hotspot_server.redis_backend.scripts import script_text
from hotspot_server.redis_backend.warming_board import RedisWarmingBoard

logger = logging.getLogger("hotspot.redis")
alert_logger = logging.getLogger("hotspot.alerts")

CALL_TIMEOUT = 0.1
"""Seconds any Redis call may take before the replica gives up on it (fail closed)."""
HEARTBEAT = 0.5
"""A replica with waiters on a fixture looks at it at least this often (and renews its tickets)."""
TICKET_LEASE = 2.0
"""A ticket not renewed for this long belongs to a dead replica: it leaves the queue."""
SWEEP_EVERY = 1.0
"""Longest pause of a replica's sweep for fixtures whose next change has come."""
SWEEP_BATCH = 200
WRITE_PROBE_MS = 60_000
"""How long the key a sweep writes to probe a Redis that refused writes lives."""
RESERVATION_GRACE = 5.0
"""A fleet reservation still pending after this long is revoked (its replica may have died
before its shard saw it): well past a call's timeout, so a live Acquire rarely loses one."""
RESERVATION_TTL = 120.0
"""Seconds a shard remembers a reservation it used or refused; the ledger gives back a refused
one only while it is younger than half this (else the shard may have forgotten it used it)."""
RESERVE_ATTEMPTS = 4
"""Shard scripts one Acquire may run while the fixture keeps changing under its reservations."""
RANKING_SLACK = 50
"""Candidates looked at beyond top_n: the stored heat is as of each fixture's last change."""
ALERT_CHANNEL = "hotspot:alerts"
UNREACHABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    TimeoutError,
    ClusterError,  # a Cluster's slots not all served (a node is down, no replica took over)
    SlotNotCoveredError,
    RedisClusterException,  # none of the startup nodes answers
)
REFUSING_WRITES = (ReadOnlyError, OutOfMemoryError, TryAgainError)
"""How a reachable Redis refuses to run a script or write: a demoted primary, maxmemory
reached, a Cluster resharding; and, as codes redis-py has no class for, min-replicas-to-write
unmet and a long script. Nothing was counted, so a caller is told BACKEND_UNAVAILABLE (fail
closed), not INTERNAL."""
REFUSING_WRITES_CODES = ("NOREPLICAS", "MASTERDOWN", "BUSY")


def _refuses_writes(error: ResponseError) -> bool:
    return isinstance(error, REFUSING_WRITES) or str(error).startswith(REFUSING_WRITES_CODES)


CLUSTER_CALLS_AT_ONCE = 16
"""Scripts one replica runs at once for a batch (a sweep, a stats tick) on a Cluster."""
_REQUEST = "\0request:"
"""Marks the permit of a request id (see permit_for_request): never a real permit id."""

_OUTCOMES = {
    Outcome.SUCCESS: "success",
    Outcome.FAILURE: "failure",
    Outcome.NOT_SENT: "not_sent",
    Outcome.UPSTREAM_RATE_LIMITED: "upstream_rate_limited",
}
Reply = dict[str, Any]


def _fmt(x: float) -> str:
    return repr(float(x))  # the shortest exact form; Lua's tonumber reads it back exactly


def _num(text: str) -> float:
    return float(text)


class _Waiting:
    """A caller of this replica whose ticket waits in a fixture's queue."""

    __slots__ = ("caller", "future")

    def __init__(self, future: asyncio.Future[Grant], caller: str) -> None:
        self.future = future
        self.caller = caller


class _InOrder:
    """A fixture's acquires on this replica, one script at a time (asyncio.Lock is FIFO)."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class RedisBackend:
    """PermitBackend over Redis: every replica on one Redis shares each fixture's exact window
    and FIFO queue. See the module docstring for how waiters are woken."""

    def __init__(
        self,
        url: str,
        policy: PermitPolicy | None = None,
        *,
        now: Callable[[], float] | None = None,
        call_timeout: float = CALL_TIMEOUT,
        ticket_lease: float = TICKET_LEASE,
        background: bool = True,
        shards: int = 1,
        reservation_grace: float = RESERVATION_GRACE,
    ) -> None:
        """`now`, an infinite `ticket_lease` and `background=False` are for tests that drive
        time themselves: `now` replaces Redis's TIME so that a differential test runs this
        backend and MemoryBackend on one manual clock, calling sweep() and poll_waiters()
        where the replica's own sweep, timers and pub/sub would."""
        self._policy = policy or PermitPolicy()
        self._now = now
        self._keys = KeyLayout(shards)
        self._replica = secrets.token_hex(8)
        self._channel = f"hotspot:replica:{self._replica}"
        self._clients = open_clients(url, call_timeout)
        self._redis = self._clients.commands
        self._call_timeout = call_timeout
        self._scripts = {
            name: self._redis.register_script(script_text("clock.lua", "common.lua", f"{name}.lua"))
            for name in ("acquire", "release", "poll", "leave", "overview")
        }
        # Scripts of their own, without a fixture's state.
        self._scripts["ledger"] = self._redis.register_script(
            script_text("clock.lua", "ledger.lua")
        )
        self._scripts["revoke"] = self._redis.register_script(script_text("revoke.lua"))
        self._reservation_grace = reservation_grace
        self._next_revoke = -math.inf  # loop time of this replica's next look for stale ones
        self._draining: set[int] = set()
        self._drain_again: set[int] = set()
        self._to_settle: list[str] = []  # reservation id, 'used' or 'revoked', ...
        self._settling = False
        self._breaker = CircuitBreaker()
        self._cluster_calls = asyncio.Semaphore(CLUSTER_CALLS_AT_ONCE)
        self._learning: asyncio.Task[Any] | None = None
        self._warming_board = RedisWarmingBoard(self._redis, self._call, now)
        self._ticket_lease = ticket_lease
        self._background = background
        self._policy_args = self._policy_argv()
        self._listeners: list[AlertListener] = []
        self._waiting: dict[str, dict[str, _Waiting]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._polling: set[str] = set()
        self._sending: dict[str, _InOrder] = {}
        self._poll_again: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        loop = asyncio.get_running_loop()
        self._loop = loop
        if background:
            if isinstance(self._redis, RedisCluster):
                self._slot_map(self._redis)  # from the start, not at the first caller's cost
            self._spawn(self._listen())
            self._spawn(self._sweep_forever())

    @property
    def policy(self) -> PermitPolicy:
        return self._policy

    def unready_reason(self) -> str | None:
        why = self._breaker.why
        return None if why is None else f"redis unreachable: {why}"

    def set_alert_ratio(self, alert_ratio: float) -> None:
        """A new alert ratio, live (SIGHUP): every script this replica runs judges by it."""
        self._policy = replace(self._policy, alert_ratio=alert_ratio)
        self._policy_args = self._policy_argv()

    def _policy_argv(self) -> list[str]:
        p = self._policy
        return [
            str(p.limit),
            _fmt(p.window),
            str(p.queue),
            _fmt(p.lease),
            str(p.max_fixtures),  # the ledger's to check where there are several shards
            str(p.max_fixtures_per_caller),
            str(p.max_waiters_per_caller),
            _fmt(p.upstream_pause_cap),
            str(p.raise_at),
            str(p.clear_below),
            _fmt(self._ticket_lease),
            str(RELEASED_REMEMBERED),
            "1" if self._keys.fleet else "",
        ]

    # -- Calls to Redis --------------------------------------------------------------------

    async def _call(self, call: Awaitable[Any], *, writes: bool = True) -> Any:
        """One Redis round trip under the timeout and the circuit breaker. A call that only
        reads (writes=False) cannot tell that a Redis refusing writes is back."""
        try:
            self._breaker.check()
        except BackendUnavailable:
            if inspect.iscoroutine(call):
                call.close()  # never sent
            raise
        try:
            async with asyncio.timeout(self._call_timeout * 2):
                if isinstance(self._redis, RedisCluster):
                    await asyncio.shield(self._slot_map(self._redis))
                result = await call
        except (*UNREACHABLE, AttributeError, ResponseError) as error:
            if (
                isinstance(error, ResponseError)
                and not isinstance(error, UNREACHABLE)
                and not _refuses_writes(error)
            ):
                raise  # a script's own error, NOSCRIPT (handled by the caller), ...
            # As a Cluster node dies, redis-py can close a connection another call is writing
            # on, which then fails with an AttributeError (its writer is gone): unreachable too.
            if isinstance(error, AttributeError) and not isinstance(self._redis, RedisCluster):
                raise
            if isinstance(error, TimeoutError) and not self._slot_map_known():
                # Not an outage: the replica is still learning the slot map (it is starting).
                raise BackendUnavailable("still learning the Redis Cluster's slot map") from None
            self._unavailable(
                f"{type(error).__name__}: {error}" if str(error) else type(error).__name__,
                writes_refused=isinstance(error, ResponseError) and _refuses_writes(error),
            )
        finally:
            if inspect.iscoroutine(call):
                call.close()  # never sent if the slot map came too late (or never); else a no-op
        if self._breaker.succeeded(wrote=writes):
            logger.warning("redis answers again", extra={"event": "backend_recovered"})
        return result

    def _unavailable(self, why: str, *, writes_refused: bool = False) -> NoReturn:
        if self._breaker.why is None:
            logger.error(
                "redis unreachable; refusing grants until it answers: %s",
                why,
                extra={"event": "backend_unavailable", "reason": why},
            )
        self._breaker.failed(why, writes_refused=writes_refused)
        raise BackendUnavailable(why) from None

    def _slot_map_known(self) -> bool:
        return self._learning is None or self._learning.done()

    def _slot_map(self, cluster: RedisCluster) -> asyncio.Task[Any]:
        """The Cluster's slot map, learned (at the start, again after a node failed) by one
        task for every call: redis-py's concurrent calls would each start learning it and
        reset one another's connections, and a call's timeout must not cancel the learning,
        which would start over at the next call. Known already, the task returns at once."""
        if self._learning is None or self._learning.done():
            self._learning = self._spawn(cluster.initialize())
            # A failure is the calls' to report (the breaker); unawaited, it is not an error.
            self._learning.add_done_callback(lambda t: t.cancelled() or t.exception())
        return self._learning

    async def _run(
        self,
        name: str,
        fixture_id: str,
        args: Iterable[str],
        *,
        more_keys: Sequence[str] = (),
    ) -> Reply:
        script: AsyncScript = self._scripts[name]
        keys = [*self._keys.script_keys(fixture_id), *more_keys]
        raw = await self._call(script(keys=keys, args=self._argv(fixture_id, args)))
        return self._read(fixture_id, raw)

    async def _poll_many(self, fixture_ids: Sequence[str]) -> list[Reply]:
        """Settle many fixtures (and read their rows) in one round trip (per Cluster node)."""
        raws = await self._run_many(
            [("poll", self._keys.script_keys(f), self._argv(f, [])) for f in fixture_ids]
        )
        return [self._read(f, raw) for f, raw in zip(fixture_ids, raws, strict=True)]

    async def _run_many(
        self, calls: Sequence[tuple[str, list[str], list[str]]], *, writes: bool = True
    ) -> list[Any]:
        """Run scripts (name, keys, args) in one pipeline. A node that does not know a script
        (it restarted, or no call has loaded it there yet) is sent them all, and only the calls
        it refused run again: a poll that ran once must not run twice (it hands out answers)."""
        if not calls:
            return []
        if isinstance(self._redis, RedisCluster):
            concurrently: list[Any] = await self._call(self._run_concurrently(calls), writes=writes)
            return concurrently
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in range(2):
            pipe = self._redis.pipeline(transaction=False)
            for i in todo:
                name, keys, args = calls[i]
                pipe.evalsha(self._scripts[name].sha, len(keys), *keys, *args)
            replies = await self._call(pipe.execute(raise_on_error=False), writes=writes)
            missing = []
            for i, reply in zip(todo, replies, strict=True):
                if isinstance(reply, NoScriptError) and attempt == 0:
                    missing.append(i)
                elif isinstance(reply, ResponseError) and _refuses_writes(reply):
                    self._unavailable(f"{type(reply).__name__}: {reply}", writes_refused=True)
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    results[i] = reply
            if not missing:
                break
            for script in self._scripts.values():
                await self._call(self._redis.script_load(script.script), writes=False)
            todo = missing
        return results

    async def _run_concurrently(
        self, calls: Sequence[tuple[str, list[str], list[str]]]
    ) -> list[Any]:
        """A Cluster's pipeline refuses scripts (redis-py): the calls go one per connection
        instead, at most CLUSTER_CALLS_AT_ONCE at a time."""

        async def run(name: str, keys: list[str], args: list[str]) -> Any:
            async with self._cluster_calls:
                return await self._scripts[name](keys=keys, args=args)

        results: list[Any] = await asyncio.gather(*(run(*call) for call in calls))
        return results

    def _argv(self, fixture_id: str, args: Iterable[str]) -> list[str]:
        now = "" if self._now is None else _fmt(self._now())
        return [fixture_id, now, self._replica, *self._policy_args, *args]

    def _read(self, fixture_id: str, raw: str) -> Reply:
        reply: Reply = json.loads(raw)
        for event in _list(reply.get("alerts")):
            self._log_alert(event)
        if reply.get("abandoned"):
            logger.warning(
                "permits abandoned (lease ended without a release): fixture_id=%s count=%d",
                fixture_id,
                reply["abandoned"],
                extra={"event": "permits_abandoned", "fixture_id": fixture_id},
            )
        if reply.get("ob"):
            self._drain_soon(self._keys.shard_of(fixture_id))
        return reply

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

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
        check_fixture_id(fixture_id)
        budget = min(budget, self._policy.max_wait)
        permit_id = self._keys.permit_id(fixture_id, secrets.token_urlsafe(16))
        args = [_fmt(budget), client_id, request_id, caller, permit_id, "1" if warming else ""]
        # Shielded: a caller cancelled while the script runs must not leave its grant or ticket
        # behind, so the reply is awaited to the end and undone.
        call = asyncio.ensure_future(self._acquire_in_order(fixture_id, args))
        try:
            reply = await asyncio.shield(call)
        except asyncio.CancelledError:
            call.add_done_callback(lambda c: self._undo_acquire(fixture_id, caller, c))
            raise
        answer: Reply = reply["r"]
        kind = answer["k"]
        if kind == "G":
            return _grant(fixture_id, answer)
        if kind == "OTHER_FIXTURE":
            raise InvalidArgument(
                "request_id already names a permit of another fixture", field="request_id"
            )
        if kind != "Q":
            raise self._refusal(fixture_id, answer, caller)
        ticket: str = answer["t"]
        future: asyncio.Future[Grant] = self._loop.create_future()
        self._waiting.setdefault(fixture_id, {})[ticket] = _Waiting(future, caller)
        self._wake_at(fixture_id, reply)
        try:
            return await future
        except asyncio.CancelledError:
            self._leave(fixture_id, ticket, caller, future)
            raise

    async def _acquire_in_order(self, fixture_id: str, args: list[str]) -> Reply:
        """Run the acquire script once this replica's earlier acquires of the fixture have run:
        on separate connections two scripts could reach Redis in either order, and this
        replica's callers are to be served in the order they came."""
        entry = self._sending.get(fixture_id)
        if entry is None:
            entry = self._sending[fixture_id] = _InOrder()
        entry.users += 1
        try:
            async with entry.lock:
                if self._keys.fleet:
                    return await self._acquire_with_ledger(fixture_id, args)
                return await self._run("acquire", fixture_id, args)
        finally:
            entry.users -= 1
            if not entry.users:
                del self._sending[fixture_id]

    async def _acquire_with_ledger(self, fixture_id: str, args: list[str]) -> Reply:
        """The acquire script where the ledger holds the fleet-wide counts. Where it needs a new
        count (a new fixture, a new waiter), the script changes nothing and says so; the count
        is reserved on the ledger, and the script runs again with the reservation, which it
        takes or refuses (then given back), or with the ledger's refusal. A grant on a tracked
        fixture stays one round trip; a new fixture or waiter takes three."""
        shard = self._keys.shard_of(fixture_id)
        caller = args[3]
        ledger_said = ""
        for _ in range(RESERVE_ATTEMPTS):
            reservation = ledger_said[2:] if ledger_said[:2] in ("f:", "w:") else ""
            more_keys = [self._keys.reservation(shard, reservation)] if reservation else []
            ttl = str(int(RESERVATION_TTL * 1000))
            reply = await self._run(
                "acquire", fixture_id, [*args, ledger_said, ttl], more_keys=more_keys
            )
            if reservation:  # settled off the caller's path; if lost, revocation settles it
                self._settle_soon(reservation, "used" if reply.get("rid") == "used" else "revoked")
            answer: Reply = reply["r"]
            if answer["k"] != "RESERVE":
                if "cq" in answer and await self._caller_waiters_full(caller):
                    full = {"k": "CALLER_QUEUE_FULL", "depth": answer["depth"], **answer["cq"]}
                    reply["r"] = full
                return reply
            need = answer["need"]
            new_reservation = secrets.token_hex(8)
            p = self._policy
            caps = [p.max_fixtures, p.max_fixtures_per_caller, p.max_waiters_per_caller]
            reserved = json.loads(
                await self._ledger(
                    "reserve", [new_reservation, str(shard), need, caller, *map(str, caps)]
                )
            )
            if reserved["ok"]:
                ledger_said = f"{need}:{new_reservation}"
            else:
                # The shard answers the refusal as of its next look: the fixture may have been
                # tracked meanwhile (by another caller), and then it is no refusal at all.
                ledger_said = "no:w" if need == "w" else "no:own" if reserved["own"] else "no:all"
        raise BackendUnavailable("the fixture kept changing while its fleet count was reserved")

    async def _caller_waiters_full(self, caller: str) -> bool:
        counts = self._keys.ledger_keys()[0]
        waiting = await self._call(self._redis.hget(counts, f"w|{caller}"), writes=False)
        return int(waiting or 0) >= self._policy.max_waiters_per_caller

    async def _ledger(self, operation: str, args: Sequence[str]) -> str:
        now = "" if self._now is None else _fmt(self._now())
        script: AsyncScript = self._scripts["ledger"]
        raw: str = await self._call(
            script(keys=self._keys.ledger_keys(), args=[operation, now, *args])
        )
        return raw

    def _settle_soon(self, reservation: str, outcome: str) -> None:
        """Settle a reservation on the ledger ('used', or 'revoked': given back), with those
        that came while the last settling call was on its way: one call for many under load."""
        self._to_settle += [reservation, outcome]
        if not self._settling:
            self._settling = True
            self._spawn(self._settle())

    async def _settle(self) -> None:
        try:
            while self._to_settle:
                outcomes, self._to_settle = self._to_settle, []
                await self._quietly(self._resolve(outcomes))
        finally:
            self._settling = False

    async def _resolve(self, outcomes: Sequence[str]) -> None:
        """Settle reservations on the ledger: pairs of id, 'used' or 'revoked'."""
        await self._ledger("resolve", [_fmt(RESERVATION_TTL / 2), *outcomes])

    @staticmethod
    async def _quietly(call: Awaitable[Any]) -> None:
        """A call whose loss leaves the ledger high, never low: revocation or a drain repairs it."""
        with contextlib.suppress(BackendUnavailable):
            await call

    def _drain_soon(self, shard: int) -> None:
        """Drain the shard's outbox into the ledger: at most one drain per shard at a time."""
        if shard in self._draining:
            self._drain_again.add(shard)
            return
        self._draining.add(shard)
        self._spawn(self._drain(shard))

    async def _drain(self, shard: int) -> None:
        try:
            while True:
                self._drain_again.discard(shard)
                await self._quietly(self._drain_once(shard))
                if shard not in self._drain_again:
                    break
        finally:
            self._draining.discard(shard)

    async def _drain_once(self, shard: int) -> None:
        """Apply the outbox's entries to the ledger (which skips those applied already), then
        remove them: a replica that dies in between leaves them for the next drain."""
        outbox = self._keys.outbox(shard)
        held: dict[str, str] = await self._call(self._redis.hgetall(outbox), writes=False)
        entries = {seq: deltas for seq, deltas in held.items() if seq not in ("n", "e")}
        if not entries:
            return
        flat = [item for entry in entries.items() for item in entry]
        await self._ledger("apply", [str(shard), held.get("e", ""), *flat])
        await self._call(self._redis.hdel(outbox, *entries))

    async def _revoke_stale(self) -> None:
        """Reservations pending past the grace: each shard says it used them or revokes them,
        and the ledger settles them, giving back the revoked."""
        stale = _list(
            json.loads(
                await self._ledger("stale", [_fmt(self._reservation_grace), str(SWEEP_BATCH)])
            )
        )
        by_shard: dict[int, list[str]] = defaultdict(list)
        for reservation, shard in stale:
            by_shard[int(shard)].append(reservation)
        for shard, reservations in by_shard.items():
            keys = [self._keys.reservation(shard, r) for r in reservations]
            ttl = str(int(RESERVATION_TTL * 1000))
            noted: list[str] = await self._call(self._scripts["revoke"](keys=keys, args=[ttl]))
            await self._resolve(
                [item for pair in zip(reservations, noted, strict=True) for item in pair]
            )

    def _undo_acquire(self, fixture_id: str, caller: str, call: asyncio.Future[Reply]) -> None:
        if call.cancelled() or call.exception() is not None:
            return
        answer = call.result()["r"]
        if answer["k"] == "G":
            self._spawn(self._run_quietly("leave", fixture_id, ["", caller, answer["p"]]))
        elif answer["k"] == "Q":
            self._spawn(self._run_quietly("leave", fixture_id, [answer["t"], caller, ""]))

    def _leave(
        self, fixture_id: str, ticket: str, caller: str, future: asyncio.Future[Grant]
    ) -> None:
        """The waiting caller went away: its ticket leaves the queue, or the grant it never saw
        goes back."""
        self._forget_waiting(fixture_id, ticket)
        taken = ""
        if future.done() and not future.cancelled() and future.exception() is None:
            taken = future.result().permit_id
        self._spawn(self._run_quietly("leave", fixture_id, [ticket, caller, taken]))

    async def _run_quietly(self, name: str, fixture_id: str, args: list[str]) -> None:
        """A clean-up call; if Redis is away, leases and ticket leases end it instead."""
        with contextlib.suppress(BackendUnavailable):
            await self._run(name, fixture_id, args)

    def _forget_waiting(self, fixture_id: str, ticket: str) -> None:
        tickets = self._waiting.get(fixture_id)
        if tickets is None:
            return
        tickets.pop(ticket, None)
        if not tickets:
            del self._waiting[fixture_id]
            timer = self._timers.pop(fixture_id, None)
            if timer is not None:
                timer.cancel()

    def _refusal(self, fixture_id: str, answer: Reply, caller: str) -> PermitRefused:
        p = self._policy
        kind = answer["k"]
        if kind == "WAIT_TOO_LONG":
            return WaitTooLong(
                fixture_id=fixture_id,
                retry_after=_num(answer["retry"]),
                estimated_wait=_num(answer["est"]),
                queue_depth=answer["depth"],
                limit=p.limit,
                paused_for=_num(answer["paused"]),
                budget=_num(answer["budget"]),
                expired=bool(answer["expired"]),
            )
        if kind == "QUEUE_FULL":
            return QueueFull(
                fixture_id=fixture_id,
                retry_after=_num(answer["retry"]),
                estimated_wait=_num(answer["est"]),
                queue_depth=answer["depth"],
                limit=p.limit,
                paused_for=_num(answer["paused"]),
                window=p.window,
                capacity=p.queue,
            )
        if kind == "CALLER_QUEUE_FULL":
            return CallerQueueFull(
                fixture_id=fixture_id,
                retry_after=_num(answer["retry"]),
                estimated_wait=_num(answer["est"]),
                queue_depth=answer["depth"],
                limit=p.limit,
                caller=caller,
                capacity=p.max_waiters_per_caller,
            )
        if kind == "TOO_MANY_FIXTURES":
            return TooManyFixtures(
                fixture_id=fixture_id,
                retry_after=_num(answer["retry"]),
                limit=p.limit,
                max_fixtures=p.max_fixtures_per_caller if answer["own"] else p.max_fixtures,
                caller=caller if answer["own"] else None,
            )
        raise AssertionError(f"unknown answer from redis: {answer!r}")

    # -- Waking waiters --------------------------------------------------------------------

    def _wake_at(self, fixture_id: str, reply: Reply) -> None:
        """Arm the fixture's one timer: its next change, or the heartbeat if sooner."""
        if fixture_id not in self._waiting or not self._background:
            return
        delay = HEARTBEAT
        if reply["next"] != "none":
            delay = min(delay, max(0.0, _num(reply["next"]) - _num(reply["now"])))
        when = self._loop.time() + delay
        timer = self._timers.get(fixture_id)
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._timers[fixture_id] = self._loop.call_at(when, self._on_timer, fixture_id)

    def waiters_here(self) -> int:
        """Callers of this replica waiting in queues."""
        return sum(len(tickets) for tickets in self._waiting.values())

    async def poll_waiters(self) -> None:
        """Poll every fixture this replica has waiters on, and let the clean-ups it started
        finish (for tests that drive time themselves)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))
        await asyncio.gather(*(self._poll(f) for f in list(self._waiting)))
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    def _on_timer(self, fixture_id: str) -> None:
        self._timers.pop(fixture_id, None)
        self._poll_soon(fixture_id)

    def _poll_soon(self, fixture_id: str) -> None:
        if fixture_id in self._polling:
            self._poll_again.add(fixture_id)  # a change came while a poll was on its way
            return
        if fixture_id in self._waiting:
            self._polling.add(fixture_id)
            self._spawn(self._poll(fixture_id))

    async def _poll(self, fixture_id: str) -> None:
        reply: Reply | None = None
        try:
            while (tickets := self._waiting.get(fixture_id)) is not None:
                self._poll_again.discard(fixture_id)
                try:
                    reply = await self._run("poll", fixture_id, list(tickets))
                except BackendUnavailable:
                    reply = None
                    break
                self._answer(fixture_id, reply["results"])
                if fixture_id not in self._poll_again:
                    break
        finally:
            self._polling.discard(fixture_id)
        if reply is not None:
            self._wake_at(fixture_id, reply)
        elif fixture_id in self._waiting:  # Redis is away: try again at the heartbeat
            self._wake_at(fixture_id, {"next": "none", "now": "0"})

    def _answer(self, fixture_id: str, results: Reply | list[Any]) -> None:
        if not isinstance(results, dict):
            return  # cjson writes an empty object as []
        tickets = self._waiting.get(fixture_id, {})
        for ticket, answer in results.items():
            waiting = tickets.get(ticket)
            if waiting is None:
                continue
            self._forget_waiting(fixture_id, ticket)
            future = waiting.future
            if answer["k"] == "G":
                if future.done():  # its caller left as it was granted: the grant goes back
                    leave = ["", waiting.caller, answer["p"]]
                    self._spawn(self._run_quietly("leave", fixture_id, leave))
                else:
                    future.set_result(_grant(fixture_id, answer))
            elif not future.done():
                if answer["k"] == "GONE":
                    future.set_exception(
                        BackendUnavailable("this request's place in the queue was lost")
                    )
                else:
                    future.set_exception(self._refusal(fixture_id, answer, waiting.caller))

    async def _listen(self) -> None:
        """This replica's channel (a fixture answered one of its tickets) and the alerts."""
        while not self._closed:
            pubsub = self._clients.pubsub.pubsub()
            try:
                await pubsub.subscribe(self._channel, ALERT_CHANNEL)
                # Messages sent while unsubscribed are lost: look at every fixture now.
                for fixture_id in list(self._waiting):
                    self._poll_soon(fixture_id)
                while not self._closed:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None:
                        continue
                    if message["channel"] == ALERT_CHANNEL:
                        self._deliver_alert(json.loads(message["data"]))
                    else:
                        self._poll_soon(message["data"])
            except (RedisConnectionError, RedisTimeoutError, OSError):
                await asyncio.sleep(HEARTBEAT)
            except Exception:  # the timers still find every answer, a heartbeat later
                logger.exception("redis subscription failed")
                await asyncio.sleep(HEARTBEAT)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _sweep_forever(self) -> None:
        """Settle every fixture whose next change has come (a lease ended, a window emptied, a
        hot fixture cooled): this replica's share of moving the fleet's state on."""
        if isinstance(self._redis, RedisCluster):  # its first sweep waits for the slot map
            with contextlib.suppress(Exception):
                await self._slot_map(self._redis)
        while not self._closed:
            delay = SWEEP_EVERY
            try:
                delay = await self.sweep()
            except BackendUnavailable:
                pass  # the breaker logged it; the next sweep is the probe
            except Exception:  # a bug here must not stop the fleet's state moving on
                logger.exception("redis sweep failed")
            await asyncio.sleep(min(max(delay, 0.01), SWEEP_EVERY))

    async def sweep(self) -> float:
        """One sweep; returns the seconds until the next fixture is due."""
        if self._breaker.writes_refused:
            # Only a write can tell that Redis takes writes again, and an unready replica gets
            # no traffic that would write: without this probe it would stay unready for good.
            await self._call(self._redis.set(self._keys.probe, "1", px=WRITE_PROBE_MS))
        overview = await self._overview(0)
        await self._poll_many(_list(overview["due"]))
        if self._keys.fleet:
            for shard in overview["outboxes"]:
                self._drain_soon(shard)
            # A sweep can come every 10 ms while fixtures fall due; the ledger is one slot.
            now = self._loop.time()
            if now >= self._next_revoke:
                self._next_revoke = now + min(SWEEP_EVERY, self._reservation_grace / 2)
                await self._revoke_stale()
        if overview["next"] == "none":
            return SWEEP_EVERY
        return _num(overview["next"]) - _num(overview["now"])

    async def _overview(self, candidates: int) -> Reply:
        """The fleet's overview: every shard's, merged (one round trip per node)."""
        argv = self._argv("", [str(candidates), str(SWEEP_BATCH)])
        calls = [
            ("overview", self._keys.shard_script_keys(shard), argv)
            for shard in range(self._keys.shards)
        ]
        shards: list[Reply] = [json.loads(raw) for raw in await self._run_many(calls, writes=False)]
        heat = [
            (float(hottest[i + 1]), hottest[i])
            for reply in shards
            for hottest in [_list(reply["hottest"])]
            for i in range(0, len(hottest), 2)
        ]
        nexts = [_num(reply["next"]) for reply in shards if reply["next"] != "none"]
        return {
            "now": _fmt(max(_num(reply["now"]) for reply in shards)),
            "tracked": sum(int(reply["tracked"]) for reply in shards),
            "totals": [
                sum(int(v or 0) for v in column)
                for column in zip(*(_list(reply["totals"]) for reply in shards), strict=True)
            ],
            "hottest": [f for _, f in sorted(heat, reverse=True)[:candidates]],
            "hot": [item for reply in shards for item in _list(reply["hot"])],
            "due": [f for reply in shards for f in _list(reply["due"])],
            "next": _fmt(min(nexts)) if nexts else "none",
            "outboxes": [shard for shard, reply in enumerate(shards) if reply["ob"]],
        }

    # -- Release ---------------------------------------------------------------------------

    def permit_for_request(self, request_id: str, caller: str = "") -> str:
        """A stand-in that release() looks up in Redis (this call cannot wait on it)."""
        return _REQUEST + check_request_id(request_id)

    async def release(
        self,
        permit_id: str,
        outcome: Outcome = Outcome.SUCCESS,
        upstream_retry_after: float | None = None,
        *,
        caller: str = "",
    ) -> bool:
        by_request = permit_id.startswith(_REQUEST)
        check_release(permit_id, upstream_retry_after, any_length=by_request)
        if by_request:
            request_id = permit_id.removeprefix(_REQUEST)
            permit_id = await self._permit_of_request(request_id, caller)
        shard = self._keys.permit_shard(permit_id)
        if shard is None:
            raise PermitNotFound(permit_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(self._keys.permits(shard), permit_id)
        pipe.hget(self._keys.released(shard), permit_id)
        fixture_id, released_by = await self._call(pipe.execute(), writes=False)
        if fixture_id is None:
            if released_by is not None and released_by == caller:
                return True
            raise PermitNotFound(permit_id)
        retry_after = "" if upstream_retry_after is None else _fmt(upstream_retry_after)
        args = [permit_id, caller, _OUTCOMES[outcome], retry_after]
        reply = await self._run("release", fixture_id, args)
        answer = reply["r"]
        if answer["k"] == "NOT_FOUND":
            raise PermitNotFound(permit_id)
        if answer["k"] == "ALREADY":
            return True
        if answer["paused"]:
            logger.warning(
                "fixture paused after an upstream 429: fixture_id=%s seconds=%.3f queue_depth=%d "
                "caller=%s",
                fixture_id,
                _num(answer["seconds"]),
                answer["depth"],
                caller or "-",
                extra={"event": "fixture_paused", "fixture_id": fixture_id, "caller": caller},
            )
        return False

    async def _permit_of_request(self, request_id: str, caller: str) -> str:
        """The permit granted to the caller's request id: each shard indexes its own fixtures'
        requests, so every shard is asked; the one whose lease ends last wins (two shards can
        hold one only where the fixtures' shards differ, see the README)."""
        key = f"{len(caller)}:{caller}{request_id}"
        pipe = self._redis.pipeline(transaction=False)
        for shard in range(self._keys.shards):
            pipe.hget(self._keys.requests(shard), key)
        found: list[str | None] = await self._call(pipe.execute(), writes=False)
        entries = [entry.split("\t") for entry in found if entry is not None]
        if not entries:
            raise PermitNotFound(request_id, what="request")
        return max(entries, key=lambda entry: _num(entry[-1]))[0]

    # -- Stats and alerts ------------------------------------------------------------------

    async def stats(self, view: StatsView) -> StatsSnapshot:
        return (await self.snapshots([view]))[0]

    async def snapshots(self, views: Sequence[StatsView]) -> list[StatsSnapshot]:
        """The fleet's view: fixtures due for a look are settled first, then each row is read
        (and settled) at Redis's now. The hottest come from each fixture's heat as of its last
        change, re-measured for the top candidates."""
        top = max((v.top_n for v in views if not v.fixture_ids), default=0)
        candidates = top + RANKING_SLACK if top else 0
        overview = await self._overview(candidates)
        if _list(overview["due"]):
            await self._poll_many(_list(overview["due"]))
            overview = await self._overview(candidates)
        hot = _list(overview["hot"])
        raised_at = {hot[i]: _num(hot[i + 1]) for i in range(0, len(hot), 2)}
        wanted = list(
            dict.fromkeys(
                [
                    *_list(overview["hottest"]),
                    *(f for v in views for f in v.fixture_ids),
                    *raised_at,
                ]
            )
        )
        replies = await self._poll_many(wanted)
        now = max([_num(overview["now"]), *(_num(r["now"]) for r in replies)])
        rows = {
            f: self._fixture_stats(f, r["row"], now) for f, r in zip(wanted, replies, strict=True)
        }
        tracked = {f for f, r in zip(wanted, replies, strict=True) if r["row"]["tracked"]}
        ranked = sorted(
            (rows[f] for f in _list(overview["hottest"]) if f in tracked),
            key=FixtureStats.heat_key,
        )
        p = self._policy
        alerts = [
            Alert(f, AlertState.RAISED, rows[f].calls_in_window, p.raise_at, p.clear_below, at)
            for f, at in raised_at.items()
        ]
        calls, rejected, depth, in_flight, abandoned = (
            int(v or 0) for v in _list(overview["totals"])
        )
        totals = Totals(
            fixtures_tracked=int(overview["tracked"]),
            calls_total=calls,
            rejected_total=rejected,
            queue_depth=depth,
            in_flight=in_flight,
            abandoned_total=abandoned,
        )
        scheduled_warmings = await self._warming_board.listed(now)
        return [
            StatsSnapshot(
                generated_at=now,
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
        return await self._warming_board.announce(caller, announcer, warmings, ttl)

    def _fixture_stats(self, fixture_id: str, row: Reply, now: float) -> FixtureStats:
        p = self._policy
        tracked = row["tracked"]
        calls = int(row["calls"]) if tracked else 0
        paused = _num(row["pause"]) if tracked else -math.inf
        return FixtureStats(
            fixture_id=fixture_id,
            calls_in_window=calls,
            calls_total=int(row["calls_total"]) if tracked else 0,
            queue_depth=int(row["depth"]) if tracked else 0,
            queue_capacity=p.queue,
            rejected_total=int(row["rej"]) if tracked else 0,
            in_flight=int(row["inf"]) if tracked else 0,
            limit=p.limit,
            window=p.window,
            utilization=calls / p.limit,
            hot=bool(row["hot"]) if tracked else False,
            paused_until=paused if paused > now else None,
            abandoned_total=int(row["ab"]) if tracked else 0,
            expected_hold=_num(row["hold"]),
            warming=bool(row["warming"]) if tracked else False,
        )

    def subscribe_alerts(self, listener: AlertListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _log_alert(self, event: Reply) -> None:
        """Logged once for the fleet: by the replica whose script changed the alert."""
        alert_logger.warning(
            "hot spot %s: fixture_id=%s calls_in_window=%d threshold=%d clear_below=%d",
            event["s"],
            event["f"],
            event["n"],
            event["th"],
            event["cb"],
            extra={
                "event": f"alert_{event['s']}",
                "fixture_id": event["f"],
                "calls_in_window": event["n"],
                "threshold": event["th"],
                "clear_below": event["cb"],
            },
        )

    def _deliver_alert(self, event: Reply) -> None:
        """Every replica's listeners (its WatchStats streams, its webhook) hear every alert."""
        alert = Alert(
            event["f"],
            AlertState(event["s"]),
            int(event["n"]),
            int(event["th"]),
            int(event["cb"]),
            _num(event["at"]),
        )
        for listener in list(self._listeners):
            try:
                listener(alert)
            except Exception:
                logger.exception("alert listener failed")

    # -- Shutdown --------------------------------------------------------------------------

    async def close(self) -> None:
        """Answer this replica's waiters ShuttingDown and take their tickets out of line."""
        if self._closed:
            return
        self._closed = True
        leaving = []
        for fixture_id, tickets in list(self._waiting.items()):
            for ticket, waiting in list(tickets.items()):
                if not waiting.future.done():
                    waiting.future.set_exception(ShuttingDown(SHUTDOWN_RETRY_AFTER))
                leaving.append(self._run_quietly("leave", fixture_id, [ticket, waiting.caller, ""]))
        self._waiting.clear()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        with contextlib.suppress(Exception):
            await asyncio.gather(*leaving)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._clients.aclose()


def _grant(fixture_id: str, answer: Reply) -> Grant:
    return Grant(
        answer["p"],
        fixture_id,
        _num(answer["at"]),
        _num(answer["w"]),
        int(answer["n"]),
        int(answer["rem"]),
        _num(answer["exp"]),
    )


def _list(value: Any) -> list[Any]:
    """cjson writes an empty list as {}."""
    return value if isinstance(value, list) else []
