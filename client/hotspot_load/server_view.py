"""What the server says about itself: Stats over gRPC, /metrics and /health/hot-spots over HTTP.
The scenarios hold the generator's log against these."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc

_SAMPLE = re.compile(r"^([a-z_]+)(?:\{(.*)\})? ([0-9.e+-]+|NaN)$")


def parse_metrics(text: str) -> dict[tuple[str, str], float]:
    """(series name, its labels as written) -> value, from the Prometheus text format."""
    samples = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            samples[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return samples


@dataclass
class ServerView:
    target: str
    http: str | None
    """Base URL of the HTTP side (http://HOST:PORT), or None when it is off."""

    async def stats(self, fixture_ids: Sequence[str]) -> pb.StatsResponse:
        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = permits_pb2_grpc.PermitServiceStub(channel)
            return await stub.Stats(pb.StatsRequest(fixture_ids=list(fixture_ids)), timeout=10)

    async def metrics(self) -> dict[tuple[str, str], float]:
        return parse_metrics(await self._get("/metrics"))

    async def hot_spots(self, fixture_ids: Sequence[str]) -> dict[str, Any]:
        query = "&".join(f"fixture_id={f}" for f in fixture_ids)
        data: dict[str, Any] = json.loads(await self._get(f"/health/hot-spots?{query}"))
        return data

    async def _get(self, path: str) -> str:
        if self.http is None:
            raise RuntimeError("the server's HTTP side is off: --http names it")
        url = self.http + path

        def get() -> str:
            with urllib.request.urlopen(url, timeout=10) as response:
                return str(response.read().decode())

        return await asyncio.to_thread(get)
