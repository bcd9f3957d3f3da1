"""One plan split over several load processes: one Python process's event loop cannot both make
thousands of permits a second and leave the rest of a core to anything else."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import resource
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from hotspot_client import PermitClient
from hotspot_core.collector import tune_collector
from hotspot_load.driver import LoadLog, Meter, Plan, drive

SecondEntry = tuple[float, int, int, float]
"""(seconds since start, grants, refusals, p99 ms)."""


@dataclass
class Run:
    log: LoadLog
    per_second: list[SecondEntry]
    """Every process's seconds added up (p99: the worst process's)."""
    start: float
    """Monotonic time the plan started at, in every process."""
    load_cpu_seconds: float
    """CPU the load processes used, start-up included."""


def _child(
    target: str, part: int, plan: Plan, start: float, out: multiprocessing.Queue[object]
) -> None:
    async def run() -> LoadLog:
        log = LoadLog(list(plan.fixture_ids))
        meter = Meter(start)
        async with PermitClient(target) as client:
            tune_collector()  # the log and the client are made: their full collections cost p99
            await asyncio.sleep(max(0.0, start - time.monotonic()))
            await drive(
                client, plan, log, meter, on_second=lambda e: out.put(("second", (part, e)))
            )
        return log

    out.put(("log", (part, asyncio.run(run()))))


def split(plan: Plan, processes: int) -> list[Plan]:
    """The plan's fixtures dealt out to the processes, each with its share of the rate."""
    return [
        replace(
            plan,
            fixture_ids=plan.fixture_ids[p::processes],
            rate=None if plan.rate is None else plan.rate / processes,
            burst=plan.burst // processes,
        )
        for p in range(processes)
    ]


def run_in_processes(
    target: str,
    plan: Plan,
    processes: int,
    on_second: Callable[[SecondEntry], None] | None = None,
) -> Run:
    """Runs the plan in `processes` load processes, all starting at the same instant, and
    merges their logs (fixture indices refer to plan.fixture_ids)."""
    cpu_before = _children_cpu()
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[object] = context.Queue()
    start = time.monotonic() + 2.0 + 0.5 * processes  # after every process has started
    parts = split(plan, processes)
    children = [
        context.Process(target=_child, args=(target, p, part, start, out))
        for p, part in enumerate(parts)
    ]
    for child in children:
        child.start()
    logs: dict[int, LoadLog] = {}
    seconds: dict[int, list[SecondEntry]] = {}
    closed = [0] * processes
    """Seconds each process has closed: its nth entry is the nth second."""
    per_second: list[SecondEntry] = []
    while len(logs) < processes:
        try:
            message: tuple[str, Any] = out.get(timeout=1.0)  # type: ignore[assignment]
        except queue.Empty:
            if any(c.exitcode not in (None, 0) for c in children):
                raise RuntimeError("a load process failed") from None
            continue
        kind, value = message
        if kind == "log":
            part, log = value
            logs[part] = log
            continue
        part, entry = value
        second = seconds.setdefault(closed[part], [])
        closed[part] += 1
        second.append(entry)
        if len(second) == processes:  # every process has closed this second
            merged = (
                entry[0], sum(e[1] for e in second), sum(e[2] for e in second),
                max(e[3] for e in second),
            )  # fmt: skip
            per_second.append(merged)
            if on_second is not None:
                on_second(merged)
    for child in children:
        child.join()
    load_cpu = _children_cpu() - cpu_before
    merged_log = LoadLog(list(plan.fixture_ids))
    for p, log in sorted(logs.items()):
        # Each process numbered its own fixtures from 0; process p has every processes-th one.
        log.grant_fixture = array("i", (f * processes + p for f in log.grant_fixture))
        log.refused_fixture = array("i", (f * processes + p for f in log.refused_fixture))
        merged_log.merge(log)
    return Run(merged_log, per_second, start, load_cpu)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # of children waited for
    return usage.ru_utime + usage.ru_stime
