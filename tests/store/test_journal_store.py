"""The durable store on real files: round trips, bad journals, a locked dir, a full or read-only
file system (small tmpfs mounts), compaction."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import struct
import subprocess
import time
from array import array
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotspot_core.errors import StoreUnavailable
from hotspot_core.memory import MemoryBackend
from hotspot_core.persistence import FixtureRecord
from hotspot_core.policy import PermitPolicy
from hotspot_server.store import JournalStore, StateDirLocked, open_state_store
from hotspot_server.store.journal import MAGIC
from hotspot_server.store.state_dir import StateDir


def record(fixture_id: str, n: int = 3, paused_until: float = -math.inf) -> FixtureRecord:
    return FixtureRecord(
        fixture_id=fixture_id,
        clock_id="test",
        clock_offset=1_800_000_000.0,
        held=array("d", [100.0 + i for i in range(n)]),
        released=array("d", [160.0 + i for i in range(n)]),
        lease=15.0,
        paused_until=paused_until,
        calls_total=2 * n,
        rejected_total=1,
        abandoned_total=0,
    )


def test_records_survive_a_close_and_a_reopen(tmp_path: Path) -> None:
    store = open_state_store(tmp_path, fsync_interval=0.05)
    store.write([record("a"), record("b", paused_until=200.0), record("gone")], [])
    store.write([record("a", n=5)], ["gone"])
    store.close()
    again = open_state_store(tmp_path)
    kept = {r.fixture_id: r for r in again.load()}
    again.close()
    assert sorted(kept) == ["a", "b"]
    assert list(kept["a"].held) == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert kept["b"].paused_until == 200.0
    assert kept["a"].paused_until == -math.inf
    assert again.dropped == []


def test_a_second_server_on_the_same_dir_is_refused(tmp_path: Path) -> None:
    first = open_state_store(tmp_path)
    with pytest.raises(StateDirLocked, match=f"pid {os.getpid()}"):
        open_state_store(tmp_path)
    first.close()
    open_state_store(tmp_path).close()  # the lock goes with its holder


def journals(state: Path) -> list[Path]:
    return sorted(state.glob("journal-*.log"))


def test_a_garbage_file_is_set_aside_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "journal-0000000001.log").write_bytes(os.urandom(8192))
    with caplog.at_level(logging.WARNING, "hotspot.store"):
        store = open_state_store(tmp_path)
    assert store.load() == []
    store.write([record("a")], [])  # a fresh journal beside the bad one
    store.close()
    assert len(caplog.records) == 1
    assert "is not a hotspot journal" in caplog.records[0].getMessage()
    assert list(tmp_path.glob("journal-0000000001.log.unreadable-*"))
    assert [r.fixture_id for r in open_state_store(tmp_path).load()] == ["a"]


def test_a_journal_of_another_format_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "journal-0000000001.log").write_bytes(MAGIC + struct.pack("<H", 99))
    store = open_state_store(tmp_path)
    assert store.load() == []
    assert any("format 99" in d for d in store.dropped)
    store.close()


def test_unreadable_records_are_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    store = open_state_store(tmp_path)
    store.write([record("a"), record("b")._replace(released=array("d", [math.nan]))], [])
    store.close()
    again = open_state_store(tmp_path)
    assert [r.fixture_id for r in again.load()] == ["a"]
    assert again.dropped == ["1 unreadable fixture record(s)"]
    again.close()


def test_a_torn_last_write_loses_only_that_write(tmp_path: Path) -> None:
    store = open_state_store(tmp_path, fsync_interval=3600)
    store.write([record("first")], [])
    store.write([record("second")], [])
    store.close()
    (journal,) = journals(tmp_path)
    os.truncate(journal, journal.stat().st_size - 100)  # as a machine crash mid-write may leave it
    again = open_state_store(tmp_path)
    assert [r.fixture_id for r in again.load()] == ["first"]
    assert any("torn write" in d for d in again.dropped)
    again.close()


def test_forgotten_fixtures_stay_forgotten(tmp_path: Path) -> None:
    store = open_state_store(tmp_path)
    store.write([record("a"), record("b")], [])
    store.write([], ["a"])
    store.close()
    again = open_state_store(tmp_path)
    assert [r.fixture_id for r in again.load()] == ["b"]
    again.close()


async def test_a_backend_restores_what_the_store_kept(tmp_path: Path) -> None:
    policy = PermitPolicy(limit=3, window=60, lease=15)
    first = MemoryBackend(policy, store=open_state_store(tmp_path))
    for _ in range(2):
        await first.acquire("f")
    store = first._store
    assert isinstance(store, JournalStore)
    store.close()  # as a crash would: the backend never closes
    second = MemoryBackend(policy, store=open_state_store(tmp_path))
    row = (await second.stats(_view("f"))).fixtures[0]
    assert (row.calls_in_window, row.calls_total, row.in_flight) == (2, 2, 0)
    await second.close()


def _view(fixture_id: str):  # type: ignore[no-untyped-def]
    from hotspot_core.stats import StatsView

    return StatsView(fixture_ids=(fixture_id,))


# -- Small file systems: full, read-only ---------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs of our own (root only), unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_full_disk_refuses_grants_and_recovers_when_space_returns(small_fs: Path) -> None:
    filler = small_fs / "filler"
    backend = MemoryBackend(
        PermitPolicy(limit=5, window=60), store=open_state_store(small_fs / "state")
    )
    await backend.acquire("before")
    with filler.open("wb", buffering=0) as f:  # fill the file system to the last block
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError:
            pass
    with pytest.raises(StoreUnavailable, match="full"):  # noqa: PT012
        for i in range(200):  # new fixtures need new pages: the store runs out of room
            await backend.acquire(f"fixture-{i:03d}-{'x' * 100}")
    assert backend.unready_reason() is not None
    filler.unlink()
    grant = await backend.acquire("after")
    assert grant.fixture_id == "after"
    assert backend.unready_reason() is None
    await backend.close()


async def test_a_read_only_state_dir_keeps_its_windows_and_refuses_grants(small_fs: Path) -> None:
    store = open_state_store(small_fs / "state")
    store.write([record("kept", n=2)], [])
    store.close()
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)  # noqa: ASYNC221
    again = open_state_store(small_fs / "state")
    assert again.unwritable_because is not None
    assert "read-only" in again.unwritable_because
    assert [r.fixture_id for r in again.load()] == ["kept"]
    backend = MemoryBackend(PermitPolicy(), store=again)
    assert backend.unready_reason() is not None
    with pytest.raises(StoreUnavailable, match="read-only"):
        await backend.acquire("f")
    await backend.close()
    again.close()


def dir_bytes(path: Path) -> int:
    """The dir's size while the compactor may be deleting files in it."""
    total = 0
    for entry in path.iterdir():
        with contextlib.suppress(FileNotFoundError):
            total += entry.stat().st_size
    return total


def write_history(store: JournalStore, live: list[FixtureRecord], times: int) -> None:
    """Writes the live records `times` times over, and waits until compaction has folded them
    (the dir back near live state)."""
    for _ in range(times):
        store.write(live, [])
    deadline = time.monotonic() + 5
    while dir_bytes(store.path) > 300 << 10:
        assert time.monotonic() < deadline, sorted(p.name for p in store.path.iterdir())
        time.sleep(0.05)


def small_journal_store(state: Path) -> JournalStore:
    state_dir = StateDir(state)
    state_dir.acquire()
    return JournalStore(state_dir, fsync_interval=0.05, journal_bytes=64 << 10)


def test_the_files_follow_live_state_not_history(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = small_journal_store(state)
    live = [record(f"fixture-{i:03d}", n=25) for i in range(50)]  # about 22 KB of live state
    write_history(store, live, 200)  # about 4 MB of history
    store.write([], [r.fixture_id for r in live[:25]])
    store.close()
    again = open_state_store(state)
    kept = again.load()
    assert sorted(r.fixture_id for r in kept) == [r.fixture_id for r in live[25:]]
    assert again.dropped == []
    assert list(state.glob("snapshot-*.log"))
    again.close()


def test_compaction_runs_in_a_child_process_that_is_replaced_when_it_dies(tmp_path: Path) -> None:
    """Compaction holds no GIL of the server's (see compaction.py): it runs in a child, which a
    kill -9 does not stop compacting for long, and which ends with the store."""
    store = small_journal_store(tmp_path / "state")
    live = [record(f"fixture-{i:03d}", n=25) for i in range(50)]
    children = set()
    try:
        for _ in range(2):
            write_history(store, live, 100)  # about 2 MB of history
            child = store._compactor._child
            assert child is not None
            assert child.pid != os.getpid()
            children.add(child.pid)
            child.kill()
            child.wait()
    finally:
        store.close()
    assert len(children) == 2
    assert store._compactor._child is None
