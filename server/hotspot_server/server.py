"""PermitServer: PermitService, health and reflection on one grpc.aio server, plus the HTTP side.

The HTTP side (hot spots, metrics, dashboard) and the alert webhook run on the
same event loop and read the same backend; both are optional.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import replace

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from hotspot.v1 import permits_pb2, permits_pb2_grpc
from hotspot_core.backend import PermitBackend, keeps_local_state, open_backend
from hotspot_core.collector import tune_collector
from hotspot_core.stats_feed import StatsFeed
from hotspot_server.alert_webhook import AlertWebhook, WebhookSecret
from hotspot_server.http.app import HttpSide
from hotspot_server.http.metrics import PermitMetrics
from hotspot_server.logs import set_log_level
from hotspot_server.reload import AlertRatioTunable, reload_settings
from hotspot_server.settings import Settings, SettingsError, parse_address
from hotspot_server.store import JournalStore, open_state_store
from hotspot_server.transport.auth import AuthInterceptor
from hotspot_server.transport.callers_file import CallersFile
from hotspot_server.transport.grpc_servicer import PermitServicer
from hotspot_server.transport.reflection import enable_reflection
from hotspot_server.transport.rpc_metrics import RpcMetricsInterceptor
from hotspot_server.transport.tls import TlsFiles
from hotspot_server.transport.undecodable import UndecodableRequests

logger = logging.getLogger("hotspot.server")

PERMIT_SERVICE = permits_pb2.DESCRIPTOR.services_by_name["PermitService"].full_name

MAX_PENDING_REQUESTS = 50_000
SERVER_OPTIONS = [
    # Refuse to share a port: two servers on one port would each hold half the state.
    ("grpc.so_reuseport", 0),
    # Accept the keepalive pings hotspot clients send on idle channels.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    # gRPC's core cancels calls it has accepted but not yet handed to the server beyond 1,000
    # pending (3,000 hard): a burst of 10,000 Acquires got 6,500 bare CANCELLEDs. hotspot answers
    # an Acquire it cannot serve in microseconds, with a proper refusal and a RetryInfo, so it
    # takes the burst itself: each pending call costs about 2 KiB (20 MB for 10,000).
    ("grpc.server.max_pending_requests", MAX_PENDING_REQUESTS),
    ("grpc.server.max_pending_requests_hard_limit", MAX_PENDING_REQUESTS),
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
        self._store: JournalStore | None = None
        self._callers: CallersFile | None = None
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
            if settings.state_dir is not None and keeps_local_state(settings.backend):
                self._store = open_state_store(settings.state_dir, settings.fsync_interval)
            try:
                self._backend = open_backend(settings.backend, settings.policy, self._store)
            except ValueError as error:  # an unknown scheme: the operator's to fix
                raise SettingsError(f"backend: {error}") from None
        self._feed = StatsFeed(self._backend, settings.stats_caps())
        # Only an HTTP side has /metrics to show the wait histogram; without one, no observer.
        metrics = PermitMetrics(settings.metrics_max_fixtures) if settings.http else None
        tls = self._load_security()
        interceptors: list[grpc.aio.ServerInterceptor] = []  # type: ignore[type-arg]
        if metrics is not None:  # first: it also counts the calls the auth check refuses
            interceptors.append(RpcMetricsInterceptor(metrics.observe_rpc))
        if self._callers is not None:
            interceptors.append(AuthInterceptor(self._callers))
        interceptors.append(UndecodableRequests())  # last: the others see what it answers
        server = self._server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=interceptors)
        permits_pb2_grpc.add_PermitServiceServicer_to_server(
            PermitServicer(
                self._backend,
                self._feed,
                metrics.observe_grant if metrics is not None else None,
                metrics.observe_refusal if metrics is not None else None,
            ),
            server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        enable_reflection(
            [PERMIT_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name], server
        )
        host, port = parse_address(self.settings.listen)
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        # Asking the OS first gives its reason, where grpcio would log a C++ error line and
        # raise a bare "Failed to bind".
        problem = bind_problem(host, port) if port else None
        try:
            if problem is None and tls is not None:
                self.port = server.add_secure_port(bind, tls.grpc_credentials())
            elif problem is None:
                self.port = server.add_insecure_port(bind)
        except RuntimeError:
            problem = "gRPC could not bind it"
        if problem is not None:
            raise OSError(f"could not listen for gRPC on {settings.listen}: {problem}")
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
                callers=self._callers,
                ssl_context=tls.http_context() if tls is not None else None,
            )
            try:
                await self._http.start()
            except OSError as error:
                raise OSError(f"could not listen for HTTP on {settings.http}: {error}") from None
        if settings.alert_webhook is not None:
            self._webhook = AlertWebhook(
                settings.alert_webhook, secret=settings.alert_webhook_secret_file
            )
            self._webhook.start(self._backend)
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self._health.set(PERMIT_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        if self._callers is None:  # once started: a start that fails stays one line
            logger.warning(
                "no caller identity (no --auth-tokens): anyone who reaches %s may acquire, "
                "release, pause fixtures and read stats",
                " and ".join(a for a in (self.address, self.http_url) if a),
                extra={"event": "auth_open"},
            )
        policy = settings.policy
        logger.info(
            "hotspot ready: gRPC on %s, HTTP %s (limit %d per %gs, queue %d, backend %s, %s)",
            self.address,
            f"on {self.http_url}" if self.http_url else "off",
            policy.limit,
            policy.window,
            policy.queue,
            settings.backend,
            self._state_phrase(),
            extra={"event": "ready", "address": self.address, "http_url": self.http_url},
        )

    def _load_security(self) -> TlsFiles | None:
        """The callers file and the TLS material, read once here and again when they change."""
        settings, tls = self.settings, None
        try:
            if settings.auth_tokens is not None:
                self._callers = CallersFile(settings.auth_tokens)
            if settings.tls_cert is not None and settings.tls_key is not None:
                tls = TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
        except ValueError as error:  # a file the operator got wrong
            raise SettingsError(str(error)) from None
        except OSError as error:
            raise OSError(f"cannot read {error.filename}: {error.strerror}") from None
        return tls

    def _state_phrase(self) -> str:
        if self._store is not None:
            return f"state in {self._store.state_dir.path}, {self._store.loaded} fixtures kept"
        if keeps_local_state(self.settings.backend):
            return "state: none, windows are forgotten on restart"
        return "state in the backend"

    async def stop(self, grace: float | None = None) -> None:
        """Health turns NOT_SERVING and /readyz 503, waiters and new calls get UNAVAILABLE,
        streams end; queued webhook alerts get the grace period; the HTTP side closes last."""
        if self._server is None:
            self._close_store()  # a start that failed early
            return
        grace = self.settings.grace if grace is None else grace
        if self._http is not None:
            self._http.stop_serving()
        webhook = self._webhook.close(grace) if self._webhook is not None else asyncio.sleep(0)
        delivering = asyncio.ensure_future(webhook)
        await self._health.enter_graceful_shutdown()
        if self._backend is not None:
            await self._backend.close()  # writes what changed last
        self._close_store()
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

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    async def apply_live(self, new: Settings) -> list[str]:
        """Take from `new` what can change while serving (settings.LIVE_KEYS).

        Returns the live keys that this server still could not change.
        """
        settings, not_applied = self.settings, []
        if self._callers is not None:
            self._callers.reload()  # also checked on use, at most once a second
        set_log_level(new.log_level)
        settings = replace(settings, log_level=new.log_level)
        ratio = new.policy.alert_ratio
        if ratio != settings.policy.alert_ratio:
            if isinstance(self._backend, AlertRatioTunable):
                self._backend.set_alert_ratio(ratio)
                settings = replace(settings, policy=replace(settings.policy, alert_ratio=ratio))
            else:
                not_applied.append("alert_ratio")
        secret = new.alert_webhook_secret_file
        await self._set_webhook(new.alert_webhook, secret)
        self.settings = replace(
            settings, alert_webhook=new.alert_webhook, alert_webhook_secret_file=secret
        )
        return not_applied

    async def _set_webhook(self, url: str | None, secret: WebhookSecret | None) -> None:
        if self._webhook is not None and url is not None:
            self._webhook.url = url  # alerts still queued go to the new URL too
            self._webhook.secret = secret  # and are signed with the new key
        elif url is not None and self._backend is not None:
            self._webhook = AlertWebhook(url, secret=secret)
            self._webhook.start(self._backend)
        elif self._webhook is not None:
            webhook, self._webhook = self._webhook, None
            await webhook.close(self.settings.grace)

    async def wait_for_termination(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


def bind_problem(host: str, port: int) -> str | None:
    """Why the OS will not let (host, port) be bound, as it says it; None if it would."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.create_server((host, port), family=family):
            return None
    except OSError as error:
        return error.strerror or str(error)


async def serve(settings: Settings, reload: Callable[[], Settings] | None = None) -> None:
    """Run until SIGTERM or SIGINT, then shut down within the grace period.

    SIGHUP calls `reload` for fresh settings (the config file read anew) and applies what
    can change live.
    """
    server = PermitServer(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Before start: a SIGTERM right after the ready line must stop the server, not kill it.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    reloads: list[asyncio.Task[None]] = []
    started = asyncio.Event()
    if reload is not None:
        hup = asyncio.Lock()  # one reload at a time, in the order the signals came

        async def reload_in_turn() -> None:
            await started.wait()  # a SIGHUP during start is applied once it is running
            async with hup:
                await reload_settings(server, reload)

        def on_sighup() -> None:
            reloads[:] = [t for t in reloads if not t.done()]
            reloads.append(asyncio.create_task(reload_in_turn()))

        # Before start too: SIGHUP's default action ends the process, and a reload sent right
        # after the ready line must reload it, not kill it.
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    await server.start()
    tune_collector()
    started.set()
    await stopping.wait()
    logger.info("shutting down (grace %gs)", settings.grace, extra={"event": "stopping"})
    await server.stop()
    logger.info("stopped", extra={"event": "stopped"})
