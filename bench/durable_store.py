"""(f) The durable store: what it costs per request, how fast a full server restarts, and why
SQLite rather than an append-only journal.

- Throughput: Acquire+Release against an empty RPC on a server with the store on and one with
  it off, measured back to back in each round.
- Restart: a state dir holding `fixtures` fixtures, each with a full window of `limit` grants;
  the time from starting `hotspot-server` to its ready line, and the store's size on disk.
- The choice: one batch write (the fixtures changed in one loop iteration) and a restore, with
  the journal hotspot uses and with SQLite in WAL mode, a row per fixture (the first design).
"""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

from bench.grpc_throughput import Phase, measure
from bench.server_process import ServerProcess
from hotspot_core.clock import boot_clock_id
from hotspot_core.persistence import FixtureRecord
from hotspot_server.store import open_state_store


def _record(fixture_id: str, limit: int, now: float) -> FixtureRecord:
    """A full window that stays live for an hour, as a server on this boot would have kept it."""
    leaves = array("d", (now + 3600 + i * 0.01 for i in range(limit)))
    clock_id = boot_clock_id() or "this-boot"
    offset = time.time() - time.monotonic()
    return FixtureRecord(
        fixture_id, clock_id, offset, array("d"), leaves, 15.0, -math.inf, limit, 0, 0
    )


async def throughput(rounds: int, seconds: float, concurrency: int) -> list[dict[str, float]]:
    results = []
    with (
        tempfile.TemporaryDirectory() as state,
        ServerProcess("bench.bench_server") as off,
        ServerProcess("bench.bench_server", "--state-dir", state) as on,
    ):
        for _ in range(rounds):
            empty_off, permit_off = await measure(off, concurrency, seconds)
            empty_on, permit_on = await measure(on, concurrency, seconds)
            results.append(_ratios(empty_off, permit_off, empty_on, permit_on))
    return results


def _ratios(
    empty_off: Phase, permit_off: Phase, empty_on: Phase, permit_on: Phase
) -> dict[str, float]:
    return {
        "empty_rps": (empty_off.rpcs_per_second + empty_on.rpcs_per_second) / 2,
        "off_rps": permit_off.rpcs_per_second,
        "on_rps": permit_on.rpcs_per_second,
        "off_ratio": permit_off.rpcs_per_second / empty_off.rpcs_per_second,
        "on_ratio": permit_on.rpcs_per_second / empty_on.rpcs_per_second,
        "on_p99": permit_on.p99_ms,
        "off_p99": permit_off.p99_ms,
        "on_cpu": permit_on.server_cpu_us_per_rpc,
        "off_cpu": permit_off.server_cpu_us_per_rpc,
    }


def restart_to_ready(fixtures: int, limit: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        store = open_state_store(state, fsync_interval=3600)
        now = time.monotonic()
        batch = 10_000
        for start in range(0, fixtures, batch):
            store.write(
                [_record(f"fixture-{i:06d}", limit, now) for i in range(start, start + batch)], []
            )
        store.close()
        size = sum(p.stat().st_size for p in state.iterdir() if p.suffix == ".log")
        started = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hotspot_server",
                "--listen",
                "127.0.0.1:0",
                "--http",
                "off",
                "--state-dir",
                str(state),
                "--max-fixtures",
                str(fixtures),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        ready = math.nan
        for line in proc.stderr:
            if "ready" in line:
                ready = time.perf_counter() - started
                break
        proc.terminate()
        proc.wait(30)
    return {"ready_s": ready, "bytes_per_fixture": size / fixtures}


def journal_or_sqlite(fixtures: int = 100_000, limit: int = 50) -> dict[str, float]:
    """Per-batch write cost (10 fixtures changed) and full restore: the journal hotspot uses,
    against SQLite in WAL mode with a row per fixture (the design it replaced)."""
    now = time.monotonic()
    records = [_record(f"fixture-{i:06d}", limit, now) for i in range(fixtures)]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_state_store(Path(tmp) / "journal", fsync_interval=3600)
        store.write(records, [])
        started = time.perf_counter()
        for i in range(0, 10_000, 10):
            store.write(records[i : i + 10], [])
        out["journal_batch_us"] = (time.perf_counter() - started) / 1000 * 1e6
        store.close()
        started = time.perf_counter()
        again = open_state_store(Path(tmp) / "journal")
        again.load()
        out["journal_restore_s"] = time.perf_counter() - started
        again.close()

        db = sqlite3.connect(Path(tmp) / "rows.db", isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA wal_autocheckpoint = 0")
        db.execute("CREATE TABLE f (id TEXT PRIMARY KEY, held BLOB, released BLOB) WITHOUT ROWID")
        upsert = "INSERT OR REPLACE INTO f VALUES (?, ?, ?)"

        def rows(batch: list[FixtureRecord]) -> list[tuple[str, bytes, bytes]]:
            return [(r.fixture_id, r.held.tobytes(), r.released.tobytes()) for r in batch]

        db.execute("BEGIN")
        db.executemany(upsert, rows(records))
        db.execute("COMMIT")
        started = time.perf_counter()
        for i in range(0, 10_000, 10):
            db.execute("BEGIN")
            db.executemany(upsert, rows(records[i : i + 10]))
            db.execute("COMMIT")
        out["sqlite_batch_us"] = (time.perf_counter() - started) / 1000 * 1e6
        started = time.perf_counter()
        for _, held, released in db.execute("SELECT * FROM f"):
            array("d", held), array("d", released)
        out["sqlite_restore_s"] = time.perf_counter() - started
        db.close()
    return out
