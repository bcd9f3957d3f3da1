"""What a durable store keeps of each fixture, and the small interface the core writes through.

The core decides; a store only keeps. MemoryBackend hands a store the records
of the fixtures that changed in one event-loop iteration, in one write, and
answers the grants among them only once that write is done.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import NamedTuple, Protocol


class FixtureRecord(NamedTuple):
    """One fixture's window, pause and counters, in the monotonic time of the process that
    wrote it. A process on the same boot reads them as they are; after a reboot, `clock_offset`
    (wall minus monotonic, at the write) converts them through wall time. A NamedTuple: a
    restart builds 100,000 of them."""

    fixture_id: str
    clock_id: str
    """The writer's Clock.clock_id: where it equals the reader's, times need no conversion."""
    clock_offset: float
    held: array[float]
    """Grant times of the permits in flight. After a restart nobody can release them: each
    holds its slot until its lease end (grant + `lease`) + window."""
    released: array[float]
    """When released grants leave the window."""
    lease: float
    paused_until: float
    calls_total: int
    rejected_total: int
    abandoned_total: int


class StateStore(Protocol):
    """A durable home for fixture records (the server's SQLite store is one)."""

    def load(self) -> list[FixtureRecord]:
        """Every record kept, once, at start."""
        ...

    def write(self, changed: Sequence[FixtureRecord], forgotten: Sequence[str]) -> None:
        """Keep `changed` (replacing earlier records) and drop `forgotten`, in one transaction.

        Raises StoreUnavailable when it cannot: nothing of the batch is kept then.
        """
        ...

    @property
    def unwritable_because(self) -> str | None:
        """Why the store can never write (a read-only dir), known from the start; else None."""
        ...

    def close(self) -> None: ...
