"""UtcClock: the warmer's time, UTC on the running loop's clock (virtual under looptime)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime


class UtcClock:
    """UTC that moves with the event loop; `start` pins what "now" is when first read.

    Every wait is an asyncio.sleep on the same loop, so a virtual-time loop (looptime)
    drives the whole warmer and a test never sleeps through real minutes.
    """

    def __init__(self, start: datetime | None = None) -> None:
        if start is not None and start.utcoffset() is None:
            raise ValueError("start must be an aware datetime (UTC)")
        self._start = start
        self._anchor: tuple[float, float] | None = None

    def timestamp(self) -> float:
        """Unix seconds now."""
        loop_now = asyncio.get_running_loop().time()
        if self._anchor is None:
            wall = self._start.timestamp() if self._start is not None else time.time()
            self._anchor = (wall, loop_now)
        wall, at = self._anchor
        return wall + (loop_now - at)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    async def sleep_until(self, moment: datetime) -> None:
        delay = moment.timestamp() - self.timestamp()
        if delay > 0:
            await asyncio.sleep(delay)
