"""Reading the permit server's Stats and the fake's tally, as the end-to-end tests check them."""

from __future__ import annotations

from typing import Any

import grpc
import httpx

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc


async def permit_stats(target: str, fixture_id: str) -> pb.FixtureStats:
    """The permit server's own view of one fixture (Stats over gRPC)."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = permits_pb2_grpc.PermitServiceStub(channel)
        response = await stub.Stats(pb.StatsRequest(fixture_ids=[fixture_id]), timeout=5)
    row: pb.FixtureStats = response.fixtures[0]
    return row


async def upstream_tally(fake_url: str, fixture_id: str) -> dict[str, Any]:
    """What the fake Optic Odds counted for one fixture (zeros if it never saw it)."""
    async with httpx.AsyncClient(base_url=fake_url) as http:
        stats = (await http.get("/_fake/stats")).raise_for_status().json()
    empty = {"calls": 0, "violations": 0, "served": 0, "served_at": []}
    tally: dict[str, Any] = stats["fixtures"].get(fixture_id, empty)
    return tally
