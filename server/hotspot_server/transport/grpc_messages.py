"""Core values <-> hotspot.v1 messages."""

from __future__ import annotations

from hotspot.v1 import permits_pb2 as pb
from hotspot_client.proto_time import (
    set_duration,
    set_timestamp,
    to_duration,
    to_timestamp,
)
from hotspot_client.wire import OUTCOME_TO_PROTO, scheduled_warming_to_proto
from hotspot_core.alerts import Alert, AlertState
from hotspot_core.errors import InvalidArgument
from hotspot_core.grants import Grant, Outcome
from hotspot_core.stats import FixtureStats, StatsSnapshot

# OUTCOME_UNSPECIFIED is read as success.
_OUTCOMES = {v: k for k, v in OUTCOME_TO_PROTO.items()} | {pb.OUTCOME_UNSPECIFIED: Outcome.SUCCESS}
_ALERT_STATES = {
    AlertState.RAISED: pb.ALERT_STATE_RAISED,
    AlertState.CLEARED: pb.ALERT_STATE_CLEARED,
}


def outcome_from_proto(value: int) -> Outcome:
    try:
        return _OUTCOMES[value]  # type: ignore[index]
    except KeyError:
        names = ", ".join(pb.Outcome.Name(v) for v in pb.Outcome.values())
        raise InvalidArgument(
            f"outcome must be one of {names}; got {value}", field="outcome"
        ) from None


def grant_to_proto(grant: Grant) -> pb.AcquireResponse:
    response = pb.AcquireResponse()
    set_grant(response, grant)
    return response


def set_grant(target: pb.AcquireResponse, grant: Grant) -> None:
    """Fill an empty AcquireResponse in place (a stream's answer: no copy into its result)."""
    target.permit_id = grant.permit_id
    target.fixture_id = grant.fixture_id
    target.queue_position = grant.queue_position
    target.remaining = grant.remaining
    set_timestamp(target.granted_at, grant.granted_at)
    set_duration(target.waited, grant.waited)
    set_timestamp(target.lease_expires_at, grant.lease_expires_at)


def alert_to_proto(alert: Alert) -> pb.Alert:
    return pb.Alert(
        fixture_id=alert.fixture_id,
        state=_ALERT_STATES[alert.state],
        calls_in_window=alert.calls_in_window,
        threshold=alert.threshold,
        clear_below=alert.clear_below,
        at=to_timestamp(alert.at),
    )


def fixture_stats_to_proto(row: FixtureStats) -> pb.FixtureStats:
    message = pb.FixtureStats(
        fixture_id=row.fixture_id,
        calls_in_window=row.calls_in_window,
        calls_total=row.calls_total,
        queue_depth=row.queue_depth,
        queue_capacity=row.queue_capacity,
        rejected_total=row.rejected_total,
        in_flight=row.in_flight,
        limit=row.limit,
        window=to_duration(row.window),
        utilization=row.utilization,
        hot=row.hot,
        abandoned_total=row.abandoned_total,
        expected_hold=to_duration(row.expected_hold),
        warming=row.warming,
    )
    if row.paused_until is not None:
        message.paused_until.CopyFrom(to_timestamp(row.paused_until))
    return message


def snapshot_to_proto(snapshot: StatsSnapshot) -> pb.StatsResponse:
    totals = snapshot.totals
    return pb.StatsResponse(
        generated_at=to_timestamp(snapshot.generated_at),
        fixtures=[fixture_stats_to_proto(row) for row in snapshot.fixtures],
        totals=pb.Totals(
            fixtures_tracked=totals.fixtures_tracked,
            calls_total=totals.calls_total,
            rejected_total=totals.rejected_total,
            queue_depth=totals.queue_depth,
            in_flight=totals.in_flight,
            abandoned_total=totals.abandoned_total,
        ),
        alerts=[alert_to_proto(a) for a in snapshot.alerts],
        alert_events=[alert_to_proto(a) for a in snapshot.alert_events],
        scheduled_warmings=[scheduled_warming_to_proto(w) for w in snapshot.scheduled_warmings],
    )
