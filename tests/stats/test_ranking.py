"""The shared stats ranking on virtual time, against a brute-force ranking of every fixture."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from hotspot_core import ranking
from hotspot_core.errors import PermitError
from hotspot_core.grants import Outcome
from hotspot_core.memory import MemoryBackend
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import FixtureStats, StatsSnapshot, StatsView

pytestmark = pytest.mark.looptime

FIXTURES = [f"fx-{i:03d}" for i in range(150)]
UNTRACKED = "never-seen"


def brute_force(b: MemoryBackend, now: float) -> dict[str, tuple[int, int]]:
    """Every tracked fixture's (calls_in_window, queue_depth), measured one by one."""
    return {
        f: (fx.window.count_at(now), fx.queue_depth())
        for f, fx in b._fixtures.items()  # the reference reads the state itself
    }


def heat_of(row: FixtureStats) -> tuple[int, int]:
    return row.calls_in_window, row.queue_depth


def check(b: MemoryBackend, snapshots: list[StatsSnapshot], views: list[StatsView]) -> None:
    now = asyncio.get_running_loop().time()
    truth = brute_force(b, now)
    hottest = sorted(truth.values(), reverse=True)
    for view, snapshot in zip(views, snapshots, strict=True):
        assert snapshot.totals.fixtures_tracked == len(truth)
        for row in snapshot.fixtures:  # every row exact at generation time
            assert heat_of(row) == truth.get(row.fixture_id, (0, 0)), row
        if view.fixture_ids:
            assert [r.fixture_id for r in snapshot.fixtures] == sorted(
                view.fixture_ids,
                key=lambda f: (-truth.get(f, (0, 0))[0], -truth.get(f, (0, 0))[1], f),
            )
        else:
            # The n hottest: the same heats as the brute force, hottest first (ties any order).
            assert [heat_of(r) for r in snapshot.fixtures] == hottest[: view.top_n]
            assert len({r.fixture_id for r in snapshot.fixtures}) == len(snapshot.fixtures)


async def drive(b: MemoryBackend, rng: random.Random, steps: int, views: list[StatsView]) -> None:
    permits: list[str] = []
    waiting: list[asyncio.Task[object]] = []
    for _ in range(steps):
        op = rng.random()
        # A few fixtures take most of the traffic, so heats spread and shift.
        fixture_id = FIXTURES[min(int(rng.expovariate(1 / 30)), len(FIXTURES) - 1)]
        if op < 0.5:
            with contextlib.suppress(PermitError):
                permits.append((await b.acquire(fixture_id, budget=0)).permit_id)
        elif op < 0.6:
            waiting.append(asyncio.ensure_future(b.acquire(fixture_id, budget=30)))
        elif op < 0.8 and permits:
            outcome = rng.choice([Outcome.SUCCESS, Outcome.SUCCESS, Outcome.NOT_SENT])
            with contextlib.suppress(PermitError):  # its lease may have ended: abandoned
                await b.release(permits.pop(rng.randrange(len(permits))), outcome)
        else:
            await asyncio.sleep(rng.choice([0.0, 0.2, 1.0, 3.0, 7.0]))
        for task in [t for t in waiting if t.done()]:
            waiting.remove(task)
            if task.exception() is None:
                permits.append(task.result().permit_id)  # type: ignore[attr-defined]
        check(b, await b.snapshots(views), views)
    for task in waiting:
        task.cancel()


@pytest.mark.parametrize("seed", range(6))
async def test_every_view_matches_a_brute_force_ranking(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ranking, "RESCAN_SLICE", 7)  # rescans run over many slices
    monkeypatch.setattr(ranking, "MARGIN", 2)  # little room: rescans happen
    b = MemoryBackend(PermitPolicy(limit=5, window=10, lease=4, queue=3, max_wait=30))
    views = [
        StatsView(top_n=1),
        StatsView(top_n=3),
        StatsView(top_n=10),
        StatsView(fixture_ids=(FIXTURES[0], FIXTURES[40], UNTRACKED)),
    ]
    await drive(b, random.Random(seed), 400, views)
    assert b._ranking.rescans >= 2  # the test went through rescans...
    assert b._ranking.refreshes > 2 * b._ranking.rescans  # ...and refreshes
    await b.close()


async def test_one_view_alone_matches_too() -> None:
    """stats(view) and a tick's snapshots(views) share one path; check the single call too."""
    b = MemoryBackend(PermitPolicy(limit=5, window=10, lease=4, queue=3, max_wait=30))
    rng = random.Random(99)
    for _ in range(200):
        fixture_id = rng.choice(FIXTURES[:30])
        with contextlib.suppress(PermitError):
            await b.acquire(fixture_id, budget=0)
        if rng.random() < 0.2:
            await asyncio.sleep(1.5)
        view = StatsView(top_n=rng.choice([1, 5, 50]))
        check(b, [await b.stats(view)], [view])
    await b.close()


async def test_the_ranking_goes_idle_without_readers_and_answers_exactly_after() -> None:
    b = MemoryBackend(PermitPolicy(limit=5, window=100))
    await b.acquire("a")
    await b.stats(StatsView(top_n=2))
    noted = b._ranking.note
    await asyncio.sleep(ranking.IDLE_AFTER + 1)
    assert b._ranking.note is not noted  # idle: grants are no longer noted
    for _ in range(3):
        await b.acquire("b")
    snapshot = await b.stats(StatsView(top_n=2))
    assert [(r.fixture_id, r.calls_in_window) for r in snapshot.fixtures] == [("b", 3), ("a", 1)]
    await b.close()
