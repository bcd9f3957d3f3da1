"""PermitServer: PermitService, health and reflection on one grpc.aio server."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hotspot.v1 import permits_pb2, permits_pb2_grpc
from hotspot_server.core.backend import PermitBackend, open_backend
from hotspot_server.core.stats_feed import StatsFeed
from hotspot_server.settings import Settings, parse_address
from hotspot_server.transport.grpc_servicer import PermitServicer

logger = logging.getLogger("hotspot.server")

PERMIT_SERVICE = permits_pb2.DESCRIPTOR.services_by_name["PermitService"].full_name

_SERVER_OPTIONS = [
    # Refuse to share a port: two servers on one port would each hold half the state.
    ("grpc.so_reuseport", 0),
    # Accept the keepalive pings hotspot clients send on idle channels.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
]


class PermitServer:
    """The whole gRPC side of hotspot; start() binds, stop() shuts down in order."""

    def __init__(self, settings: Settings, backend: PermitBackend | None = None) -> None:
        self.settings = settings
        self._backend = backend
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()  # type: ignore[attr-defined]  # not in grpc-stubs
        self._feed: StatsFeed | None = None
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

    async def start(self) -> None:
        if self._backend is None:
            self._backend = open_backend(self.settings.backend, self.settings.policy)
        self._feed = StatsFeed(self._backend)
        server = self._server = grpc.aio.server(options=_SERVER_OPTIONS)
        permits_pb2_grpc.add_PermitServiceServicer_to_server(
            PermitServicer(self._backend, self._feed), server
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
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self._health.set(PERMIT_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        policy = self.settings.policy
        logger.info(
            "hotspot ready: gRPC on %s (limit %d per %gs, queue %d, backend %s)",
            self.address,
            policy.limit,
            policy.window,
            policy.queue,
            self.settings.backend,
            extra={"event": "ready", "address": self.address},
        )

    async def stop(self, grace: float | None = None) -> None:
        """Health turns NOT_SERVING, waiters and new calls get UNAVAILABLE, streams end."""
        if self._server is None:
            return
        grace = self.settings.grace if grace is None else grace
        await self._health.enter_graceful_shutdown()
        await self.backend.close()
        await self.feed.close()
        await self._server.stop(grace)
        self._server = None

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
