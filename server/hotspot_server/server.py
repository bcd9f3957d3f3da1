"""PermitServer: PermitService, health and reflection on one grpc.aio server, plus the HTTP side.

The HTTP side (hot spots, metrics, dashboard) and the alert webhook run on the
same event loop and read the same backend; both are optional.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hotspot.v1 import permits_pb2, permits_pb2_grpc
from hotspot_core.backend import PermitBackend, open_backend
from hotspot_core.stats_feed import StatsFeed
from hotspot_server.alert_webhook import AlertWebhook
from hotspot_server.http.app import HttpSide
from hotspot_server.http.metrics import PermitMetrics
from hotspot_server.settings import Settings, parse_address
from hotspot_server.transport.grpc_servicer import PermitServicer

logger = logging.getLogger("hotspot.server")

PERMIT_SERVICE = permits_pb2.DESCRIPTOR.services_by_name["PermitService"].full_name

SERVER_OPTIONS = [
    # Refuse to share a port: two servers on one port would each hold half the state.
    ("grpc.so_reuseport", 0),
    # Accept the keepalive pings hotspot clients send on idle channels.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
]
DRAIN = 1.0
"""Seconds (at most half the grace) that a stopping server, already NOT_SERVING, keeps
answering: a new call gets hotspot's own UNAVAILABLE with a RetryInfo rather than a
connection cut by the transport, and health watchers have time to move away."""
HTTP_SHUTDOWN_TIMEOUT = 1.0
"""Seconds in-flight HTTP requests get once gRPC has stopped (streams end with the feed first)."""


class PermitServer:
    """The whole of hotspot in one process; start() binds, stop() shuts down in order."""

    def __init__(self, settings: Settings, backend: PermitBackend | None = None) -> None:
        self.settings = settings
        self._backend = backend
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()  # type: ignore[attr-defined]  # not in grpc-stubs
        self._feed: StatsFeed | None = None
        self._http: HttpSide | None = None
        self._webhook: AlertWebhook | None = None
        self.port = 0

    @property
    def backend(self) -> PermitBackend:
        assert self._backend is not None, "start() first"
        return self._backend

    @property
    def feed(self) -> StatsFeed:
        assert self._feed is not None, "start() first"
        return self._feed

    @property
    def address(self) -> str:
        host, _ = parse_address(self.settings.listen)
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def http_url(self) -> str | None:
        """http://HOST:PORT of the HTTP side, None without one."""
        return self._http.url if self._http is not None else None

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop(0)
            raise

    async def _start(self) -> None:
        settings = self.settings
        if self._backend is None:
            self._backend = open_backend(settings.backend, settings.policy)
        self._feed = StatsFeed(self._backend)
        # Only an HTTP side has /metrics to show the wait histogram; without one, no observer.
        metrics = PermitMetrics(settings.metrics_max_fixtures) if settings.http else None
        server = self._server = grpc.aio.server(options=SERVER_OPTIONS)
        permits_pb2_grpc.add_PermitServiceServicer_to_server(
            PermitServicer(
                self._backend, self._feed, metrics.observe_grant if metrics is not None else None
            ),
            server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            [
                PERMIT_SERVICE,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        host, port = parse_address(self.settings.listen)
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.port = server.add_insecure_port(bind)
        if self.port == 0:
            raise OSError(f"could not listen on {self.settings.listen}")
        await server.start()
        if settings.http is not None and metrics is not None:
            self._http = HttpSide(
                settings.http,
                self._backend,
                self._feed,
                metrics,
                shutdown_timeout=min(settings.grace, HTTP_SHUTDOWN_TIMEOUT),
            )
            try:
                await self._http.start()
            except OSError as error:
                raise OSError(f"could not listen for HTTP on {settings.http}: {error}") from None
        if settings.alert_webhook is not None:
            self._webhook = AlertWebhook(settings.alert_webhook)
            self._webhook.start(self._backend)
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self._health.set(PERMIT_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        policy = settings.policy
        logger.info(
            "hotspot ready: gRPC on %s, HTTP %s (limit %d per %gs, queue %d, backend %s)",
            self.address,
            f"on {self.http_url}" if self.http_url else "off",
            policy.limit,
            policy.window,
            policy.queue,
            settings.backend,
            extra={"event": "ready", "address": self.address, "http_url": self.http_url},
        )

    async def stop(self, grace: float | None = None) -> None:
        """Health turns NOT_SERVING and /readyz 503, waiters and new calls get UNAVAILABLE,
        streams end; queued webhook alerts get the grace period; the HTTP side closes last."""
        if self._server is None:
            return
        grace = self.settings.grace if grace is None else grace
        if self._http is not None:
            self._http.stop_serving()
        webhook = self._webhook.close(grace) if self._webhook is not None else asyncio.sleep(0)
        delivering = asyncio.ensure_future(webhook)
        await self._health.enter_graceful_shutdown()
        if self._backend is not None:
            await self._backend.close()
        if self._feed is not None:
            await self._feed.close()
        drain = min(DRAIN, grace / 2)
        if drain > 0:
            await asyncio.sleep(drain)
        await asyncio.gather(self._server.stop(grace - drain), delivering)
        self._server = None
        self._webhook = None
        if self._http is not None:
            await self._http.stop()
            self._http = None

    async def wait_for_termination(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down within the grace period."""
    server = PermitServer(settings)
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    logger.info("shutting down (grace %gs)", settings.grace, extra={"event": "stopping"})
    await server.stop()
    logger.info("stopped", extra={"event": "stopped"})
