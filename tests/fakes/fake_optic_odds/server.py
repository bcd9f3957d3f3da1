"""FakeOpticOddsServer: the fake app under uvicorn on a loopback port, in the running loop."""

from __future__ import annotations

import asyncio
import socket
from types import TracebackType

import uvicorn

from fake_optic_odds.app import FakeOpticOdds, FakeSettings, create_app
from hotspot_server.settings import parse_address


class FakeOpticOddsServer:
    """Binds at once (port 0 picks a free one), so `base_url` is known before serving starts."""

    def __init__(self, settings: FakeSettings | None = None, listen: str = "127.0.0.1:0") -> None:
        self.settings = settings or FakeSettings()
        self.app = create_app(self.settings)
        host, port = parse_address(listen)
        self._socket = socket.create_server((host, port), family=_family(host), backlog=1024)
        self.host, self.port = host, int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def fake(self) -> FakeOpticOdds:
        fake: FakeOpticOdds = self.app.state.fake
        return fake

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        # The socket already listens: connections made before uvicorn starts wait in the backlog.
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))

    async def stop(self) -> None:
        if self._task is None:
            self._socket.close()
            return
        self._server.should_exit = True
        await self._task
        self._task = None

    async def serve_forever(self) -> None:
        """Run until uvicorn exits (SIGINT or SIGTERM)."""
        await self._server.serve(sockets=[self._socket])

    async def __aenter__(self) -> FakeOpticOddsServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
