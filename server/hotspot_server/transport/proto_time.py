"""Seconds as floats in the core; Duration and Timestamp on the wire."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp


def duration_seconds(duration: Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def to_duration(seconds: float) -> Duration:
    nanos = max(0, round(seconds * 1e9))  # every duration hotspot reports is non-negative
    return Duration(seconds=nanos // 1_000_000_000, nanos=nanos % 1_000_000_000)


def to_timestamp(unix_seconds: float) -> Timestamp:
    nanos = round(unix_seconds * 1e9)
    return Timestamp(seconds=nanos // 1_000_000_000, nanos=nanos % 1_000_000_000)


def timestamp_seconds(timestamp: Timestamp) -> float:
    return timestamp.seconds + timestamp.nanos / 1e9
