"""Several warmers do not double the warming traffic: real processes, real Redis.

Two `hotspot-warmer run` processes share a real redis-server, the real permit server and the
real fake Optic Odds (time compressed: a 3 s window, 20 calls per window, a 25 % share, so one
refresh per fixture every 0.6 s and a lease of 3 x 0.6 = 1.8 s). Per major fixture exactly one
warmer refreshes, the fake counts no more than one warmer's share, and when the lease holder
is killed (SIGKILL) or stopped (SIGTERM) another warmer takes the fixture over within the lease.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from hotspot_client.optic_odds.cache.entry import CacheEntry
from hotspot_client.optic_odds.cache.redis_store import LOCK_SUFFIX
from hotspot_warmer.leases import PREFIX as LEASE_PREFIX
from tests.e2e.processes import (
    ServiceProcess,
    fake_optic_odds,
    permit_server,
    running,
    warmer,
)
from tests.redis_server import RedisServer, redis_server_missing

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(redis_server_missing() is not None, reason=str(redis_server_missing())),
]

LIMIT = 20
WINDOW = 3.0
SHARE = 0.25
BUDGET = int(SHARE * LIMIT)
"""Calls per fixture per window the warming may make: 5 per 3 s."""
EVERY = WINDOW / BUDGET
"""One refresh per fixture every 0.6 s (one sportsbook batch)."""
LEASE = 3 * EVERY
"""The lease's length (PrefetchJob holds it for 3 refreshes)."""
SLACK = 1.0
"""Scheduling slack on a shared 2-core machine."""
MAJORS = ("SEVWARM1", "SEVWARM2", "SEVWARM3")
REGULAR = "SEVREGULAR1"
NOT_LEASED = "another warmer holds the fixture"

WARMER_TOML = f"""
[warming]
lead = "1h"             # kick-off is 30 min away: warming runs from the first poll
lookahead = "2h"
poll_every = "500ms"
max_game_length = "1h"
budget_share = {SHARE}
limit = {LIMIT}
window = "{WINDOW:g}s"
sportsbooks = ["DraftKings"]
markets = ["Moneyline"]
# Entries are never fresh, so every refresh the lease holder makes reaches the upstream:
# without leases two warmers would make twice the calls.
live_fresh = "0s"
live_max_stale = "30s"
pregame_fresh = "0s"
pregame_max_stale = "30s"

[[rule]]
name = "super-bowl"
priority = 100
leagues = ["nfl"]
names = ["super ?bowl"]
"""


def _fixtures(kickoff: datetime) -> list[dict[str, Any]]:
    start = kickoff.isoformat().replace("+00:00", "Z")
    majors = [
        {
            "id": fixture_id,
            "start_date": start,
            "status": "unplayed",
            "league": {"id": "nfl", "name": "NFL", "numerical_id": 367},
            "season_type": "Playoffs",
            "tournament_stage": "Super Bowl LX",
        }
        for fixture_id in MAJORS
    ]
    regular = {
        "id": REGULAR,
        "start_date": start,
        "status": "unplayed",
        "league": {"id": "nba", "name": "NBA", "numerical_id": 1},
        "season_type": "Regular Season",
        "tournament_stage": None,
    }
    return [*majors, regular]


@dataclass
class Rig:
    redis: redis.Redis
    fake_url: str
    permits: str
    redis_url: str
    config: Path
    processes: list[ServiceProcess]

    def start_warmer(self, name: str) -> ServiceProcess:
        process = warmer(self.permits, self.fake_url, self.redis_url, self.config, name)
        self.processes.append(process)
        return process

    def owner(self, fixture_id: str) -> str | None:
        raw = self.redis.get(LEASE_PREFIX + fixture_id)
        return None if raw is None else bytes(raw).decode()  # type: ignore[arg-type]

    def served_at(self) -> dict[str, list[float]]:
        stats = httpx.get(f"{self.fake_url}/_fake/stats", timeout=5).raise_for_status().json()
        assert stats["totals"]["violations"] == 0
        return {f: list(row["served_at"]) for f, row in stats["fixtures"].items()}


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    kickoff = datetime.now(UTC) + timedelta(minutes=30)
    listing = tmp_path / "fixtures.json"
    listing.write_text(json.dumps(_fixtures(kickoff)))
    config = tmp_path / "warmer.toml"
    config.write_text(WARMER_TOML)
    with RedisServer(tmp_path / "redis") as server, running() as processes:
        upstream = fake_optic_odds(LIMIT, f"{WINDOW:g}s", latency="20ms", fixtures=listing)
        permits = permit_server("--limit", str(LIMIT), "--window", f"{WINDOW:g}s")
        processes += [upstream, permits]
        client = redis.Redis.from_url(server.url)
        try:
            yield Rig(client, upstream.address, permits.address, server.url, config, processes)
        finally:
            client.close()


def status(process: ServiceProcess) -> dict[str, dict[str, Any]]:
    """The warmer's /status rows by fixture id."""
    answer = httpx.get(f"http://{process.address}/status", timeout=5).raise_for_status().json()
    return {row["fixture_id"]: row for row in answer["warmings"]}


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 15.0) -> float:
    """Seconds until `condition` held (looked at every 20 ms); fails after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - start


def refused_by_lease(
    process: ServiceProcess, times: int, fixtures: tuple[str, ...] = MAJORS
) -> Callable[[], bool]:
    """True once `process` found each of `fixtures` leased by another warmer `times` times."""

    def check() -> bool:
        rows = status(process)
        return all(rows.get(f, {}).get("results", {}).get(NOT_LEASED, 0) >= times for f in fixtures)

    return check


def most_in_any_window(times: list[float]) -> int:
    """The most calls any half-open interval of WINDOW seconds held."""
    return max((sum(1 for u in times if t <= u < t + WINDOW) for t in times), default=0)


@contextmanager
def _stopped_first(process: ServiceProcess, processes: list[ServiceProcess]) -> Iterator[None]:
    """Leave `process` out of the clean-exit check (it is killed on purpose)."""
    processes.remove(process)
    try:
        yield
    finally:
        process.kill()


def test_two_warmers_warm_each_fixture_once_and_take_over_a_stopped_ones_leases(
    rig: Rig,
) -> None:
    a, b = rig.start_warmer("a"), rig.start_warmer("b")
    names = {"a": a, "b": b}
    # Both warmers poll and warm: every major fixture's lease is held by one of them, and the
    # other has been turned away by it a few times.
    wait_for("every major fixture leased", lambda: all(rig.owner(f) for f in MAJORS))
    owners = {f: rig.owner(f) for f in MAJORS}
    assert set(owners.values()) <= {"a", "b"}
    for fixture_id, owner in owners.items():
        turned_away = names["b" if owner == "a" else "a"]
        wait_for(
            f"{turned_away.name} refused {fixture_id}",
            refused_by_lease(turned_away, 1, (fixture_id,)),
        )
    time.sleep(WINDOW + EVERY)  # a steady window and a bit, two warmers running

    # Exactly one warmer refreshed each major fixture; the regular one is not warmed at all.
    rows = {"a": status(a), "b": status(b)}
    for fixture_id, owner in owners.items():
        assert owner is not None
        other = "b" if owner == "a" else "a"
        holder_row, other_row = rows[owner][fixture_id], rows[other][fixture_id]
        assert rig.owner(fixture_id) == owner, "the lease changed hands with both warmers up"
        assert holder_row["results"].get("refreshed", 0) >= BUDGET, holder_row
        assert "refreshed" not in other_row["results"], other_row
        assert other_row["results"][NOT_LEASED] >= BUDGET, other_row
        assert other_row["last_result"] == NOT_LEASED
        assert 0 < holder_row["budget_used"] <= 1.0
    assert REGULAR not in rows["a"]
    assert REGULAR not in rows["b"]

    # The upstream saw one warmer's share per fixture, not two; none for the regular fixture.
    steady = rig.served_at()
    assert REGULAR not in steady
    for fixture_id in MAJORS:
        assert BUDGET - 1 <= most_in_any_window(steady[fixture_id]) <= BUDGET, steady[fixture_id]

    # The warmed entries carry the warmer's configured freshness (0 s fresh, 30 s stale).
    scanned = rig.redis.scan_iter(match="hotspot:odds:v1:fixtures/odds\\?*")
    keys = [k for k in scanned if not k.endswith(LOCK_SUFFIX.encode())]  # not a refresh's lock
    assert len(keys) == len(MAJORS)
    for key in keys:
        raw = rig.redis.get(key)
        assert isinstance(raw, bytes)
        entry = CacheEntry.from_bytes(raw)
        assert (entry.fresh_for, entry.max_stale) == (0.0, 30.0)

    # Kill the holder of the first fixture outright: its leases end after their TTL, and the
    # survivor takes every one of them over within the lease time (and one refresh period).
    victim_name = owners[MAJORS[0]]
    assert victim_name is not None
    victim = names[victim_name]
    survivor_name = "b" if victim_name == "a" else "a"
    victims_fixtures = [f for f, o in owners.items() if o == victim_name]
    with _stopped_first(victim, rig.processes):
        victim.proc.send_signal(signal.SIGKILL)
        killed_at = time.time()
        took = wait_for(
            "the survivor to take the killed warmer's leases",
            lambda: all(rig.owner(f) == survivor_name for f in victims_fixtures),
        )
    print(f"\ntakeover after SIGKILL: {took:.2f}s (lease {LEASE:.1f}s, refresh every {EVERY}s)")
    assert took <= LEASE + EVERY + SLACK
    wait_for(  # and warms: every fixture refreshed again since the kill
        "the survivor to refresh every fixture",
        lambda: all(any(t >= killed_at for t in rig.served_at().get(f, [])) for f in MAJORS),
    )

    # A third warmer joins; stop the survivor cleanly: it releases its leases on the way out,
    # so the newcomer takes over at its next refresh rather than after the TTL.
    survivor = names[survivor_name]
    c = rig.start_warmer("c")
    wait_for("c turned away by the survivor's leases", refused_by_lease(c, 2))
    assert all(rig.owner(f) == survivor_name for f in MAJORS)
    survivor.proc.send_signal(signal.SIGTERM)
    stopped_at = time.time()
    assert survivor.proc.wait(10) == 0
    assert {rig.owner(f) for f in MAJORS} <= {None, "c"}, "a clean stop left its leases behind"
    took = wait_for("c to take every lease", lambda: all(rig.owner(f) == "c" for f in MAJORS))
    took_from_stop = time.time() - stopped_at
    print(f"takeover after SIGTERM: {took_from_stop:.2f}s")
    assert took_from_stop <= LEASE + EVERY + SLACK
    wait_for(
        "c to refresh every fixture",
        lambda: all(status(c)[f]["results"].get("refreshed", 0) >= 2 for f in MAJORS),
    )

    # Over the whole run: within the share in every window that holds no clean handover (a
    # released lease lets the next warmer refresh at once, so one window may hold one more).
    served = rig.served_at()
    for fixture_id in MAJORS:
        times = served[fixture_id]
        before_kill = [t for t in times if t < killed_at]
        between = [t for t in times if killed_at <= t < stopped_at]
        after = [t for t in times if t >= stopped_at]
        assert most_in_any_window(before_kill) <= BUDGET
        assert most_in_any_window(between) <= BUDGET
        assert most_in_any_window(after) <= BUDGET
        assert most_in_any_window(times) <= BUDGET + 1
        # And warming went on through both handovers.
        assert between
        assert after
    assert REGULAR not in served
