"""The HTTP endpoints. Each maps a request to the core and a core snapshot to JSON or text."""

from __future__ import annotations

import json
from importlib import resources

from aiohttp import web

from hotspot_core.backend import PermitBackend
from hotspot_core.stats_feed import StatsFeed, TooManySubscribers
from hotspot_server.http.json_messages import snapshot_to_json
from hotspot_server.http.metrics import PermitMetrics
from hotspot_server.http.stats_query import read_stats_query
from hotspot_server.transport.caller import caller_name

# The page may talk to this server only, and no other site may frame it (clickjacking): a
# browser enforces both even if the page were edited.
DASHBOARD_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SSE_RETRY_MS = 1000
"""How soon a dashboard reconnects after the stream drops."""


def _dumps(data: object) -> str:
    return json.dumps(data, separators=(",", ":"))


class HotSpotRoutes:
    """Handlers over one backend and its StatsFeed; `serving` turns False while shutting down."""

    def __init__(self, backend: PermitBackend, feed: StatsFeed, metrics: PermitMetrics) -> None:
        self._backend = backend
        self._feed = feed
        self._metrics = metrics
        self.serving = True
        self._dashboard = (
            resources.files("hotspot_server.http").joinpath("dashboard.html").read_bytes()
        )

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/health/hot-spots", self.hot_spots)
        app.router.add_get("/health/hot-spots/stream", self.hot_spots_stream)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/dashboard", self.dashboard)

    async def hot_spots(self, request: web.Request) -> web.Response:
        query = read_stats_query(request.query)
        snapshot = await self._backend.stats(self._feed.check_view(query.view))
        return web.json_response(snapshot_to_json(snapshot, self._backend.policy), dumps=_dumps)

    async def hot_spots_stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the first snapshot at once, then one per interval (StatsFeed)."""
        query = read_stats_query(request.query, streaming=True)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        # As on gRPC: the authenticated caller, else the reader's address.
        caller = caller_name() or f"peer:{request.remote}"
        try:
            async with self._feed.subscribe(query.view, query.interval, caller) as subscription:
                await response.prepare(request)
                await response.write(f"retry: {SSE_RETRY_MS}\n\n".encode())
                try:
                    async for snapshot in subscription:
                        data = _dumps(snapshot_to_json(snapshot, self._backend.policy))
                        await response.write(f"data: {data}\n\n".encode())
                except ConnectionResetError:
                    pass  # the reader went away; leaving the block unsubscribes it
        except TooManySubscribers as error:
            return web.json_response(
                {"error": "too_many_subscribers", "message": str(error)}, status=429
            )
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(self, request: web.Request) -> web.Response:
        if not self.serving:
            return web.json_response({"status": "shutting_down"}, status=503)
        why = self._backend.unready_reason()
        if why is not None:
            return web.json_response({"status": "unavailable", "reason": why}, status=503)
        return web.json_response({"status": "serving"})

    async def metrics(self, request: web.Request) -> web.Response:
        snapshot = await self._backend.stats(self._metrics.view)
        body, content_type = self._metrics.render(snapshot, request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def dashboard(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._dashboard,
            content_type="text/html",
            charset="utf-8",
            headers={"Content-Security-Policy": DASHBOARD_POLICY, "Cache-Control": "no-cache"},
        )
