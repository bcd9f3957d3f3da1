"""Seconds as floats in the core; Duration and Timestamp on the wire.

The set_* functions fill a message's field in place: on the Acquire path that
is about three times cheaper than building a Timestamp and copying it in.
"""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from hotspot_core.errors import InvalidArgument


def duration_seconds(duration: Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def checked_seconds(duration: Duration, field: str, *, at_most: float) -> float:
    """A caller's Duration as seconds, after the rules a well-formed one follows: nanos within
    one second, no negative part, and no more than `at_most` (raises InvalidArgument)."""
    seconds, nanos = duration.seconds, duration.nanos
    if not 0 <= nanos <= 999_999_999 or seconds < 0:
        raise InvalidArgument(
            f"{field} must be a non-negative Duration with nanos in [0, 999999999], "
            f"got seconds={seconds} nanos={nanos}",
            field=field,
        )
    value = seconds + nanos / 1e9
    if value > at_most:
        raise InvalidArgument(f"{field} must be at most {at_most:g}s, got {value:g}s", field=field)
    return value


def timestamp_seconds(timestamp: Timestamp) -> float:
    return timestamp.seconds + timestamp.nanos / 1e9


def set_duration(target: Duration, seconds: float) -> None:
    # Every duration hotspot reports is non-negative.
    target.seconds, target.nanos = divmod(max(0, round(seconds * 1e9)), 1_000_000_000)


def set_timestamp(target: Timestamp, unix_seconds: float) -> None:
    target.seconds, target.nanos = divmod(round(unix_seconds * 1e9), 1_000_000_000)


def to_duration(seconds: float) -> Duration:
    duration = Duration()
    set_duration(duration, seconds)
    return duration


def to_timestamp(unix_seconds: float) -> Timestamp:
    timestamp = Timestamp()
    set_timestamp(timestamp, unix_seconds)
    return timestamp
