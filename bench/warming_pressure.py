"""(g) Task 5.4's comparison, warming on vs off (tests/e2e/warming_scenario.py), as a table.

Part of `make bench` (section (g)); alone: `.venv/bin/python -m bench.warming_pressure`
(about 90 s; needs redis-server).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from tests.e2e.warming_scenario import ScenarioResult, run_scenario


def table(off: ScenarioResult, on: ScenarioResult) -> list[str]:
    rows = [
        ("requests", off.requests, on.requests),
        ("served", off.served, on.served),
        ("user-visible 429s", off.user_429s, on.user_429s),
        ("other errors", off.other_errors, on.other_errors),
        ("upstream calls", off.upstream_calls, on.upstream_calls),
        (
            "served per upstream call",
            f"{off.served_per_upstream_call:.1f}",
            f"{on.served_per_upstream_call:.1f}",
        ),
        ("upstream violations", off.violations, on.violations),
        ("latency p50 (ms)", f"{off.p50_ms:.0f}", f"{on.p50_ms:.0f}"),
        ("latency p99 (ms)", f"{off.p99_ms:.0f}", f"{on.p99_ms:.0f}"),
        ("stale answers served", off.stale_served, on.stale_served),
        (
            "age served p50 / p99 (s, real scale)",
            "-",
            f"{on.age_quantile(0.5):.1f} / {on.age_quantile(0.99):.1f}",
        ),
    ]
    lines = ["| | warming and cache off | warming on |", "| --- | --- | --- |"]
    return lines + [f"| {name} | {a} | {b} |" for name, a, b in rows]


async def measure() -> tuple[ScenarioResult, ScenarioResult]:
    """One run of each scenario: (warming and cache off, warming on)."""
    with tempfile.TemporaryDirectory() as tmp:
        off = await run_scenario(Path(tmp) / "off", warming=False, fixture_id="BENCH5P4OFF")
        on = await run_scenario(Path(tmp) / "on", warming=True, fixture_id="BENCH5P4ON")
    return off, on


async def main() -> None:
    print("\n".join(table(*await measure())))


if __name__ == "__main__":
    asyncio.run(main())
