"""An in-process permit server with its HTTP side on free loopback ports, and a webhook receiver."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from hotspot.v1 import permits_pb2_grpc
from hotspot_core.policy import PermitPolicy
from hotspot_server.server import PermitServer
from hotspot_server.settings import Settings
from tests.integration.conftest import Harness

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class VisibleServer(Harness):
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        assert self.server.http_url is not None
        return self.server.http_url

    async def get_json(self, path: str) -> tuple[int, Any]:
        async with self.http.get(path) as response:
            return response.status, await response.json()

    async def hot_spots(self, query: str = "") -> Any:
        status, body = await self.get_json("/health/hot-spots" + query)
        assert status == 200, body
        return body

    async def scrape(self) -> Samples:
        async with self.http.get("/metrics") as response:
            assert response.status == 200
            text = await response.text()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


StartVisible = Callable[..., Awaitable[VisibleServer]]


@pytest.fixture
async def start_visible() -> AsyncIterator[StartVisible]:
    """start_visible(limit=..., window=..., alert_webhook=..., metrics_max_fixtures=...)"""
    started: list[VisibleServer] = []

    async def start(
        *,
        grace: float = 1.0,
        alert_webhook: str | None = None,
        metrics_max_fixtures: int = 1000,
        **policy: float,
    ) -> VisibleServer:
        settings = Settings(
            listen="127.0.0.1:0",
            http="127.0.0.1:0",
            policy=PermitPolicy(**policy),  # type: ignore[arg-type]
            grace=grace,
            alert_webhook=alert_webhook,
            metrics_max_fixtures=metrics_max_fixtures,
        )
        server = PermitServer(settings)
        await server.start()
        channel = grpc.aio.insecure_channel(server.address)
        assert server.http_url is not None
        visible = VisibleServer(
            server,
            channel,
            permits_pb2_grpc.PermitServiceStub(channel),
            aiohttp.ClientSession(base_url=server.http_url),
        )
        started.append(visible)
        return visible

    yield start
    for visible in started:
        await visible.http.close()
        await visible.channel.close(None)
        await visible.server.stop(0)


@dataclass
class WebhookReceiver:
    """A real HTTP server on loopback that records every POST and answers as scripted.

    `script` holds the answers to the next requests, in order: a status code, or
    "hang" (wait until `release` is set). Once it is empty every request gets 200.
    """

    url: str = ""
    bodies: list[Any] = field(default_factory=list)
    attempts: int = 0
    script: list[int | str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        answer = self.script.pop(0) if self.script else 200
        self.attempts += 1
        if answer != "hang" and int(answer) < 300:
            self.bodies.append(body)
        async with self._arrived:
            self._arrived.notify_all()
        if answer == "hang":
            await self.release.wait()  # the sender has given up on this attempt by now
            return web.json_response({})
        return web.json_response({}, status=int(answer))

    async def wait_for(self, bodies: int = 0, attempts: int = 0, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        async with self._arrived:
            while len(self.bodies) < bodies or self.attempts < attempts:
                left = deadline - time.monotonic()
                assert left > 0, f"got {self.bodies} in {self.attempts} attempts"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), left)


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver()
    app = web.Application()
    app.router.add_post("/alerts", hook.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook.url = f"http://127.0.0.1:{runner.addresses[0][1]}/alerts"
    yield hook
    hook.release.set()
    await runner.cleanup()
