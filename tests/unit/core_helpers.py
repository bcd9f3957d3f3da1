"""Helpers for driving the core on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from hotspot_core.clock import LoopClock, Timer
from hotspot_core.grants import Grant
from hotspot_core.memory import MemoryBackend
from hotspot_core.policy import PermitPolicy


class CountingClock(LoopClock):
    """The loop's clock, counting the timers the core has armed and not yet seen fire or cancel."""

    def __init__(self) -> None:
        super().__init__()
        self.live: set[asyncio.TimerHandle] = set()

    def call_at(self, when: float, callback: Callable[..., None], *args: Any) -> Timer:
        handle: asyncio.TimerHandle

        def run() -> None:
            self.live.discard(handle)
            callback(*args)

        handle = asyncio.get_running_loop().call_at(when, run)
        self.live.add(handle)
        return _Tracked(handle, self.live)

    def live_timers(self) -> int:
        return sum(1 for h in self.live if not h.cancelled())


class _Tracked:
    def __init__(self, handle: asyncio.TimerHandle, live: set[asyncio.TimerHandle]) -> None:
        self._handle = handle
        self._live = live

    def when(self) -> float:
        return self._handle.when()

    def cancel(self) -> None:
        self._handle.cancel()
        self._live.discard(self._handle)


class VirtualWallClock(LoopClock):
    """The loop's clock with wall time that moves with it: under looptime the loop's time is
    virtual, and wall time read from the machine would drift from it between two backends."""

    def __init__(self) -> None:
        super().__init__()
        self._wall_offset = 1_800_000_000.0


def backend(**policy: float) -> MemoryBackend:
    return MemoryBackend(PermitPolicy(**policy))  # type: ignore[arg-type]


def now() -> float:
    return asyncio.get_running_loop().time()


async def settle() -> None:
    """Let every ready callback and task run (no virtual time passes)."""
    for _ in range(5):
        await asyncio.sleep(0)


def spawn(b: MemoryBackend, fixture_id: str, **kw: float | str) -> asyncio.Task[Grant]:
    return asyncio.create_task(b.acquire(fixture_id, **kw))  # type: ignore[arg-type]
