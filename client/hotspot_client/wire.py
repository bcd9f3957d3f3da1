"""Client values <-> hotspot.v1 messages, shared by the async and the sync client."""

from __future__ import annotations

from collections.abc import Sequence

from hotspot.v1 import permits_pb2 as pb
from hotspot_client.permit import Outcome, Permit, upstream_delay
from hotspot_client.proto_time import (
    duration_seconds,
    set_duration,
    timestamp_seconds,
    to_duration,
    to_timestamp,
)
from hotspot_core.grants import Grant
from hotspot_core.warming_board import ScheduledWarming

OUTCOME_TO_PROTO = {
    Outcome.SUCCESS: pb.OUTCOME_SUCCESS,
    Outcome.FAILURE: pb.OUTCOME_FAILURE,
    Outcome.NOT_SENT: pb.OUTCOME_NOT_SENT,
    Outcome.UPSTREAM_RATE_LIMITED: pb.OUTCOME_UPSTREAM_RATE_LIMITED,
}


def acquire_request(
    fixture_id: str,
    client_id: str,
    max_wait: float | None,
    request_id: str = "",
    warming: bool = False,
    *,
    into: pb.AcquireRequest | None = None,
) -> pb.AcquireRequest:
    """The request; filled `into` an empty one when given (a stream item's own acquire: filled
    in place, it costs half as much as a request built and copied in)."""
    request = pb.AcquireRequest() if into is None else into
    request.fixture_id = fixture_id
    request.client_id = client_id
    request.request_id = request_id
    if warming:
        request.purpose = pb.PURPOSE_WARMING
    if max_wait is not None:
        set_duration(request.max_wait, max_wait)
    return request


def release_request(
    permit_id: str, outcome: Outcome, upstream_retry_after: float | None, request_id: str = ""
) -> pb.ReleaseRequest:
    request = pb.ReleaseRequest(
        permit_id=permit_id, outcome=OUTCOME_TO_PROTO[outcome], request_id=request_id
    )
    if upstream_retry_after is not None:
        request.upstream_retry_after.CopyFrom(to_duration(upstream_retry_after))
    return request


def check_release(outcome: Outcome, upstream_retry_after: float | None) -> float | None:
    """The upstream delay to send, after checking that it goes with the outcome."""
    if upstream_retry_after is not None and outcome is not Outcome.UPSTREAM_RATE_LIMITED:
        raise ValueError(
            "upstream_retry_after goes only with Outcome.UPSTREAM_RATE_LIMITED, "
            f"not with Outcome.{outcome.name}"
        )
    return upstream_delay(upstream_retry_after)


def permit_from_response(response: pb.AcquireResponse) -> Permit:
    return Permit(
        permit_id=response.permit_id,
        fixture_id=response.fixture_id,
        queue_position=response.queue_position,
        remaining=response.remaining,
        waited=duration_seconds(response.waited),
        granted_at=timestamp_seconds(response.granted_at),
        lease_expires_at=timestamp_seconds(response.lease_expires_at),
    )


def permit_from_grant(grant: Grant) -> Permit:
    """A permit of the in-process fallback window."""
    return Permit(
        permit_id=grant.permit_id,
        fixture_id=grant.fixture_id,
        queue_position=grant.queue_position,
        remaining=grant.remaining,
        waited=grant.waited,
        granted_at=grant.granted_at,
        lease_expires_at=grant.lease_expires_at,
        local=True,
    )


def scheduled_warming_to_proto(warming: ScheduledWarming) -> pb.ScheduledWarming:
    return pb.ScheduledWarming(
        fixture_id=warming.fixture_id,
        rule=warming.rule,
        starts_at=to_timestamp(warming.starts_at),
        kickoff=to_timestamp(warming.kickoff),
        ends_at=to_timestamp(warming.ends_at),
    )


def scheduled_warming_from_proto(message: pb.ScheduledWarming) -> ScheduledWarming:
    """An unset time reads as 0, which the board's rules refuse by name."""
    return ScheduledWarming(
        fixture_id=message.fixture_id,
        rule=message.rule,
        starts_at=timestamp_seconds(message.starts_at),
        kickoff=timestamp_seconds(message.kickoff),
        ends_at=timestamp_seconds(message.ends_at),
    )


def announce_warmings_request(
    announcer: str, warmings: Sequence[ScheduledWarming], ttl: float | None
) -> pb.AnnounceWarmingsRequest:
    request = pb.AnnounceWarmingsRequest(
        announcer=announcer, warmings=[scheduled_warming_to_proto(w) for w in warmings]
    )
    if ttl is not None:
        request.ttl.CopyFrom(to_duration(ttl))
    return request
