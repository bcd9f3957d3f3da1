"""The options of channels the client opens itself."""

from __future__ import annotations

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
