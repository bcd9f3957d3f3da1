"""Core values -> JSON, for the HTTP endpoints and the alert webhook (one mapping for both)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hotspot_core.alerts import Alert
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import FixtureStats, StatsSnapshot
from hotspot_core.warming_board import ScheduledWarming

JsonObject = dict[str, Any]


def iso_time(unix_seconds: float) -> str:
    """RFC 3339 in UTC with milliseconds: 2026-11-26T22:25:39.006Z."""
    moment = datetime.fromtimestamp(unix_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_to_json(alert: Alert) -> JsonObject:
    return {
        "fixture_id": alert.fixture_id,
        "state": alert.state.value,
        "calls_in_window": alert.calls_in_window,
        "threshold": alert.threshold,
        "clear_below": alert.clear_below,
        "at": iso_time(alert.at),
    }


def fixture_stats_to_json(row: FixtureStats) -> JsonObject:
    return {
        "fixture_id": row.fixture_id,
        "calls_in_window": row.calls_in_window,
        "calls_total": row.calls_total,
        "queue_depth": row.queue_depth,
        "queue_capacity": row.queue_capacity,
        "rejected_total": row.rejected_total,
        "in_flight": row.in_flight,
        "limit": row.limit,
        "window_seconds": row.window,
        "utilization": row.utilization,
        "hot": row.hot,
        "paused_until": None if row.paused_until is None else iso_time(row.paused_until),
        "abandoned_total": row.abandoned_total,
        "expected_hold_seconds": row.expected_hold,
        "warming": row.warming,
    }


def scheduled_warming_to_json(warming: ScheduledWarming, now: float) -> JsonObject:
    return {
        "fixture_id": warming.fixture_id,
        "rule": warming.rule,
        "state": warming.state(now),
        "starts_at": iso_time(warming.starts_at),
        "kickoff": iso_time(warming.kickoff),
        "ends_at": iso_time(warming.ends_at),
    }


def policy_to_json(policy: PermitPolicy) -> JsonObject:
    return {
        "limit": policy.limit,
        "window_seconds": policy.window,
        "queue_capacity": policy.queue,
        "alert_threshold": policy.raise_at,
        "clear_below": policy.clear_below,
    }


def snapshot_to_json(snapshot: StatsSnapshot, policy: PermitPolicy) -> JsonObject:
    totals = snapshot.totals
    return {
        "generated_at": iso_time(snapshot.generated_at),
        "policy": policy_to_json(policy),
        "fixtures": [fixture_stats_to_json(row) for row in snapshot.fixtures],
        "totals": {
            "fixtures_tracked": totals.fixtures_tracked,
            "calls_total": totals.calls_total,
            "rejected_total": totals.rejected_total,
            "queue_depth": totals.queue_depth,
            "in_flight": totals.in_flight,
            "abandoned_total": totals.abandoned_total,
        },
        "alerts": [alert_to_json(alert) for alert in snapshot.alerts],
        "alert_events": [alert_to_json(alert) for alert in snapshot.alert_events],
        "scheduled_warmings": [
            scheduled_warming_to_json(warming, snapshot.generated_at)
            for warming in snapshot.scheduled_warmings
        ],
    }
