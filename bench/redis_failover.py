"""(s) Sentinel failover: a primary, one replica and one Sentinel (down-after 500 ms) on loopback.

Each run kills -9 the primary while 4 callers of one replica (`redis+sentinel://`) grant as fast
as they can, and goes on until the promoted replica grants. It reports the seconds from the kill
to the first grant of a call made after it, and how many acknowledged grants the new primary's
window does not count (asynchronous replication: what the old primary answered but never sent;
net of grants it counts whose answer was lost with the old primary, see Failover.forgotten).
The procedure is the test's (tests/redis/test_restart_failover.py).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.stats import median
from tests.redis.test_restart_failover import Failover, kill_primary_while_granting

RUNS = 10


async def measure(runs: int = RUNS) -> list[Failover]:
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as directory:
            results.append(await kill_primary_while_granting(Path(directory)))
    return results


async def section(summary: list[Sequence[object]], runs: int = RUNS) -> list[str]:
    results = await measure(runs)
    resumed = median([r.resumed_after for r in results])
    acknowledged = sum(r.acknowledged for r in results)
    forgotten = sum(max(r.forgotten, 0) for r in results)
    unanswered = sum(max(-r.forgotten, 0) for r in results)
    summary.append(
        [
            "(s) first grant after the primary's kill -9 (Sentinel, down-after 0.5 s)",
            "a few seconds",
            f"{resumed:.2f} s; {forgotten} of {acknowledged} answered grants forgotten",
            "yes" if resumed < 5 else "**no**",
        ]
    )
    rows = [
        f"| run {i + 1} | {r.resumed_after:.2f} | {r.acknowledged} | {r.counted} "
        f"| {max(r.forgotten, 0)} | {max(-r.forgotten, 0)} |"
        for i, r in enumerate(results)
    ]
    return [
        "",
        "## (s) Sentinel failover",
        "",
        "A primary, one replica and one Sentinel (`down-after-milliseconds 500`,",
        "`failover-timeout 3000`) on loopback; 4 callers of one replica grant without pause and",
        "the primary is killed with -9. Resumed: seconds from the kill to the first grant of a",
        "call made after it. Forgotten: grants answered that the new primary does not count.",
        "Unanswered: grants it counts whose answer died with the old primary's connection (the",
        "caller was told UNAVAILABLE; the slot is wasted, never granted twice). Both are net",
        "per run (answered minus counted).",
        "",
        "| run | resumed (s) | grants answered | new primary counts | forgotten | unanswered |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        f"| **median / total** | **{resumed:.2f}** | **{acknowledged}** | "
        f"**{sum(r.counted for r in results)}** | **{forgotten}** | **{unanswered}** |",
        "",
    ]
