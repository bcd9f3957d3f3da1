"""The seed's Task 5 as scenarios. Each runs against a live server, keeps the generator's log,
and holds it against what the server says (Stats, /metrics, /health/hot-spots): a `Check` per
figure that both sides count."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hotspot_client import PermitClient
from hotspot_load.driver import LoadLog, Meter, Plan, drive
from hotspot_load.processes import SecondEntry, run_in_processes
from hotspot_load.server_view import ServerView
from hotspot_load.windows import most_grants_in_any_window, over_limit_fixtures

SCENARIOS = ("single-fixture", "sustained", "retry-after", "metrics", "full-budget")


@dataclass(frozen=True)
class Scale:
    """The server's policy (as it runs) and how big each scenario is."""

    limit: int = 50
    window: float = 60.0
    queue: int = 100
    seconds: float = 60.0
    """Length of each sustained, retry-after, metrics and full-budget run."""
    single_sizes: tuple[int, ...] = (100, 1_000, 10_000)
    overloads: tuple[float, ...] = (2.0, 5.0, 20.0)
    fixtures: int = 10_000
    """Fixtures of the full-budget run."""
    processes: int = 2
    """Load processes of the full-budget run."""


@dataclass
class Check:
    what: str
    generator: float
    server: float
    ok: bool


@dataclass
class Result:
    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    log: LoadLog | None = None
    per_second: list[SecondEntry] = field(default_factory=list)
    start: float = 0.0
    queue_depth: list[tuple[float, int]] = field(default_factory=list)
    """(seconds since start, queue depth the server reported) of the hot fixture."""
    hot_fixture: str = ""

    def check(self, what: str, generator: float, server: float, ok: bool | None = None) -> None:
        self.checks.append(
            Check(what, generator, server, generator == server if ok is None else ok)
        )


Progress = Callable[[str, SecondEntry], None]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


async def _run(
    target: str, plan: Plan, progress: Progress, name: str, sample: Callable[[], Any] | None = None
) -> tuple[LoadLog, Meter]:
    log = LoadLog(list(plan.fixture_ids))
    meter = Meter(time.monotonic())
    async with PermitClient(target) as client:
        await drive(client, plan, log, meter, on_second=lambda entry: progress(name, entry))
    return log, meter


async def _fixture_counts(
    view: ServerView, result: Result, fixture_ids: list[str], log: LoadLog
) -> None:
    """Per fixture, grants and refusals: the generator's against Stats'."""
    stats = await view.stats(fixture_ids)
    by_id = {f.fixture_id: f for f in stats.fixtures}
    grants = sum(1 for f in log.grant_fixture if log.fixtures[f] in by_id)
    refused = sum(1 for f in log.refused_fixture if log.fixtures[f] in by_id)
    result.check("grants (Stats calls_total)", grants, sum(f.calls_total for f in by_id.values()))
    result.check(
        "refusals (Stats rejected_total)", refused, sum(f.rejected_total for f in by_id.values())
    )


def _run_id() -> str:
    return uuid.uuid4().hex[:6]


async def single_fixture(view: ServerView, scale: Scale, progress: Progress) -> list[Result]:
    """5.1: n acquires at once on one new fixture; those queued wait for their turn."""
    results = []
    for n in scale.single_sizes:
        fixture = f"single-{n}-{_run_id()}"
        plan = Plan([fixture], burst=n)  # the queued wait their turn, however long
        log, meter = await _run(view.target, plan, progress, f"single-fixture {n}")
        result = Result(
            f"single-fixture {n}", log=log, per_second=meter.per_second, start=meter.start
        )
        result.hot_fixture = fixture
        at_once = len(log.queued) - sum(log.queued)
        refusal_times = sorted(log.refused_at)
        result.figures = {
            "concurrent": n,
            "granted at once": at_once,
            "granted from the queue": sum(log.queued),
            "refused": len(log.refused_at),
            "every refusal answered after (s)": round(
                (refusal_times[-1] - meter.start) if refusal_times else 0.0, 3
            ),
            "errors": len(log.errors),
        }
        result.check("granted at once = limit", at_once, min(n, scale.limit))
        result.check(
            "queued then granted = queue",
            sum(log.queued),
            min(max(0, n - scale.limit), scale.queue),
        )
        await _fixture_counts(view, result, [fixture], log)
        results.append(result)
    return results


async def _sample_queue(
    view: ServerView, fixture: str, start: float, into: list[tuple[float, int]]
) -> None:
    while True:
        stats = await view.stats([fixture])
        depth = stats.fixtures[0].queue_depth if stats.fixtures else 0
        into.append((time.monotonic() - start, depth))
        await asyncio.sleep(0.25)


async def sustained(view: ServerView, scale: Scale, progress: Progress) -> list[Result]:
    """5.2: one fixture asked k times its limit for the run: the queue stays bounded and grants
    stay exactly at the limit (the most in any window is the limit, and no more)."""
    results = []
    for factor in scale.overloads:
        fixture = f"sustained-{factor:g}x-{_run_id()}"
        plan = Plan(
            [fixture],
            seconds=scale.seconds,
            rate=factor * scale.limit / scale.window,
            max_wait=scale.window * 3,
        )
        depth: list[tuple[float, int]] = []
        sampler = asyncio.create_task(_sample_queue(view, fixture, time.monotonic(), depth))
        try:
            log, meter = await _run(view.target, plan, progress, f"sustained {factor:g}x")
        finally:
            sampler.cancel()
        result = Result(
            f"sustained {factor:g}x", log=log, per_second=meter.per_second, start=meter.start
        )
        result.hot_fixture, result.queue_depth = fixture, depth
        most = most_grants_in_any_window(log.granted_at, scale.window)
        over = over_limit_fixtures(
            log.grant_fixture, log.granted_at, log.released_at, scale.window, scale.limit
        )
        waits = list(log.waited)
        result.figures = {
            "offered per window": factor * scale.limit,
            "grants": len(log.granted_at),
            "refused": len(log.refused_at),
            "most grants in one window": most,
            "peak queue depth": max((d for _, d in depth), default=0),
            "wait p50 / p99 (s)": f"{percentile(waits, 0.5):.2f} / {percentile(waits, 0.99):.2f}",
            "errors": len(log.errors),
        }
        result.check("most grants in one window = limit", most, scale.limit)
        result.check("over-limit windows (grant to release)", len(over), 0)
        result.check(
            "peak queue depth <= queue",
            max((d for _, d in depth), default=0),
            scale.queue,
            ok=max((d for _, d in depth), default=0) <= scale.queue,
        )
        await _fixture_counts(view, result, [fixture], log)
        results.append(result)
    return results


async def retry_after(view: ServerView, scale: Scale, progress: Progress) -> list[Result]:
    """5.3: callers that never queue (max_wait 0) and, refused, wait their retry_delay and ask
    again: the share admitted on that retry, and the promised against the actual wait."""
    fixture = f"retry-{_run_id()}"
    plan = Plan(
        [fixture],
        seconds=scale.seconds,
        rate=2 * scale.limit / scale.window,
        max_wait=0,
        honour_retry=True,
    )
    log, meter = await _run(view.target, plan, progress, "retry-after")
    result = Result("retry-after", log=log, per_second=meter.per_second, start=meter.start)
    result.hot_fixture = fixture
    first_try = [r for r in log.retried if r[2] == 1]
    errors = [actual - promised for promised, actual, _ in log.retried]
    result.figures = {
        "grants": len(log.granted_at),
        "refusals": len(log.refused_at),
        "callers that waited their retry_delay": log.retrying,
        "... and were granted in the end": len(log.retried),
        "admitted on their first retry": len(first_try),
        "share admitted on first retry": f"{len(first_try) / max(1, log.retrying):.1%}",
        "actual - promised wait, median / p90 / max (s)": (
            f"{statistics.median(errors):.3f} / {percentile(errors, 0.9):.3f} / {max(errors):.3f}"
            if errors
            else "-"
        ),
        "errors": len(log.errors),
    }
    await _fixture_counts(view, result, [fixture], log)
    return [result]


def _series(metrics: dict[tuple[str, str], float], name: str, fixture: str | None = None) -> float:
    labels = f'fixture_id="{fixture}"' if fixture is not None else ""
    return metrics.get((name, labels), 0.0)


async def metrics(view: ServerView, scale: Scale, progress: Progress) -> list[Result]:
    """5.5: a few fixtures at 1.5 times their limit; every second and at the end, the generator's
    counts against /metrics, Stats and /health/hot-spots."""
    fixture_ids = [f"metrics-{i}-{_run_id()}" for i in range(5)]
    plan = Plan(
        fixture_ids,
        seconds=scale.seconds,
        rate=1.5 * len(fixture_ids) * scale.limit / scale.window,
        max_wait=0,
    )
    before = await view.metrics()
    lag: list[tuple[float, float]] = []
    log = LoadLog(fixture_ids)
    meter = Meter(time.monotonic())

    async def sample() -> None:
        while True:
            await asyncio.sleep(1.0)
            m = await view.metrics()
            served = _series(m, "hotspot_api_calls_total") - _series(
                before, "hotspot_api_calls_total"
            )
            lag.append((time.monotonic() - meter.start, len(log.granted_at) - served))

    sampler = asyncio.create_task(sample())
    try:
        async with PermitClient(view.target) as client:
            await drive(client, plan, log, meter, on_second=lambda e: progress("metrics", e))
    finally:
        sampler.cancel()
    result = Result("metrics", log=log, per_second=meter.per_second, start=meter.start)
    result.hot_fixture = fixture_ids[0]
    after = await view.metrics()
    hot = await view.hot_spots(fixture_ids)
    hot_by_id = {f["fixture_id"]: f for f in hot["fixtures"]}
    grants = len(log.granted_at)
    result.check(
        "grants (hotspot_api_calls_total increase)",
        grants,
        _series(after, "hotspot_api_calls_total") - _series(before, "hotspot_api_calls_total"),
    )
    rejected = sum(v for (name, _), v in after.items() if name == "hotspot_rejected_total") - sum(
        v for (name, _), v in before.items() if name == "hotspot_rejected_total"
    )
    result.check("refusals (hotspot_rejected_total increase)", len(log.refused_at), rejected)
    per_fixture = [sum(1 for f in log.grant_fixture if f == i) for i in range(len(fixture_ids))]
    result.check(
        "grants per fixture (fixture_api_calls_total)",
        grants,
        sum(_series(after, "fixture_api_calls_total", f) for f in fixture_ids),
    )
    result.check(
        "grants per fixture (/health/hot-spots calls_total)",
        grants,
        sum(hot_by_id[f]["calls_total"] for f in fixture_ids if f in hot_by_id),
    )
    await _fixture_counts(view, result, fixture_ids, log)
    result.figures = {
        "grants": grants,
        "grants per fixture": ", ".join(map(str, per_fixture)),
        "refusals": len(log.refused_at),
        "largest lag of /metrics behind the generator, during the run": max(
            (d for _, d in lag), default=0
        ),
        "errors": len(log.errors),
    }
    return [result]


async def full_budget(view: ServerView, scale: Scale, progress: Progress) -> list[Result]:
    """Every fixture at its limit at once: fixtures x limit per window, over several load
    processes; the generator's own log says whether any window went over."""
    fixture_ids = [f"budget-{i}-{_run_id()}" for i in range(scale.fixtures)]
    rate = scale.fixtures * scale.limit / scale.window
    plan = Plan(fixture_ids, seconds=scale.seconds, rate=rate, max_wait=1.0)
    before = await view.metrics() if view.http else {}
    run = await asyncio.to_thread(
        run_in_processes, view.target, plan, scale.processes, lambda e: progress("full-budget", e)
    )
    log = run.log
    result = Result("full-budget", log=log, per_second=run.per_second, start=run.start)
    result.hot_fixture = fixture_ids[0]
    at_once = [
        g - s for g, s, q in zip(log.granted_at, log.sent_at, log.queued, strict=True) if not q
    ]
    over = over_limit_fixtures(
        log.grant_fixture, log.granted_at, log.released_at, scale.window, scale.limit
    )
    in_run = sum(1 for g in log.granted_at if g <= run.start + scale.seconds)
    result.figures = {
        "offered permits/s": f"{rate:.0f}",
        "permits/s": f"{in_run / scale.seconds:.0f}",
        "p50 / p99 grant latency, at once (ms)": (
            f"{percentile(at_once, 0.5) * 1000:.1f} / {percentile(at_once, 0.99) * 1000:.1f}"
        ),
        "grants": len(log.granted_at),
        "refused": len(log.refused_at),
        "errors": len(log.errors),
    }
    result.check("over-limit windows (generator's log)", len(over), 0)
    if view.http:
        after = await view.metrics()
        result.check(
            "grants (hotspot_api_calls_total increase)",
            len(log.granted_at),
            _series(after, "hotspot_api_calls_total") - _series(before, "hotspot_api_calls_total"),
        )
    return [result]


RUNNERS = {
    "single-fixture": single_fixture,
    "sustained": sustained,
    "retry-after": retry_after,
    "metrics": metrics,
    "full-budget": full_budget,
}
