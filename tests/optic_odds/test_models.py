"""Typed Optic Odds objects, the 429 delay read from headers, and the gateway's settings."""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

import pytest

from examples.odds_gateway.settings import GatewaySettings
from fake_optic_odds import catalogue
from hotspot_client.optic_odds import Fixture, FixtureOdds
from hotspot_client.optic_odds.models import ResponseShapeError, parse_envelope
from hotspot_client.optic_odds.retry_after import upstream_retry_after


def odds_json() -> dict[str, Any]:
    fixture = catalogue.fixture("20260831B2BB37AB")
    return {
        **fixture,
        "odds": catalogue.odds(fixture, ["pinnacle"], ["total_points"]),
        "venue": {"name": "Arena"},  # a field this client does not model
    }


def test_unknown_fields_are_kept_and_the_object_round_trips() -> None:
    raw = odds_json()
    raw["odds"][0]["rotation_number"] = 301
    parsed = FixtureOdds.from_json(raw)
    assert parsed.extra == {"venue": {"name": "Arena"}}
    assert parsed.odds[0].extra == {"rotation_number": 301}
    assert parsed.odds[0].points is not None
    assert parsed.to_json() == {**raw, "result": None}  # a known field, absent: null


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": None}, r"fixture\.id is required"),
        ({"is_live": "no"}, r"fixture\.is_live must be true or false"),
        ({"numerical_id": True}, r"fixture\.numerical_id must be an integer"),
        ({"start_date": "tomorrow"}, r"fixture\.start_date must be an ISO 8601 time"),
        ({"odds": [{"id": "x", "price": "-110"}]}, r"fixture\.odds\[0\]\.price must be a number"),
        ({"home_competitors": {}}, r"fixture\.home_competitors must be a list"),
    ],
)
def test_a_field_of_the_wrong_type_is_named(change: dict[str, object], message: str) -> None:
    with pytest.raises(ResponseShapeError, match=message):
        FixtureOdds.from_json({**odds_json(), **change})


def test_the_envelope_keeps_paging_and_unknown_fields() -> None:
    body = {"data": [catalogue.fixture("F")], "page": 2, "has_more": True, "total": 250}
    page = parse_envelope(body, Fixture.from_json, ())
    assert (page.page, page.has_more, page.extra) == (2, True, {"total": 250})
    with pytest.raises(ResponseShapeError, match="body must be an object"):
        parse_envelope([], Fixture.from_json, ())


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "15"}, 15.0),
        ({"retry-after": "2.5", "x-ratelimit-reset": str(int(NOW) + 60)}, 2.5),
        ({"retry-after": formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"x-ratelimit-reset": str(int(NOW) + 12)}, 12.0),
        ({"retry-after": "soon", "x-ratelimit-reset": str(int(NOW) + 9)}, 9.0),
        ({"x-ratelimit-reset": str(int(NOW) - 5)}, 0.0),
        ({}, None),
    ],
)
def test_a_429_delay_is_retry_after_then_the_reset_time(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert upstream_retry_after(headers, NOW) == seconds


def test_gateway_settings_come_from_the_environment_with_clear_errors() -> None:
    settings = GatewaySettings.from_env(
        {
            "OPTIC_ODDS_API_KEY": "k",
            "HOTSPOT_MAX_WAIT": "500ms",
            "HOTSPOT_FAIL_OPEN": "yes",
            "FALLBACK_LIMIT": "7",
        }
    )
    assert (settings.hotspot_max_wait, settings.hotspot_fail_open) == (0.5, True)
    assert settings.fallback_limit == 7
    assert settings.hotspot_target == "127.0.0.1:50051"
    with pytest.raises(ValueError, match="OPTIC_ODDS_API_KEY must be set"):
        GatewaySettings.from_env({})
    with pytest.raises(ValueError, match="HOTSPOT_MAX_WAIT: not a duration"):
        GatewaySettings.from_env({"OPTIC_ODDS_API_KEY": "k", "HOTSPOT_MAX_WAIT": "soon"})
    with pytest.raises(ValueError, match="HOTSPOT_FAIL_OPEN: not a yes/no value"):
        GatewaySettings.from_env({"OPTIC_ODDS_API_KEY": "k", "HOTSPOT_FAIL_OPEN": "maybe"})
