"""The clock the core runs on: monotonic seconds for decisions, wall time for reports."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from typing import Any, Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...

    def when(self) -> float:
        """The monotonic time the timer was set for."""
        ...


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; all windows and queues use it."""
        ...

    def to_wall(self, monotonic: float) -> float:
        """Unix seconds for a monotonic reading, for timestamps in reports."""
        ...

    @property
    def clock_id(self) -> str:
        """Equal for two clocks whose monotonic readings share one time base (two processes
        on one boot of a machine), so a reading kept by one is valid for the other as it is."""
        ...

    def call_at(self, when: float, callback: Callable[..., None], *args: Any) -> Timer:
        """Run `callback(*args)` once the monotonic clock reaches `when`."""
        ...


class LoopClock:
    """The running event loop's clock.

    Timers and readings share one time base, so virtual-time test loops
    (looptime) drive the whole core. Wall time is anchored once, so a wall-clock
    step never reorders grants.
    """

    __slots__ = ("_context", "_loop", "_wall_offset", "clock_id", "monotonic")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._wall_offset = time.time() - self._loop.time()
        # The loop's own method, bound once: one call fewer on every request.
        self.monotonic: Callable[[], float] = self._loop.time
        # Timers run in one empty context rather than a copy of whichever request armed them:
        # a core timer owes nothing to that request, and a copy per timer costs 64 bytes.
        self._context = contextvars.Context()
        self.clock_id = _time_base(self._loop)

    def to_wall(self, monotonic: float) -> float:
        return monotonic + self._wall_offset

    def call_at(self, when: float, callback: Callable[..., None], *args: Any) -> Timer:
        return self._loop.call_at(when, callback, *args, context=self._context)


def boot_clock_id() -> str | None:
    """The clock_id of time.monotonic() (CLOCK_MONOTONIC counts from the machine's boot: one
    time base per boot); None where the boot cannot be told apart."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return "boot:" + f.read().strip()
    except OSError:
        return None


def _time_base(loop: asyncio.AbstractEventLoop) -> str:
    """The standard loop reads time.monotonic(). Any other loop clock (a virtual one in tests)
    is its own time base."""
    if type(loop).time is asyncio.BaseEventLoop.time and (boot := boot_clock_id()) is not None:
        return boot
    return f"loop:{id(loop):x}:{time.time_ns():x}"
