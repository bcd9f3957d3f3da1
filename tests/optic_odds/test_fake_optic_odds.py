"""The fake Optic Odds: its answers, its errors, and its own per-fixture sliding window."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from fake_optic_odds.app import FakeSettings
from fake_optic_odds.limits import FixtureCallLimit
from fake_optic_odds.server import FakeOpticOddsServer

KEY = "fake-test-key"


@pytest.fixture
async def upstream() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        FakeOpticOddsServer(FakeSettings(api_key=KEY, limit=2, window=30)) as server,
        httpx.AsyncClient(base_url=server.base_url, headers={"X-Api-Key": KEY}) as http,
    ):
        yield http


async def test_the_key_is_checked_with_the_documented_401_bodies(
    upstream: httpx.AsyncClient,
) -> None:
    params = {"fixture_id": "F", "sportsbook": "Pinnacle"}
    missing = await upstream.get("/fixtures/odds", params=params, headers={"X-Api-Key": ""})
    wrong = await upstream.get("/fixtures/odds", params=params, headers={"X-Api-Key": "nope"})
    in_query = await upstream.get(
        "/fixtures/odds", params={**params, "key": KEY}, headers={"X-Api-Key": ""}
    )
    assert (missing.status_code, missing.json()) == (401, {"error": "API key is required"})
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid or inactive API key"})
    assert in_query.status_code == 200
    stats = (await upstream.get("/_fake/stats")).json()
    assert stats["totals"]["unauthorized"] == 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fixture_id": "F"}, "sportsbook is required"),
        (
            {"fixture_id": "F", "sportsbook": [f"B{i}" for i in range(6)]},
            "maximum 5 sportsbooks allowed",
        ),
        (
            {"sportsbook": "Pinnacle"},
            "you must provide at least one of fixture_id, player_id, or team_id",
        ),
        ({"fixture_id": [f"F{i}" for i in range(6)], "sportsbook": "a"}, "maximum 5 fixture_ids"),
        ({"fixture_id": "F", "sportsbook": "a", "odds_format": "ROMAN"}, "odds_format must be"),
    ],
)
async def test_bad_odds_queries_get_the_upstream_messages(
    upstream: httpx.AsyncClient, params: dict[str, object], message: str
) -> None:
    answer = await upstream.get("/fixtures/odds", params=params)  # type: ignore[arg-type]
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(message)


async def test_odds_are_shaped_like_v3_and_unknown_sportsbooks_are_dropped(
    upstream: httpx.AsyncClient,
) -> None:
    answer = await upstream.get(
        "/fixtures/odds",
        params={"fixture_id": ["A", "B"], "sportsbook": ["draftkings", "NoSuchBook"]},
    )
    data = answer.json()["data"]
    assert [f["id"] for f in data] == ["A", "B"]
    odd = data[0]["odds"][0]
    assert odd["sportsbook"] == "DraftKings"
    assert {"market", "market_id", "selection", "price", "timestamp", "is_main"} <= set(odd)
    assert data[0]["start_date"].endswith("Z")
    only_unknown = await upstream.get(
        "/fixtures/odds", params={"fixture_id": "A", "sportsbook": "NoSuchBook"}
    )
    assert only_unknown.json()["data"][0]["odds"] == []


async def test_past_its_limit_a_fixture_gets_429_and_the_tally_counts_it(
    upstream: httpx.AsyncClient,
) -> None:
    params = {"fixture_id": "hot", "sportsbook": "Pinnacle"}
    first = await upstream.get("/fixtures/odds", params=params)
    second = await upstream.get("/fixtures/odds", params=params)
    third = await upstream.get("/fixtures/odds", params=params)
    other = await upstream.get("/fixtures/results", params={"fixture_id": "calm"})

    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
    assert [first.headers["x-ratelimit-remaining"], second.headers["x-ratelimit-remaining"]] == [
        "1",
        "0",
    ]
    assert third.json() == {"error": "rate limit exceeded"}
    assert third.headers["retry-after"] == "30"
    assert third.headers["x-ratelimit-limit"] == "2"
    assert 0 < int(third.headers["x-ratelimit-reset"]) - time.time() <= 31
    assert other.status_code == 200
    stats = (await upstream.get("/_fake/stats")).json()
    hot = stats["fixtures"]["hot"]
    assert (hot["calls"], hot["violations"], hot["served"]) == (3, 1, 2)
    assert len(hot["served_at"]) == 2
    assert stats["fixtures"]["calm"]["served"] == 1

    assert (await upstream.post("/_fake/reset")).status_code == 204
    assert (await upstream.get("/_fake/stats")).json()["fixtures"] == {}
    assert (await upstream.get("/fixtures/odds", params=params)).status_code == 200


async def test_fixtures_list_is_paged_and_filtered(upstream: httpx.AsyncClient) -> None:
    everything = (await upstream.get("/fixtures")).json()
    assert everything["page"] == 1
    assert everything["has_more"] is False
    league = everything["data"][0]["league"]["id"]
    filtered = (await upstream.get("/fixtures", params={"league": league})).json()["data"]
    assert filtered
    assert all(f["league"]["id"] == league for f in filtered)
    assert (await upstream.get("/fixtures", params={"page": "0"})).status_code == 400


def test_the_window_slides() -> None:
    now = [0.0]
    limit = FixtureCallLimit(2, 10.0, monotonic=lambda: now[0], wall=lambda: 1000 + now[0])
    assert limit.admit(["F"]).allowed
    now[0] = 6.0
    assert limit.admit(["F"]).allowed
    now[0] = 9.0
    refused = limit.admit(["F"])
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(1.0)  # the call at 0 leaves at 10
    now[0] = 10.0
    assert limit.admit(["F"]).allowed  # not a fixed window: the call at 6 still counts...
    now[0] = 15.0
    assert not limit.admit(["F"]).allowed  # ...until 16
    assert limit.stats()["fixtures"]["F"]["violations"] == 2


def test_a_call_naming_a_full_fixture_is_refused_whole() -> None:
    limit = FixtureCallLimit(1, 10.0, monotonic=lambda: 0.0)
    limit.admit(["full"])
    assert not limit.admit(["free", "full"]).allowed
    fixtures = limit.stats()["fixtures"]
    assert (fixtures["free"]["served"], fixtures["free"]["violations"]) == (0, 0)
    assert fixtures["full"]["violations"] == 1


def test_the_console_script_names_a_bad_flag() -> None:
    script = [sys.executable, "-m", "fake_optic_odds", "--listen", "127.0.0.1:0"]
    result = subprocess.run(
        [*script, "--limit", "0"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert "limit must be at least 1" in result.stderr
