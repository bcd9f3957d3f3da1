"""Options and security (TLS, client certificate, token) of the channels the client opens."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc

CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    # Ping an idle connection every 30 s so a dead peer or a dropped NAT entry is found before
    # a caller needs the channel. The server accepts pings no more often than every 10 s
    # (pinging faster earns a GOAWAY `too_many_pings`), and accepts them without calls.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect soon after the service comes back (gRPC's default backoff grows to 120 s),
    # so an outage ends within about 2 s of the restart.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.primary_user_agent", "hotspot-client"),
]


@dataclass(frozen=True)
class ChannelSecurity:
    """How a client proves the server's identity, and its own. Without one: plain text.

    ca_file: CA certificates (PEM) that sign the server's certificate; None: the system's.
    cert_file, key_file: a client certificate and its key, for a server that requires them (mTLS);
    its CN names the caller.
    token: a bearer token of the server's callers file, sent with every call.

    A token alone, to a loopback target, goes over gRPC's local credentials (the server listens
    in plain text on the loopback); anything else is TLS.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    token: str | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both or neither")
        if self.token is not None and not self.token.strip():
            raise ValueError("token is empty")

    def credentials(self, target: str) -> grpc.ChannelCredentials:
        """Reads the files now; OSError if one cannot be read."""
        channel: grpc.ChannelCredentials
        if self.ca_file is None and self.cert_file is None and _is_loopback(target):
            channel = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        else:
            channel = grpc.ssl_channel_credentials(
                root_certificates=self.ca_file.read_bytes() if self.ca_file else None,
                private_key=self.key_file.read_bytes() if self.key_file else None,
                certificate_chain=self.cert_file.read_bytes() if self.cert_file else None,
            )
        if self.token is None:
            return channel
        return grpc.composite_channel_credentials(
            channel, grpc.access_token_call_credentials(self.token.strip())
        )


def _is_loopback(target: str) -> bool:
    """127.0.0.1:50051, [::1]:50051, localhost:50051 (with or without a dns:/// or ipv4: scheme)."""
    address = target.removeprefix("dns:///").removeprefix("ipv4:").removeprefix("ipv6:")
    host = address.rpartition(":")[0].strip("[]") or address
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
