"""SingleFlight: concurrent calls for one key share one run of the work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """One task per key at a time; every caller for that key awaits the same task.

    Each caller awaits it through asyncio.shield: a cancelled caller stops waiting,
    and the shared work goes on for the others (cashews' thunder_protection awaits the
    task itself, so one caller's cancellation cancels it for all). Work that no one
    awaits any more still runs to its end, and its result is dropped.
    """

    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Task[T]] = {}

    def running(self, key: str) -> asyncio.Task[T] | None:
        return self._flights.get(key)

    def start(self, key: str, work: Callable[[], Coroutine[Any, Any, T]]) -> asyncio.Task[T]:
        """The task running for `key`, started from `work` if none runs."""
        task = self._flights.get(key)
        if task is None:
            task = asyncio.create_task(work())
            self._flights[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return task

    async def run(self, key: str, work: Callable[[], Coroutine[Any, Any, T]]) -> tuple[T, bool]:
        """The result of the one run for `key`, and whether this caller joined one running."""
        joined = key in self._flights
        return await asyncio.shield(self.start(key, work)), joined

    def _forget(self, key: str, done: asyncio.Task[T]) -> None:
        if self._flights.get(key) is done:
            del self._flights[key]
        if not done.cancelled():
            done.exception()  # retrieved: a failure nobody awaited any more is not logged

    async def cancel_all(self) -> None:
        tasks = list(self._flights.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
