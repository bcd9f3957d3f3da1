"""HttpSide: the aiohttp server that runs on the gRPC server's event loop."""

from __future__ import annotations

import ssl

from aiohttp import web
from aiohttp.typedefs import Middleware

from hotspot_core.backend import PermitBackend
from hotspot_core.stats_feed import StatsFeed
from hotspot_server.http.auth import require_read_stats
from hotspot_server.http.errors import JsonErrorRunner, json_errors
from hotspot_server.http.headers import on_response_prepare
from hotspot_server.http.metrics import PermitMetrics
from hotspot_server.http.routes import HotSpotRoutes
from hotspot_server.settings import parse_address
from hotspot_server.transport.callers_file import CallersFile


class HttpSide:
    """start() binds (port 0 picks a free one), stop() closes connections and ends streams."""

    def __init__(
        self,
        address: str,
        backend: PermitBackend,
        feed: StatsFeed,
        metrics: PermitMetrics,
        *,
        shutdown_timeout: float,
        callers: CallersFile | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._address = address
        self._ssl_context = ssl_context
        self._routes = HotSpotRoutes(backend, feed, metrics)
        middlewares: list[Middleware] = [json_errors]
        if callers is not None:
            middlewares.append(require_read_stats(callers))
        app = web.Application(middlewares=middlewares)
        self._routes.add_to(app)
        app.on_response_prepare.append(on_response_prepare)
        self._runner = JsonErrorRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=shutdown_timeout
        )
        self.port = 0

    @property
    def url(self) -> str:
        host, _ = parse_address(self._address)
        scheme = "https" if self._ssl_context is not None else "http"
        return (
            f"{scheme}://[{host}]:{self.port}" if ":" in host else f"{scheme}://{host}:{self.port}"
        )

    async def start(self) -> None:
        host, port = parse_address(self._address)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=self._ssl_context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def stop_serving(self) -> None:
        """/readyz answers 503 from now on; everything else still answers."""
        self._routes.serving = False

    async def stop(self) -> None:
        await self._runner.cleanup()
