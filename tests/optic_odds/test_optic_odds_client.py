"""OpticOddsClient against the fake Optic Odds and a permit server, both real on loopback."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from hotspot_client import RateLimitExceeded
from hotspot_client.optic_odds import (
    FixtureOdds,
    OpticOddsRequestInvalid,
    UpstreamBadResponse,
    UpstreamHTTPError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnauthorized,
    UpstreamUnreachable,
)
from tests.optic_odds.conftest import MakeRig, Rig


async def fault(rig: Rig, **script: object) -> None:
    async with httpx.AsyncClient(base_url=rig.upstream.base_url) as http:
        (await http.post("/_fake/fault", json=script)).raise_for_status()


async def test_fixture_odds_are_typed_and_each_fixture_holds_one_permit(make_rig: MakeRig) -> None:
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        rig = await make_rig(http=http)
        response = await rig.odds.fixture_odds(
            ["F-1", "F-2"], ["DraftKings", "Pinnacle"], ["Moneyline", "Total Points", "Alt +1.5"]
        )

    assert [f.id for f in response.data] == ["F-1", "F-2"]
    fixture = response.data[0]
    assert isinstance(fixture, FixtureOdds)
    assert fixture.start_date is not None
    assert fixture.start_date.tzinfo is not None
    assert fixture.sport is not None
    assert fixture.home_competitors[0].name == fixture.home_team_display
    assert {o.sportsbook for o in fixture.odds} == {"DraftKings", "Pinnacle"}
    assert {o.market for o in fixture.odds} == {"Moneyline", "Total Points"}
    assert all(isinstance(o.price, float) for o in fixture.odds)
    # Several values are repeated keys; the key travels in the header.
    url = str(sent[0].url)
    assert "fixture_id=F-1&fixture_id=F-2" in url
    assert "sportsbook=DraftKings&sportsbook=Pinnacle" in url
    assert "market=Alt+%2B1.5" in url  # a literal + must be %2B, or it reads as a space
    assert sent[0].headers["x-api-key"] == "unit-key"
    # One permit per fixture, released as SUCCESS: in the window, no longer in flight.
    assert [p.fixture_id for p in response.permits] == ["F-1", "F-2"]
    for fixture_id in ("F-1", "F-2"):
        row = await rig.permit_stats(fixture_id)
        assert (row.calls_in_window, row.in_flight) == (1, 0)
        assert rig.tally(fixture_id)["served"] == 1


async def test_historical_odds_results_and_fixtures(make_rig: MakeRig) -> None:
    rig = await make_rig()
    historical = await rig.odds.historical_odds(
        "F-H", "FanDuel", "Moneyline", include_timeseries=True
    )
    odd = historical.data[0].odds[0]
    assert odd.market == "Moneyline"
    assert len(odd.extra["entries"]) == 3  # a field this client does not model, kept

    results = await rig.odds.fixture_results([f"R-{i}" for i in range(50)])
    assert len(results.data) == 50
    assert results.data[0].status == "completed"
    assert results.data[0].result is not None
    assert "scores" in results.data[0].result
    assert (await rig.permit_stats("R-49")).calls_in_window == 1

    listed = await rig.odds.fixtures(league="nba")
    assert listed.page == 1
    assert listed.has_more is False
    assert all(f.league is not None and f.league.id == "nba" for f in listed.data)
    assert await rig.grants_total() == 1 + 50  # /fixtures took no permit


@pytest.mark.parametrize(
    ("call", "rule"),
    [
        (
            lambda c: c.fixture_odds([f"F{i}" for i in range(6)], "Pinnacle"),
            "maximum 5 fixture_ids",
        ),
        (lambda c: c.fixture_odds("F", [f"B{i}" for i in range(6)]), "maximum 5 sportsbooks"),
        (lambda c: c.fixture_odds("F", []), "sportsbook is required"),
        (lambda c: c.fixture_odds([], "Pinnacle"), "fixture_id is required"),
        (lambda c: c.fixture_odds("bad id!", "Pinnacle"), "1 to 128 characters"),
        (lambda c: c.fixture_results([f"F{i}" for i in range(51)]), "maximum 50 fixture_ids"),
        (
            lambda c: c.historical_odds("F", "Pinnacle", include_timeseries=True),
            "market is required",
        ),
    ],
)
async def test_broken_rules_are_refused_before_any_permit(
    make_rig: MakeRig, call: object, rule: str
) -> None:
    rig = await make_rig()
    with pytest.raises(OpticOddsRequestInvalid, match=rule):
        await call(rig.odds)  # type: ignore[operator]
    assert await rig.grants_total() == 0
    assert rig.upstream.fake.limit.stats()["totals"]["calls"] == 0


async def test_a_refusal_releases_the_permits_already_granted(make_rig: MakeRig) -> None:
    rig = await make_rig(limit=1)
    await rig.odds.fixture_odds("busy", "Pinnacle")

    with pytest.raises(RateLimitExceeded) as refused:
        await rig.odds.fixture_odds(["free", "busy"], "Pinnacle", max_wait=0)

    assert refused.value.fixture_id == "busy"
    assert refused.value.reason == "WAIT_TOO_LONG"
    free = await rig.permit_stats("free")
    assert (free.calls_in_window, free.in_flight) == (0, 0)
    assert await rig.grants_total() == 2  # "free" was granted, then refunded as NOT_SENT
    assert rig.tally("free")["calls"] == 0


async def test_an_upstream_429_pauses_the_fixture_for_its_retry_after(make_rig: MakeRig) -> None:
    rig = await make_rig(limit=10, upstream_limit=1, upstream_window=30)
    await rig.odds.fixture_odds("hot", "Pinnacle")

    before = time.time()
    with pytest.raises(UpstreamRateLimited) as limited:
        await rig.odds.fixture_odds("hot", "Pinnacle")
    after = time.time()

    assert limited.value.status_code == 429
    assert limited.value.fixture_ids == ("hot",)
    assert limited.value.retry_after == 30  # the fake's Retry-After: whole seconds
    row = await rig.permit_stats("hot")
    assert row.in_flight == 0
    assert row.paused_until is not None
    assert before + 30 <= row.paused_until <= after + 30


async def test_a_bad_key_is_a_typed_error_and_a_failure(make_rig: MakeRig) -> None:
    rig = await make_rig(api_key="wrong")
    with pytest.raises(UpstreamUnauthorized, match="Invalid or inactive API key") as denied:
        await rig.odds.fixture_odds("F", "Pinnacle")
    assert denied.value.status_code == 401
    row = await rig.permit_stats("F")
    assert (row.calls_in_window, row.in_flight) == (1, 0)  # sent, so it counts


@pytest.mark.parametrize(
    ("script", "error", "text"),
    [
        ({"status": 503, "body": '{"error": "maintenance"}'}, UpstreamHTTPError, "maintenance"),
        ({"status": 200, "body": "<html>"}, UpstreamBadResponse, "not JSON"),
        ({"status": 200, "body": '{"data": {}}'}, UpstreamBadResponse, "body.data must be a list"),
        (
            {"status": 200, "body": '{"data": [{"id": "F", "odds": [{"price": 1}]}]}'},
            UpstreamBadResponse,
            r"body.data\[0\].odds\[0\].id is required",
        ),
        ({"status": 200, "body": '{"data": []}', "delay": 1}, UpstreamTimeout, "in time"),
    ],
)
async def test_upstream_failures_are_typed_errors_and_failures(
    make_rig: MakeRig, script: dict[str, object], error: type[Exception], text: str
) -> None:
    rig = await make_rig(timeout=0.3)
    await fault(rig, **script)
    with pytest.raises(error, match=text):
        await rig.odds.fixture_odds("F", "Pinnacle")
    row = await rig.permit_stats("F")
    assert (row.calls_in_window, row.in_flight) == (1, 0)


async def test_an_unreachable_upstream_refunds_the_permit(make_rig: MakeRig) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    rig = await make_rig(base_url=closed)
    with pytest.raises(UpstreamUnreachable):
        await rig.odds.fixture_odds("F", "Pinnacle")
    row = await rig.permit_stats("F")
    assert (row.calls_in_window, row.in_flight) == (0, 0)  # never sent: NOT_SENT
