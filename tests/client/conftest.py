"""The permit server of the integration tests, a port with nothing behind it, a call recorder."""

from __future__ import annotations

import socket
from typing import Any

import grpc
import pytest

from hotspot_client import PermitClient
from hotspot_client.channel_options import CHANNEL_OPTIONS
from tests.integration.conftest import Harness, StartServer, start_server

__all__ = [
    "CallRecorder",
    "Harness",
    "StartServer",
    "dead_target",
    "free_port",
    "recorded_client",
    "start_server",
]


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def dead_target() -> str:
    return f"127.0.0.1:{free_port()}"


class CallRecorder(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Records every attempt a client makes (method, request), whatever its outcome."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        method = client_call_details.method
        self.calls.append((method.decode() if isinstance(method, bytes) else method, request))
        return await continuation(client_call_details, request)

    def attempts(self, rpc: str) -> int:
        return sum(1 for method, _ in self.calls if method.endswith(f"/{rpc}"))

    def requests(self, rpc: str) -> list[Any]:
        return [request for method, request in self.calls if method.endswith(f"/{rpc}")]


def recorded_client(target: str, **options: Any) -> tuple[PermitClient, CallRecorder]:
    """A PermitClient whose every attempt is recorded: unary calls, so it is not streaming."""
    options.setdefault("streaming", False)
    recorder = CallRecorder()
    # grpc-stubs leaves ClientInterceptor a placeholder that no class satisfies.
    interceptors: list[Any] = [recorder]
    channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)
    return PermitClient(channel=channel, **options), recorder
