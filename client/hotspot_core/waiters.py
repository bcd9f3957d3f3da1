"""WaiterQueue: the bounded FIFO of requests waiting for one fixture's window."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hotspot_core.grants import Grant


class Waiter:
    """One queued request. Resolved with its Grant, or failed with a refusal."""

    __slots__ = (
        "arrived_at",
        "batch",
        "caller",
        "client_id",
        "deadline",
        "future",
        "position",
        "request_id",
        "warming",
    )

    def __init__(
        self,
        future: asyncio.Future[Grant],
        *,
        arrived_at: float,
        deadline: float,
        position: int,
        client_id: str,
        request_id: str = "",
        caller: str = "",
    ) -> None:
        self.future = future
        self.arrived_at = arrived_at
        self.deadline = deadline
        self.position = position
        self.client_id = client_id
        self.request_id = request_id
        self.warming = False
        """A cache warmer's request (PURPOSE_WARMING)."""
        self.caller = caller
        self.batch: asyncio.Future[None] | None = None
        """The durable-store write that records this waiter's grant, once granted."""

    def __lt__(self, other: Waiter) -> bool:
        # Deadline heaps hold (deadline, waiter): equal deadlines fall back to queue order.
        return self.arrived_at < other.arrived_at


class WaiterQueue:
    """FIFO order with O(1) removal from anywhere, for cancelled waiters."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: OrderedDict[Waiter, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._waiters)

    def __iter__(self) -> Iterator[Waiter]:
        return iter(self._waiters)

    def append(self, waiter: Waiter) -> None:
        self._waiters[waiter] = None

    def popleft(self) -> Waiter:
        return self._waiters.popitem(last=False)[0]

    def remove(self, waiter: Waiter) -> bool:
        """Take a waiter out of line; False if it had already left."""
        return self._waiters.pop(waiter, False) is None
