"""SQLiteStore: fixture records in SQLite (WAL mode), one row per fixture.

Why SQLite rather than an append-only journal (docs/benchmarks.md has the
figures): a row per fixture is rewritten in place, so the file follows live
state with no compaction pass on the event loop; WAL checksums make a torn
last write harmless; and restart reads one row per fixture, not history.

Durability: a batch is committed (written to the WAL, not fsynced) before its
grants are answered, so a process crash loses nothing answered. A background
thread checkpoints every `fsync_interval` seconds, which fsyncs the WAL and
the database: a machine crash loses at most that much. `fsync_interval=0`
fsyncs every batch instead.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
import struct
import sys
import threading
import time
from array import array
from collections.abc import Sequence
from pathlib import Path

from hotspot_core.errors import StoreUnavailable
from hotspot_core.persistence import FixtureRecord
from hotspot_server.store.state_dir import StateDir

logger = logging.getLogger("hotspot.store")

DB_FILE = "state.db"
APPLICATION_ID = 0x48535054  # "HSPT": a file of ours, not any SQLite database
SCHEMA_VERSION = 1
DEFAULT_FSYNC_INTERVAL = 1.0
FREE_PAGES_KEPT = 256
"""Free pages (4 KiB each) kept for reuse before the file is shrunk."""

_SCHEMA = """
CREATE TABLE fixtures (
    fixture_id TEXT PRIMARY KEY,
    clock_id TEXT NOT NULL,
    clock_offset REAL NOT NULL,
    held BLOB NOT NULL,
    released BLOB NOT NULL,
    lease REAL NOT NULL,
    paused_until REAL,
    calls_total INTEGER NOT NULL,
    rejected_total INTEGER NOT NULL,
    abandoned_total INTEGER NOT NULL
) WITHOUT ROWID
"""
_UPSERT = "INSERT OR REPLACE INTO fixtures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_DELETE = "DELETE FROM fixtures WHERE fixture_id = ?"
_BIG_ENDIAN = sys.byteorder == "big"  # blobs are little-endian doubles on every machine


def _pack(values: array[float]) -> bytes:
    if _BIG_ENDIAN:
        values = array("d", values)
        values.byteswap()
    return values.tobytes()


def _unpack(blob: bytes) -> array[float]:
    if len(blob) % 8:
        raise ValueError(f"a blob of {len(blob)} bytes is not a list of doubles")
    values = array("d", blob)
    if _BIG_ENDIAN:
        values.byteswap()
    # One sum in C rather than a test per value: an infinity or a NaN anywhere makes it non-finite.
    if not math.isfinite(sum(values)):
        raise ValueError("a time that is not a finite number")
    return values


def _why(error: sqlite3.Error, path: Path) -> str:
    text = str(error)
    if "full" in text:
        return f"the file system holding {path} is full ({text})"
    if "readonly" in text or "read-only" in text:
        return f"{path} is read-only ({text})"
    return f"{path}: {text}"


class SQLiteStore:
    """The durable store of one server (see the module doc); hold its StateDir first."""

    def __init__(self, state_dir: StateDir, fsync_interval: float = DEFAULT_FSYNC_INTERVAL) -> None:
        if not fsync_interval >= 0:
            raise ValueError(f"fsync_interval must be 0 or more, got {fsync_interval}")
        self.state_dir = state_dir
        self.path = state_dir.path / DB_FILE
        self._fsync_interval = fsync_interval
        self.loaded = 0
        """Fixture records handed to the backend at start."""
        self.dropped: list[str] = []
        """What could not be recovered at start, one phrase each."""
        self._readonly_why: str | None = None
        self._records: list[FixtureRecord] = []
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._conn = self._open(writable=state_dir.writable)
        if self._readonly_why is None and fsync_interval > 0:
            self._checkpointer = threading.Thread(
                target=self._checkpoint_every_interval, name="hotspot-store-fsync", daemon=True
            )
            self._checkpointer.start()

    # -- Opening, with recovery ----------------------------------------------------------------

    def _open(self, *, writable: bool) -> sqlite3.Connection | None:
        self._note_torn_wal()
        if writable:
            try:
                conn = self._connect(self.path)
                self._records = self._read(conn)
                return conn
            except sqlite3.DatabaseError as error:
                if self._is_unwritable(error):
                    return self._open_read_only(_why(error, self.path))
                self._set_aside(error)
                try:
                    conn = self._connect(self.path)
                    self._records = []
                    return conn
                except sqlite3.Error as again:
                    return self._open_read_only(_why(again, self.path))
        return self._open_read_only(f"{self.path.parent} is read-only")

    def _connect(self, path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 100")
            app, version = self._identity(conn)
            new = (app, version) == (0, 0) and not self._has_tables(conn)
            if new:  # must precede WAL mode, which initialises the file
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
                raise sqlite3.OperationalError("the file system does not support WAL mode")
            sync = "FULL" if self._fsync_interval == 0 else "NORMAL"
            conn.execute(f"PRAGMA synchronous = {sync}")
            # Checkpoints (and their fsyncs) run in the background thread, never on the loop.
            conn.execute(f"PRAGMA wal_autocheckpoint = {0 if self._fsync_interval else 1000}")
            if new:
                conn.execute(_SCHEMA)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif app != APPLICATION_ID:
                raise sqlite3.DatabaseError("not a hotspot state store")
            elif version != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"a store of format {version}; this server reads format {SCHEMA_VERSION}"
                )
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_read_only(self, why: str) -> sqlite3.Connection | None:
        """Recover what a store we cannot write holds; every write then fails with `why`."""
        self._readonly_why = why
        if not self.path.exists():
            return None
        # Read-only WAL access needs the -shm file writable; on a read-only file system only
        # immutable mode reads, and it ignores a WAL a crash may have left (noted as dropped).
        for uri, note in (
            (f"file:{self.path}?mode=ro", None),
            (f"file:{self.path}?immutable=1", "wal"),
        ):
            try:
                conn = sqlite3.connect(uri, uri=True)
                try:
                    if self._identity(conn) == (APPLICATION_ID, SCHEMA_VERSION):
                        self._records = self._read(conn)
                finally:
                    conn.close()
            except sqlite3.Error as error:
                last = error
                continue
            wal = self.path.with_name(DB_FILE + "-wal")
            if note and wal.exists() and wal.stat().st_size:
                self.dropped.append("the write-ahead log, unreadable on a read-only file system")
            return None
        self.dropped.append(f"the whole store, unreadable ({last})")
        return None

    @staticmethod
    def _identity(conn: sqlite3.Connection) -> tuple[int, int]:
        app = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        return int(app), int(version)

    @staticmethod
    def _has_tables(conn: sqlite3.Connection) -> bool:
        return bool(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0)

    @staticmethod
    def _is_unwritable(error: sqlite3.Error) -> bool:
        text = str(error)
        return "readonly" in text or "read-only" in text or "unable to open" in text

    def _read(self, conn: sqlite3.Connection) -> list[FixtureRecord]:
        records: list[FixtureRecord] = []
        bad = 0
        for row in conn.execute("SELECT * FROM fixtures"):
            try:
                (
                    fixture_id,
                    clock_id,
                    offset,
                    held,
                    released,
                    lease,
                    paused,
                    calls,
                    rejected,
                    abandoned,
                ) = row
                records.append(
                    FixtureRecord(
                        fixture_id=str(fixture_id),
                        clock_id=str(clock_id),
                        clock_offset=float(offset),
                        held=_unpack(held),
                        released=_unpack(released),
                        lease=float(lease),
                        paused_until=-math.inf if paused is None else float(paused),
                        calls_total=int(calls),
                        rejected_total=int(rejected),
                        abandoned_total=int(abandoned),
                    )
                )
            except (TypeError, ValueError):
                bad += 1
        if bad:
            self.dropped.append(f"{bad} unreadable fixture record(s)")
        return records

    def _note_torn_wal(self) -> None:
        """A machine crash can leave half a WAL frame at the end; SQLite ignores it (and any
        frame whose checksum fails), losing only that last write. Say so."""
        wal = self.path.with_name(DB_FILE + "-wal")
        try:
            data = wal.read_bytes()[:32]
            size = wal.stat().st_size
        except OSError:
            return
        if size < 32:
            if size:
                self.dropped.append(f"a torn write-ahead log header ({size} bytes)")
            return
        (page_size,) = struct.unpack(">I", data[8:12])
        frame = 24 + page_size
        tail = (size - 32) % frame if page_size else 0
        if tail:
            self.dropped.append(f"a torn last write of {tail} bytes in the write-ahead log")

    def _set_aside(self, error: sqlite3.Error) -> None:
        """Keep a store we cannot read for a human to look at, and start afresh beside it."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            source = self.path.with_name(DB_FILE + suffix)
            if source.exists():
                source.rename(source.with_name(f"{DB_FILE}.unreadable-{stamp}{suffix}"))
        self.dropped.append(
            f"the whole store, which could not be read ({error}); it was kept as "
            f"{DB_FILE}.unreadable-{stamp}"
        )

    # -- StateStore ----------------------------------------------------------------------------

    def load(self) -> list[FixtureRecord]:
        records, self._records = self._records, []
        self.loaded = len(records)
        return records

    def write(self, changed: Sequence[FixtureRecord], forgotten: Sequence[str]) -> None:
        conn = self._conn
        if conn is None:
            raise StoreUnavailable(self._readonly_why or "the state store is closed")
        rows = [
            (
                r.fixture_id,
                r.clock_id,
                r.clock_offset,
                _pack(r.held),
                _pack(r.released),
                r.lease,
                r.paused_until if r.paused_until > -math.inf else None,
                r.calls_total,
                r.rejected_total,
                r.abandoned_total,
            )
            for r in changed
        ]
        try:
            if len(rows) == 1 and not forgotten:
                conn.execute(_UPSERT, rows[0])  # a transaction of its own: one statement
                return
            conn.execute("BEGIN")
            conn.executemany(_UPSERT, rows)
            if forgotten:
                conn.executemany(_DELETE, [(f,) for f in forgotten])
            conn.execute("COMMIT")
        except sqlite3.Error as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreUnavailable(_why(error, self.path)) from None

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
            self._checkpointer = None
        if self._conn is not None:
            # If this fails the WAL is still valid: the next start replays it.
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None
        self.state_dir.release()

    @property
    def unwritable_because(self) -> str | None:
        """Why this store can never write (a read-only dir), if so."""
        return self._readonly_why

    # -- The background fsync --------------------------------------------------------------------

    def _checkpoint_every_interval(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 1000")
            conn.execute("PRAGMA synchronous = NORMAL")
            failing = False
            while not self._stop.wait(self._fsync_interval):
                try:
                    # Fsyncs the WAL, copies it into the database, fsyncs that: a machine crash
                    # now loses at most one interval of writes.
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    # Rows of forgotten fixtures free pages; give them back once there are many,
                    # so the file follows live state rather than history.
                    if conn.execute("PRAGMA freelist_count").fetchone()[0] > FREE_PAGES_KEPT:
                        # execute() steps it once (one page); executescript() runs it to the end.
                        conn.executescript("PRAGMA incremental_vacuum;")
                    failing = False
                except sqlite3.Error as error:
                    if not failing:  # once per spell of failures, not once a second
                        logger.warning("state store checkpoint failed: %s", error)
                    failing = True
        finally:
            conn.close()
