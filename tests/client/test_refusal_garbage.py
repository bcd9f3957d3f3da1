"""A refusal is garbage the moment its caller drops it: no reference cycle per call (the
future, the refusal, its traceback, the frame that held the future) left for the collector,
whose full collections over a busy client's heap cost 0.1 s each in a burst."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import pytest

from hotspot_client import PermitClient, RateLimitExceeded
from tests.integration.test_process import ServerProcess

CALLS = 200


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    server = ServerProcess("--limit", "1", "--window", "60s", "--queue", "0")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("streaming", [True, False], ids=["streamed", "unary"])
async def test_a_refusal_leaves_no_cycle_for_the_collector(
    server: ServerProcess, streaming: bool
) -> None:
    async with PermitClient(server.address, streaming=streaming) as client:
        for _ in range(3):  # the window filled, the stream and channel open
            with contextlib.suppress(RateLimitExceeded):
                await client.acquire("f", max_wait=0)
        gc.collect()
        gc.disable()
        try:
            refused = 0
            for _ in range(CALLS):
                try:
                    await client.acquire("f", max_wait=0)
                except RateLimitExceeded:
                    refused += 1
            found = gc.collect()
        finally:
            gc.enable()
    assert refused == CALLS
    assert found < CALLS // 10  # was 24 objects a refusal streamed, 50 unary
