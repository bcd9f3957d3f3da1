"""A client waiting with max_wait rides out a server restart on the same port."""

from __future__ import annotations

import asyncio
import time

import pytest

from hotspot_client import PermitClient, backoff
from tests.integration.test_process import ServerProcess

WINDOW = 8.0
"""Seconds: short enough that a queued request fits in MAX_WAIT, long enough to be queued."""
MAX_WAIT = 12.0


def restart(old: ServerProcess) -> ServerProcess:
    """Stop `old` (SIGTERM: its waiters get SHUTTING_DOWN), then start anew on its port."""
    assert old.stop() == 0, "".join(old.log)
    # A later --listen wins over the one ServerProcess picks.
    return ServerProcess("--listen", old.address, "--limit", "1", "--window", f"{WINDOW}s")


async def test_a_waiter_retries_through_shutdown_and_refused_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Calls without max_wait stop retrying after DEFAULT_RETRY_FOR; made far shorter than the
    # restart, it shows that a call with max_wait is not held to it.
    monkeypatch.setattr(backoff, "DEFAULT_RETRY_FOR", 0.2)
    first = ServerProcess("--limit", "1", "--window", f"{WINDOW}s", "--grace", "1s")
    second: ServerProcess | None = None
    try:
        async with PermitClient(first.address, client_id="restart-test") as client:
            await client.acquire("f")  # the window is full: the next request queues
            start = time.monotonic()
            waiter = asyncio.create_task(client.acquire("f", max_wait=MAX_WAIT))
            await asyncio.sleep(0.3)  # queued on the first server
            assert not waiter.done()
            second = await asyncio.to_thread(restart, first)
            restarted_after = time.monotonic() - start
            permit = await asyncio.wait_for(waiter, MAX_WAIT)
            took = time.monotonic() - start
        # Granted by the new server (an empty window), after the restart.
        assert permit.remaining == 0
        assert backoff.DEFAULT_RETRY_FOR < restarted_after < took < MAX_WAIT
    finally:
        for process in (first, second):
            if process is not None and process.proc.poll() is None:
                process.proc.kill()
                process.proc.wait()
