"""One permit per fixture of a call: all of them, or none held."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hotspot_client import Outcome, Permit, PermitClient, PermitError
from hotspot_client.permit import log_release_failure

SETTLE_GRACE = 0.25
"""Seconds the other acquires of a refused call get to finish before they are cancelled.

An acquire granted at once is answered within milliseconds; cancelling it while
its answer is on the way would lose the grant (it would stay in the window until
its lease ends). One still waiting after this is queued, and cancelling a queued
acquire is clean: the service drops it from the queue.
"""


async def acquire_each(
    permits: PermitClient, fixture_ids: Sequence[str], *, max_wait: float | None
) -> tuple[Permit, ...]:
    """A permit for every fixture, asked for at once so the waits overlap.

    If any is refused, the others that are granted are released as NOT_SENT, those
    still queued are cancelled, and then the refusal is raised: no grant is left
    behind. A cancelled caller cancels them all and releases what was granted.
    """
    if len(fixture_ids) == 1:
        return (await permits.acquire(fixture_ids[0], max_wait=max_wait),)
    tasks = [asyncio.create_task(permits.acquire(f, max_wait=max_wait)) for f in fixture_ids]
    refused: BaseException | None = None
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        refused = next((e for e in map(_refusal, tasks) if e is not None), None)
        if refused is not None:
            await asyncio.wait(tasks, timeout=SETTLE_GRACE)
    finally:
        if refused is not None or not all(t.done() for t in tasks):
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            granted = [t.result() for t in tasks if _granted(t)]
            await release_each(permits, granted, Outcome.NOT_SENT)
    if refused is not None:
        raise refused
    return tuple(t.result() for t in tasks)


def _granted(task: asyncio.Task[Permit]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


def _refusal(task: asyncio.Task[Permit]) -> BaseException | None:
    """What a finished acquire raised (None while it runs, or if it was granted or cancelled)."""
    return None if not task.done() or task.cancelled() else task.exception()


async def release_each(
    permits: PermitClient,
    granted: Sequence[Permit],
    outcome: Outcome,
    upstream_retry_after: float | None = None,
) -> None:
    """Release every permit; a failed release is logged, not raised (its lease ends it)."""

    async def release(permit: Permit) -> None:
        try:
            await permits.release(permit, outcome, upstream_retry_after)
        except PermitError as error:
            log_release_failure(permit, outcome, error)

    await asyncio.gather(*(release(p) for p in granted))
