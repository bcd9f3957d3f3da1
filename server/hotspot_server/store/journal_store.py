"""JournalStore: fixture records appended to a checksummed journal, compacted in the background.

Why a journal rather than SQLite (docs/benchmarks.md has the figures): each batch is one
append of a few hundred bytes per fixture changed, where SQLite rewrites a 4 KiB page per
fixture in its WAL; restart reads one compacted file. The price is compaction, done from the
closed files alone, never from the live state, by a child process (compaction.py says why).

Files in the state dir: `journal-N.log`, appended to by this server (a new N at every start
and every rotation), and `snapshot-N.log`, everything up to and including journal N,
compacted. Restart reads the newest snapshot and then the journals after it.

Durability: a batch is written (os.write, into the page cache) before its grants are answered,
so a process crash loses nothing answered. The background thread fsyncs every `fsync_interval`
seconds: a machine crash loses at most that much. `fsync_interval=0` fsyncs every batch.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from hotspot_core.errors import StoreUnavailable
from hotspot_core.persistence import FixtureRecord
from hotspot_server.store.compaction import CompactorProcess, state_files
from hotspot_server.store.journal import HEADER, JournalError, Replay, batch_bytes
from hotspot_server.store.state_dir import StateDir

logger = logging.getLogger("hotspot.store")

DEFAULT_FSYNC_INTERVAL = 1.0
MIN_JOURNAL_BYTES = 4 << 20
"""A journal is closed (and compacted) past max(this, twice the last snapshot): the state
dir stays within a few times the live state, and compaction costs O(1) per byte written."""


def _why(error: OSError, path: Path) -> str:
    if error.errno == errno.ENOSPC:
        return f"the file system holding {path} is full"
    if error.errno == errno.EROFS:
        return f"{path} is on a read-only file system"
    return f"{path}: {error.strerror or error}"


class JournalStore:
    """The durable store of one server (see the module doc); it holds the state dir's lock."""

    def __init__(
        self,
        state_dir: StateDir,
        fsync_interval: float = DEFAULT_FSYNC_INTERVAL,
        *,
        journal_bytes: int = MIN_JOURNAL_BYTES,
    ) -> None:
        if not fsync_interval >= 0:
            raise ValueError(f"fsync_interval must be 0 or more, got {fsync_interval}")
        self.state_dir = state_dir
        self.path = state_dir.path
        self._fsync_interval = fsync_interval
        self._min_journal = journal_bytes
        self.loaded = 0
        """Fixture records handed to the backend at start."""
        self.dropped: list[str] = []
        """What could not be recovered at start, one phrase each."""
        self._readonly_why: str | None = None
        self._lock = threading.Lock()  # guards _fd and _seq against the background thread
        self._fd: int | None = None
        self._seq = 0
        self._size = 0
        self._clock_id: str | None = None
        self._snapshot_bytes = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._records, last_seq = self._recover()
        self._seq = last_seq + 1
        self._worker: threading.Thread | None = None
        self._compactor = CompactorProcess()
        if not state_dir.writable:
            self._readonly_why = f"{self.path} is read-only"
            return
        try:
            self._open_journal()
        except OSError as error:
            self._readonly_why = _why(error, self.path)
            return
        self._worker = threading.Thread(target=self._background, name="hotspot-store", daemon=True)
        self._worker.start()

    # -- Start: recovery -------------------------------------------------------------------------

    def _recover(self) -> tuple[list[FixtureRecord], int]:
        files = state_files(self.path)
        snapshots = [(seq, path) for seq, kind, path in files if kind == "snapshot"]
        replay = Replay()
        base = -1
        for seq, path in reversed(snapshots):  # the newest snapshot that reads
            try:
                replay.read(path.name, path.read_bytes())
            except (JournalError, OSError) as error:
                self._set_aside(path, str(error))
                replay = Replay(dropped=replay.dropped)
                continue
            base = seq
            break
        for seq, kind, path in files:
            if kind == "journal" and seq > base:
                try:
                    replay.read(path.name, path.read_bytes())
                except (JournalError, OSError) as error:
                    self._set_aside(path, str(error))
        records, bad = replay.records()
        if bad:
            replay.dropped.append(f"{bad} unreadable fixture record(s)")
        self.dropped += replay.dropped
        self._snapshot_bytes = sum(p.stat().st_size for s, p in snapshots if s == base)
        return records, max((seq for seq, _, _ in files), default=0)

    def _set_aside(self, path: Path, why: str) -> None:
        """Keep a file we cannot read for a human to look at."""
        kept = path.with_name(path.name + f".unreadable-{time.strftime('%Y%m%dT%H%M%S')}")
        with contextlib.suppress(OSError):
            path.rename(kept)
        self.dropped.append(f"{path.name}, which could not be read ({why}); kept as {kept.name}")

    # -- Writing ---------------------------------------------------------------------------------

    def _open_journal(self) -> None:
        path = self.path / f"journal-{self._seq:010d}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            os.write(fd, HEADER)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        self._fd, self._size, self._clock_id = fd, len(HEADER), None

    def load(self) -> list[FixtureRecord]:
        records, self._records = self._records, []
        self.loaded = len(records)
        return records

    def write(self, changed: Sequence[FixtureRecord], forgotten: Sequence[str]) -> None:
        if self._fd is None:
            if self._readonly_why is not None:
                raise StoreUnavailable(self._readonly_why)
            try:
                self._open_journal()  # a journal cut short by a failed write was closed
            except OSError as error:
                raise StoreUnavailable(_why(error, self.path)) from None
        fd = self._fd
        assert fd is not None
        data, clock_id = batch_bytes(self._clock_id, changed, forgotten)
        try:
            written = os.write(fd, data)
            while written < len(data):  # a short write: the rest, or the error that stopped it
                written += os.write(fd, memoryview(data)[written:])
            if self._fsync_interval == 0:
                os.fsync(fd)
        except OSError as error:
            self._cut_back(fd)
            raise StoreUnavailable(_why(error, self.path)) from None
        self._size += len(data)
        self._clock_id = clock_id
        if self._size >= max(self._min_journal, 2 * self._snapshot_bytes):
            self._rotate()

    def _cut_back(self, fd: int) -> None:
        """Undo a write that failed part way, so that the next one is not lost behind it."""
        try:
            os.ftruncate(fd, self._size)
        except OSError:
            # It stays torn: close it (a restart drops its tail and says so) and start another.
            with self._lock:
                os.close(fd)
                self._fd = None
                self._seq += 1

    def _rotate(self) -> None:
        with self._lock:
            old = self._fd
            self._seq += 1
            try:
                self._open_journal()
            except OSError:
                self._fd = None  # the next write opens one, or says why it cannot
            if old is not None:
                os.close(old)
        self._wake.set()

    @property
    def unwritable_because(self) -> str | None:
        """Why this store can never write (a read-only dir), if so."""
        return self._readonly_why

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        self._compactor.close()
        with self._lock:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
        self.state_dir.release()

    # -- The background thread: fsync and compaction -----------------------------------------------

    def _background(self) -> None:
        interval = self._fsync_interval or None
        failing = False
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            try:
                self._fsync()
                self._compact()
                failing = False
            except OSError as error:
                if not failing:  # once per spell of failures, not once a second
                    logger.warning("state store upkeep failed: %s", error)
                failing = True

    def _fsync(self) -> None:
        with self._lock:
            fd = os.dup(self._fd) if self._fd is not None else None
        if fd is not None:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _compact(self) -> None:
        """Fold every closed journal (and the last snapshot) into a new snapshot."""
        with self._lock:
            current = self._seq
        size = self._compactor.compact(self.path, current)
        if size is not None:
            self._snapshot_bytes = size
