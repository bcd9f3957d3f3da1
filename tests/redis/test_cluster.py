"""A three-node Redis Cluster on loopback (`redis+cluster://`, real redis-server processes):
fixtures spread over every node, every key a fixture's scripts touch lies in one slot, and
three replicas on the Cluster keep each fixture's limit and FIFO order exactly."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import defaultdict

import pytest
import redis
from redis.crc import key_slot

from hotspot_core.errors import (
    BackendUnavailable,
    CallerQueueFull,
    PermitNotFound,
    TooManyFixtures,
)
from hotspot_core.grants import Grant, Outcome
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsView
from hotspot_server.redis_backend import RedisBackend, open_redis_backend
from hotspot_server.redis_backend.connection import parse_cluster_url
from hotspot_server.redis_backend.keys import CLUSTER_SHARDS, KeyLayout
from tests.redis.test_failures import eventually
from tests.redis.test_replicas import assert_never_over_the_limit, until_queued
from tests.redis_server import RedisClusterNodes, RedisServer

FIXTURES = [f"match-{i}" for i in range(24)]


@pytest.fixture
def cluster_url(redis_cluster: RedisClusterNodes) -> str:
    redis_cluster.flush()
    # A busy 2-core machine delays healthy calls, and the first learns the slot map (~0.1 s
    # of one core per replica).
    return redis_cluster.url + "?timeout=2"


def keys_by_node(cluster: RedisClusterNodes) -> dict[int, list[str]]:
    """Every hotspot key, by the port of the node that holds it."""
    found = {}
    for node in cluster.nodes:
        with redis.Redis(port=node.port, decode_responses=True) as client:
            found[node.port] = list(client.scan_iter(match="hotspot:*"))
    return found


def fixture_of(key: str) -> str | None:
    """The fixture a key belongs to (`hotspot:{TAG}:f:FIXTURE:NAME`), None for a shard's row."""
    _, _, rest = key.partition("}:")
    if not rest.startswith("f:"):
        return None
    return rest.removeprefix("f:").rpartition(":")[0]


async def test_fixtures_spread_over_every_node_and_each_fixtures_keys_share_one_slot(
    cluster_url: str, redis_cluster: RedisClusterNodes
) -> None:
    backend = open_redis_backend(cluster_url, PermitPolicy(limit=1, window=0.5, queue=5))
    try:
        # Every kind of key: permits, request ids, tickets, answers, released permits, rows.
        held = [await backend.acquire(f, request_id=f"r-{f}") for f in FIXTURES]
        waiters = [asyncio.ensure_future(backend.acquire(f)) for f in FIXTURES]
        await until_queued(backend, len(FIXTURES))
        for fixture_id in FIXTURES:
            await backend.release(backend.permit_for_request(f"r-{fixture_id}"))
        granted = await asyncio.gather(*waiters)
        assert [g.queue_position for g in granted] == [1] * len(FIXTURES)
        on_node = keys_by_node(redis_cluster)
    finally:
        await backend.close()

    layout = KeyLayout(CLUSTER_SHARDS)
    node_of_fixture: dict[str, set[int]] = defaultdict(set)
    slots_of_fixture: dict[str, set[int]] = defaultdict(set)
    for port, keys in on_node.items():
        for key in keys:
            owner = fixture_of(key)
            if owner is not None:
                node_of_fixture[owner].add(port)
                slots_of_fixture[owner].add(key_slot(key.encode()))
    assert sorted(node_of_fixture) == sorted(FIXTURES)
    for fixture_id in FIXTURES:
        # A script's KEYS (the fixture's own and its shard's rows) hash to one slot...
        script_slots = {key_slot(k.encode()) for k in layout.script_keys(fixture_id)}
        assert len(script_slots) == 1
        # ...and that is where the fixture's keys are, all on one node.
        assert slots_of_fixture[fixture_id] == script_slots
        assert len(node_of_fixture[fixture_id]) == 1
    # The fixtures spread over all three nodes, and so do the shards' rows.
    assert {port for ports in node_of_fixture.values() for port in ports} == set(on_node)
    rows = {port for port, keys in on_node.items() for k in keys if fixture_of(k) is None}
    assert rows == set(on_node)
    assert {p.permit_id.partition(".")[0] for p in held} == {
        str(layout.shard_of(f)) for f in FIXTURES
    }


async def test_three_replicas_on_a_cluster_keep_fifo_across_replicas(cluster_url: str) -> None:
    policy = PermitPolicy(limit=1, window=1, queue=10)
    replicas = [open_redis_backend(cluster_url, policy) for _ in range(3)]
    layout = KeyLayout(CLUSTER_SHARDS)

    def node_of(fixture_id: str) -> int:  # redis-cli gives each node a third of the slots
        return key_slot(layout.script_keys(fixture_id)[0].encode()) * 3 // 16384

    fixtures = [FIXTURES[0], next(f for f in FIXTURES if node_of(f) != node_of(FIXTURES[0]))]
    try:
        for fixture_id in fixtures:
            held = await replicas[0].acquire(fixture_id)
            waiters: list[asyncio.Future[Grant]] = []
            for i in range(6):  # arrivals alternate between the replicas
                replica = replicas[i % 3]
                before = replica.waiters_here()
                waiters.append(asyncio.ensure_future(replica.acquire(fixture_id)))
                await until_queued(replica, before + 1)
            # Each grant goes back at once (not sent), so the next ticket's grant follows in
            # the same script: the order is Redis's, whichever replica answers first.
            await replicas[2].release(held.permit_id, Outcome.NOT_SENT)
            for waiter in waiters:
                grant = await asyncio.wait_for(waiter, 5)
                await replicas[1].release(grant.permit_id, Outcome.NOT_SENT)
            grants = [w.result() for w in waiters]
            assert [g.queue_position for g in grants] == [1, 2, 3, 4, 5, 6]
            granted_at = [g.granted_at for g in grants]
            assert granted_at == sorted(granted_at)
        with pytest.raises(PermitNotFound):
            await replicas[0].release(f"{CLUSTER_SHARDS + 1}.not-a-permit")
    finally:
        for replica in replicas:
            await replica.close()


async def test_three_replicas_on_a_cluster_never_let_more_than_the_limit_into_a_window(
    cluster_url: str,
) -> None:
    """As tests/redis/test_replicas.py's test of the same name, on three fixtures at once."""
    policy = PermitPolicy(limit=3, window=0.3, queue=100)
    replicas: list[RedisBackend] = [open_redis_backend(cluster_url, policy) for _ in range(3)]
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    rng = random.Random(11)
    fixtures = FIXTURES[:3]

    async def call(replica: RedisBackend, fixture_id: str) -> None:
        grant = await replica.acquire(fixture_id)
        await asyncio.sleep(rng.uniform(0, 0.05))  # the upstream call
        sent = time.time()
        await rng.choice(replicas).release(grant.permit_id)
        spans[fixture_id].append((grant.granted_at, sent + policy.window))

    try:
        await asyncio.gather(
            *(call(replicas[i % 3], fixtures[i % 3]) for i in range(3 * len(fixtures) * 5))
        )
        for fixture_spans in spans.values():
            assert_never_over_the_limit(fixture_spans, policy, windows=3)
        # Any replica's Stats merges the shards: the fleet's totals.
        stats = await replicas[2].stats(StatsView(top_n=3))
        assert (stats.totals.calls_total, stats.totals.in_flight) == (45, 0)
    finally:
        for replica in replicas:
            await replica.close()


async def test_a_stopped_node_fails_its_callers_closed_and_service_resumes_once_it_is_back(
    cluster_url: str, redis_cluster: RedisClusterNodes
) -> None:
    """A node restarted without persistence comes back empty: what that forgets is a single
    Redis's loss without persistence (README)."""
    backend = open_redis_backend(cluster_url, PermitPolicy(limit=5, window=1))
    layout = KeyLayout(CLUSTER_SHARDS)
    # A fixture served by the last node (redis-cli gives it the last third of the slots).
    fixture_id = next(
        f for f in FIXTURES if key_slot(layout.script_keys(f)[0].encode()) * 3 // 16384 == 2
    )
    stopped = redis_cluster.nodes[2]

    def restart(node: RedisServer) -> None:
        node.start()
        redis_cluster.until_every_slot_is_served()

    try:
        await backend.acquire(fixture_id)
        stopped.stop()
        refused = await asyncio.gather(
            *(backend.acquire(fixture_id) for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(r, BackendUnavailable) for r in refused), refused
        assert (backend.unready_reason() or "").startswith("redis unreachable")
        await asyncio.to_thread(restart, stopped)

        async def granted() -> bool:
            try:
                await backend.acquire(fixture_id)
            except BackendUnavailable:
                return False
            return True

        await eventually(granted, within=10)
        assert backend.unready_reason() is None
    finally:
        await backend.close()
        if stopped.proc is None:  # the Cluster is the session's: whole again for the next test
            await asyncio.to_thread(restart, stopped)


def test_a_cluster_url_names_its_nodes_and_shards() -> None:
    nodes, options = parse_cluster_url("rediss+cluster://u:p%40ss@10.0.0.1:7000,node2")
    assert nodes == [("10.0.0.1", 7000), ("node2", 6379)]
    assert options == {"ssl": True, "username": "u", "password": "p@ss"}
    with pytest.raises(ValueError, match="one database"):
        parse_cluster_url("redis+cluster://h:7000/2")
    with pytest.raises(ValueError, match="Cluster"):
        open_redis_backend("redis://127.0.0.1:6379/0?shards=4", PermitPolicy())
    with pytest.raises(ValueError, match="shards must be 1 to 256"):
        open_redis_backend("redis+cluster://127.0.0.1:7000?shards=0", PermitPolicy())


# -- The fleet-wide caps, exact across shards (the fleet ledger) ---------------------------------


def on_different_shards(count: int, prefix: str = "fleet") -> list[str]:
    """`count` fixture ids, no two in one shard."""
    layout, found = KeyLayout(CLUSTER_SHARDS), dict[int, str]()
    for i in itertools.count():
        fixture_id = f"{prefix}-{i}"
        found.setdefault(layout.shard_of(fixture_id), fixture_id)
        if len(found) == count:
            return list(found.values())
    raise AssertionError("unreachable")


def fleet_replica(
    cluster: RedisClusterNodes, policy: PermitPolicy, reservation_grace: float = 5.0
) -> RedisBackend:
    return RedisBackend(
        cluster.url,
        policy,
        call_timeout=2.0,
        shards=CLUSTER_SHARDS,
        reservation_grace=reservation_grace,
    )


async def ledger_counts(backend: RedisBackend) -> dict[str, int]:
    counts = await backend._redis.hgetall(KeyLayout.ledger_keys()[0])
    return {str(field): int(value) for field, value in counts.items()}


async def admitted(backend: RedisBackend, fixture_id: str, caller: str = "") -> bool:
    try:
        await backend.acquire(fixture_id, caller=caller)
    except TooManyFixtures:
        return False
    return True


async def test_a_callers_fixture_cap_holds_across_shards_and_frees_when_one_is_untracked(
    cluster_url: str, redis_cluster: RedisClusterNodes
) -> None:
    policy = PermitPolicy(limit=1, window=1, max_fixtures_per_caller=3)
    backend = fleet_replica(redis_cluster, policy)
    mine, others = on_different_shards(3, "mine"), on_different_shards(CLUSTER_SHARDS, "next")
    try:
        held = [await backend.acquire(f, caller="x") for f in mine]
        for fixture_id in others:  # every shard refuses x's next new fixture...
            with pytest.raises(TooManyFixtures) as refused:
                await backend.acquire(fixture_id, caller="x")
            assert (refused.value.caller, refused.value.max_fixtures) == ("x", 3)
        assert await admitted(backend, others[0], caller="y")  # ...and only x's
        # A permit not sent leaves no trace in the window: its fixture is untracked at once.
        await backend.release(held[0].permit_id, Outcome.NOT_SENT, caller="x")
        await eventually(lambda: admitted(backend, others[1], caller="x"), within=3)
        with pytest.raises(TooManyFixtures):
            await backend.acquire(others[2], caller="x")
        # The untracked fixture's count came back through its shard's outbox, once.
        assert await ledger_counts(backend) == {"fixtures": 4, "f|x": 3, "f|y": 1}
    finally:
        await backend.close()


async def test_a_callers_waiter_cap_holds_across_shards(
    cluster_url: str, redis_cluster: RedisClusterNodes
) -> None:
    policy = PermitPolicy(limit=1, window=1, queue=5, max_waiters_per_caller=2)
    backend = fleet_replica(redis_cluster, policy)
    fixtures = on_different_shards(3, "queued")
    try:
        for fixture_id in fixtures:
            await backend.acquire(fixture_id)  # full: the next caller waits
        first = asyncio.ensure_future(backend.acquire(fixtures[0], caller="x"))
        await until_queued(backend, 1)
        second = asyncio.ensure_future(backend.acquire(fixtures[1], caller="x"))
        await until_queued(backend, 2)
        with pytest.raises(CallerQueueFull):
            await backend.acquire(fixtures[2], caller="x")
        # The reference checks the caller's cap first: not WAIT_TOO_LONG for a budget of 0.
        with pytest.raises(CallerQueueFull):
            await backend.acquire(fixtures[2], caller="x", budget=0)
        third = asyncio.ensure_future(backend.acquire(fixtures[2], caller="y"))
        await until_queued(backend, 3)
        first.cancel()  # x leaves a queue: its next waiter is let in, on another shard

        async def queued() -> bool:
            try:
                await asyncio.wait_for(backend.acquire(fixtures[2], caller="x"), 0.05)
            except CallerQueueFull:
                return False
            except TimeoutError:
                return True  # it waits in the queue (and leaves it as it is cancelled)
            raise AssertionError("granted a full fixture")

        await eventually(queued, within=3)
        for waiter in (second, third):
            waiter.cancel()
    finally:
        await backend.close()


async def test_max_fixtures_admits_exactly_that_many_over_shards_from_racing_replicas(
    cluster_url: str, redis_cluster: RedisClusterNodes
) -> None:
    policy = PermitPolicy(limit=2, window=1, max_fixtures=5)
    replicas = [fleet_replica(redis_cluster, policy) for _ in range(3)]
    fixtures = on_different_shards(CLUSTER_SHARDS, "race")
    try:
        answers = await asyncio.gather(
            *(
                replicas[i % 3].acquire(f, caller=f"c{i % 2}")
                for i, f in enumerate([*fixtures, *fixtures])  # each fixture asked twice
            ),
            return_exceptions=True,
        )
        granted = {g.fixture_id for g in answers if isinstance(g, Grant)}
        refused = [r for r in answers if isinstance(r, TooManyFixtures)]
        assert len(granted) == 5, answers  # not fewer: each shard alone would allow 1
        assert all(r.caller is None and r.max_fixtures == 5 for r in refused), refused
        stats = await replicas[0].stats(StatsView(top_n=0))
        assert stats.totals.fixtures_tracked == 5
        counts = await ledger_counts(replicas[0])  # refused reservations were given back
        assert (counts["fixtures"], counts.get("f|c0", 0) + counts.get("f|c1", 0)) == (5, 5)
        # Untracked at once on every replica (not sent): three replicas drain the outboxes,
        # and each entry is applied once.
        await asyncio.gather(
            *(
                replicas[i % 3].release(g.permit_id, Outcome.NOT_SENT, caller=f"c{i % 2}")
                for i, g in enumerate(answers)
                if isinstance(g, Grant)
            )
        )

        async def ledger_empty() -> bool:
            return await ledger_counts(replicas[1]) == {}

        await eventually(ledger_empty, within=3)
    finally:
        for replica in replicas:
            await replica.close()


async def test_a_reservation_whose_replica_died_is_revoked_within_the_grace(
    cluster_url: str, redis_cluster: RedisClusterNodes
) -> None:
    policy = PermitPolicy(limit=1, window=1, max_fixtures=1)
    backend = fleet_replica(redis_cluster, policy, reservation_grace=0.5)
    fixture_id = on_different_shards(1, "after")[0]
    try:
        # A replica reserved the fleet's one fixture and died before its shard saw it.
        caps = [str(policy.max_fixtures), "10", "10"]
        await backend._ledger("reserve", ["lost", "0", "f", "", *caps])
        with pytest.raises(TooManyFixtures):
            await backend.acquire(fixture_id)
        took = await eventually(lambda: admitted(backend, fixture_id), within=3)
        assert took < 2.5  # the grace, then the sweep's next pass (each second at most)
        assert await ledger_counts(backend) == {"fixtures": 1}
    finally:
        await backend.close()
