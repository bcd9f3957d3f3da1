"""Servers with TLS, client certificates and a callers file, made by the tests, on the loopback."""

from __future__ import annotations

import os
import secrets
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from hotspot.v1 import permits_pb2_grpc
from hotspot_client.channel_options import ChannelSecurity
from hotspot_server.server import PermitServer
from hotspot_server.settings import Settings
from hotspot_server.transport.callers_file import token_hash
from tests.auth.certificates import CertificateAuthority

if TYPE_CHECKING:
    from hotspot.v1.permits_pb2_grpc import PermitServiceAsyncStub

ROLES_OF = {
    "acquirer": ["acquire"],
    "reporter": ["acquire", "report-upstream"],
    "reader": ["read-stats"],
    "root": ["admin"],
    "nobody": [],
}
"""The callers of every test's callers file; each has a token and a client certificate."""


def write_callers(path: Path, callers: Mapping[str, tuple[Sequence[str], str | None]]) -> None:
    """The callers file for {name: (roles, token or None)}, replaced in one rename."""
    lines = []
    for name, (roles, token) in callers.items():
        lines.append(f"[callers.{name}]")
        lines.append("roles = [" + ", ".join(f'"{r}"' for r in roles) + "]")
        if token is not None:
            lines.append(f'token_sha256 = "{token_hash(token)}"')
    staging = path.with_suffix(".new")
    staging.write_text("\n".join(lines) + "\n")
    os.replace(staging, path)


@dataclass
class Pki:
    """A CA, the server's certificate, a client certificate and a token per caller, on disk."""

    directory: Path
    ca: CertificateAuthority = field(default_factory=lambda: CertificateAuthority("test CA"))
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ca_file = self.directory / "ca.pem"
        self.ca_file.write_bytes(self.ca.pem)
        self.server_cert, self.server_key = self.ca.server().write(self.directory, "server")
        self.tokens = {name: secrets.token_urlsafe(32) for name in ROLES_OF}
        self.callers_file = self.directory / "callers.toml"
        write_callers(
            self.callers_file, {n: (roles, self.tokens[n]) for n, roles in ROLES_OF.items()}
        )
        self._clients: dict[str, tuple[Path, Path]] = {}

    def client_files(self, name: str) -> tuple[Path, Path]:
        if name not in self._clients:
            self._clients[name] = self.ca.client(name).write(self.directory, f"client-{name}")
        return self._clients[name]

    def settings(self, *, mtls: bool, http: bool = True) -> Settings:
        return Settings(
            listen="127.0.0.1:0",
            http="127.0.0.1:0" if http else None,
            tls_cert=self.server_cert,
            tls_key=self.server_key,
            tls_client_ca=self.ca_file if mtls else None,
            auth_tokens=self.callers_file,
        )

    def token_security(self, name: str | None) -> ChannelSecurity:
        """TLS with the caller's bearer token (none: TLS only)."""
        return ChannelSecurity(ca_file=self.ca_file, token=self.tokens[name] if name else None)

    def certificate_security(self, name: str | None) -> ChannelSecurity:
        """TLS with the caller's client certificate (none: no certificate)."""
        if name is None:
            return ChannelSecurity(ca_file=self.ca_file)
        cert, key = self.client_files(name)
        return ChannelSecurity(ca_file=self.ca_file, cert_file=cert, key_file=key)

    def http_context(self, certificate_of: str | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if certificate_of is not None:
            context.load_cert_chain(*self.client_files(certificate_of))
        return context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[PermitServer]:
    server = PermitServer(settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(0)


@asynccontextmanager
async def permit_stub(
    server: PermitServer, security: ChannelSecurity
) -> AsyncIterator[PermitServiceAsyncStub]:
    target = server.address
    async with grpc.aio.secure_channel(target, security.credentials(target)) as channel:
        yield permits_pb2_grpc.PermitServiceStub(channel)
