"""The fake Optic Odds v3 as a Starlette app: the endpoints, their checks and their errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fake_optic_odds import catalogue
from fake_optic_odds.limits import FixtureCallLimit, Verdict
from hotspot_core.errors import whole_seconds

MAX_ODDS_FIXTURES = 5
MAX_SPORTSBOOKS = 5
MAX_RESULT_FIXTURES = 50
PAGE_SIZE = 100
ODDS_FORMATS = ("AMERICAN", "DECIMAL", "PROBABILITY")

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class FakeSettings:
    api_key: str = "fake-optic-odds-key"
    limit: int = 50
    """Calls per sliding window per fixture on the fixture-specific endpoints."""
    window: float = 60.0
    latency: float = 0.0
    """Seconds every data call takes to answer after it arrived (and was counted)."""
    fixtures: list[dict[str, Any]] = field(default_factory=list)
    """Fixtures to list from the start, as POST /_fake/fixtures takes them."""


@dataclass
class Fault:
    """A scripted failure for the next `times` data calls: tests of how clients cope."""

    status: int = 500
    body: str = '{"error": "internal server error"}'
    delay: float = 0.0
    """Seconds before answering (a client with a shorter timeout sees a timeout)."""
    times: int = 1


class UpstreamError(Exception):
    """An answer in the upstream's error format: {"error": message}."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _rate_limit_headers(limit: int, verdict: Verdict) -> dict[str, str]:
    headers = {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(verdict.remaining),
        "x-ratelimit-reset": str(whole_seconds(verdict.reset_at)),
    }
    if not verdict.allowed:
        headers["Retry-After"] = str(whole_seconds(verdict.retry_after))
    return headers


def _values(request: Request, key: str, *, at_most: int, required: bool = True) -> list[str]:
    values = list(dict.fromkeys(request.query_params.getlist(key)))
    if required and not values:
        raise UpstreamError(400, f"{key} is required")
    if len(values) > at_most:
        noun = "sportsbooks" if key == "sportsbook" else f"{key}s"
        raise UpstreamError(400, f"maximum {at_most} {noun} allowed")
    return values


def _flag(request: Request, key: str) -> bool | None:
    raw = request.query_params.get(key)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise UpstreamError(400, f"{key} must be true or false")
    return raw.lower() == "true"


def _known_ids(table: dict[str, str], names: list[str]) -> list[str]:
    return [i for i in (catalogue.known_id(table, n) for n in names) if i is not None]


def _priced(odd: dict[str, Any], odds_format: str) -> dict[str, Any]:
    american = odd["price"]
    decimal = 1 + (american / 100 if american > 0 else 100 / -american)
    if odds_format == "DECIMAL":
        return {**odd, "price": round(decimal, 3)}
    if odds_format == "PROBABILITY":
        return {**odd, "price": round(1 / decimal, 4)}
    return odd


class FakeOpticOdds:
    """The endpoints, sharing one per-fixture limit and tally."""

    def __init__(self, settings: FakeSettings) -> None:
        self.settings = settings
        self.limit = FixtureCallLimit(settings.limit, settings.window)
        self.unauthorized = 0
        self.faults: list[Fault] = []
        self.listed: dict[str, dict[str, Any]] = {}
        """Fixtures a test put in the listing (POST /_fake/fixtures), by id, in order."""
        self._list(settings.fixtures)

    def endpoint(self, handler: Endpoint) -> Endpoint:
        """A data endpoint: the key is checked first, then any scripted fault answers."""

        async def serve(request: Request) -> Response:
            self._authorize(request)
            if self.faults:
                fault = self.faults[0]
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.pop(0)
                await asyncio.sleep(fault.delay)
                return Response(fault.body, fault.status, media_type="application/json")
            response = await handler(request)  # counted on arrival, as the real upstream does
            if self.settings.latency:
                await asyncio.sleep(self.settings.latency)
            return response

        return serve

    def _authorize(self, request: Request) -> None:
        key = request.headers.get("x-api-key") or request.query_params.get("key")
        if not key:
            self.unauthorized += 1
            raise UpstreamError(401, "API key is required")
        if key != self.settings.api_key:
            self.unauthorized += 1
            raise UpstreamError(401, "Invalid or inactive API key")

    def _admit(self, fixture_ids: list[str]) -> dict[str, str]:
        verdict = self.limit.admit(fixture_ids)
        headers = _rate_limit_headers(self.settings.limit, verdict)
        if not verdict.allowed:
            raise UpstreamError(429, "rate limit exceeded", headers)
        return headers

    def _odds_query(self, request: Request) -> tuple[list[str], list[str], str]:
        books = _values(request, "sportsbook", at_most=MAX_SPORTSBOOKS)
        # Unknown sportsbooks and markets are dropped silently, as upstream does.
        book_ids = _known_ids(catalogue.SPORTSBOOKS, books)
        markets = request.query_params.getlist("market")
        market_ids = _known_ids(catalogue.MARKETS, markets) if markets else list(catalogue.MARKETS)
        odds_format = request.query_params.get("odds_format", "AMERICAN").upper()
        if odds_format not in ODDS_FORMATS:
            raise UpstreamError(400, f"odds_format must be one of {', '.join(ODDS_FORMATS)}")
        return book_ids, market_ids, odds_format

    def _fixture_with_odds(
        self, fixture_id: str, book_ids: list[str], market_ids: list[str], odds_format: str
    ) -> dict[str, Any]:
        fx = self._fixture(fixture_id)
        odds = [_priced(o, odds_format) for o in catalogue.odds(fx, book_ids, market_ids)]
        return {**fx, "odds": odds}

    async def fixture_odds(self, request: Request) -> Response:
        fixture_ids = _values(request, "fixture_id", at_most=MAX_ODDS_FIXTURES, required=False)
        others = request.query_params.get("player_id") or request.query_params.get("team_id")
        book_ids, market_ids, odds_format = self._odds_query(request)
        if not fixture_ids and not others:
            raise UpstreamError(
                400, "you must provide at least one of fixture_id, player_id, or team_id"
            )
        headers = self._admit(fixture_ids)
        data = [self._fixture_with_odds(f, book_ids, market_ids, odds_format) for f in fixture_ids]
        return JSONResponse({"data": data}, headers=headers)

    async def historical_odds(self, request: Request) -> Response:
        fixture_ids = _values(request, "fixture_id", at_most=1)
        book_ids, market_ids, odds_format = self._odds_query(request)
        timeseries = _flag(request, "include_timeseries")
        if timeseries and not request.query_params.get("market"):
            raise UpstreamError(400, "market is required when include_timeseries is true")
        headers = self._admit(fixture_ids)
        fx = self._fixture_with_odds(fixture_ids[0], book_ids, market_ids, odds_format)
        if timeseries:
            for odd in fx["odds"]:
                odd["entries"] = [
                    {"timestamp": odd["timestamp"] - 3600 * back, "price": odd["price"]}
                    for back in (2, 1, 0)
                ]
        return JSONResponse({"data": [fx]}, headers=headers)

    async def fixture_results(self, request: Request) -> Response:
        fixture_ids = _values(request, "fixture_id", at_most=MAX_RESULT_FIXTURES)
        headers = self._admit(fixture_ids)
        data = [catalogue.result(self._fixture(f)) for f in fixture_ids]
        return JSONResponse({"data": data}, headers=headers)

    def _fixture(self, fixture_id: str) -> dict[str, Any]:
        """A listed fixture as the test set it, else the one derived from its id."""
        return self.listed.get(fixture_id) or catalogue.fixture(fixture_id)

    def _list(self, fixtures: list[dict[str, Any]]) -> None:
        """Put fixtures in the listing, each over what its id derives (fields not given)."""
        for given in fixtures:
            if not isinstance(given, dict) or not isinstance(given.get("id"), str):
                raise UpstreamError(400, "each fixture needs a string id")
            start = given.get("start_date")
            if start is not None:
                try:
                    datetime.fromisoformat(start)
                except (TypeError, ValueError):
                    raise UpstreamError(400, f"start_date is not ISO 8601: {start!r}") from None
            base = self.listed.get(given["id"]) or catalogue.fixture(given["id"])
            fixture = {**base, **given}
            fixture["is_live"] = fixture["status"] in catalogue.LIVE_STATUSES
            self.listed[given["id"]] = fixture

    async def fixtures(self, request: Request) -> Response:
        """Not fixture-specific: no per-fixture limit applies."""
        query = request.query_params
        default_ids = list(self.listed) or list(catalogue.SEEDED_FIXTURE_IDS)
        rows = [self._fixture(f) for f in query.getlist("id") or default_ids]
        if request.url.path.endswith("/active"):
            rows = [r for r in rows if r["status"] not in catalogue.FINAL_STATUSES]
        for key in ("start_date_after", "start_date_before"):
            if key in query:
                try:
                    bound = datetime.fromisoformat(query[key])
                except ValueError:
                    raise UpstreamError(400, f"{key} must be an ISO 8601 time") from None
                if key == "start_date_after":
                    rows = [r for r in rows if _start(r) >= bound]
                else:
                    rows = [r for r in rows if _start(r) <= bound]
        for key in ("sport", "league"):
            if key in query:
                rows = [r for r in rows if r[key]["id"] == query[key]]
        if "status" in query:
            rows = [r for r in rows if r["status"] == query["status"]]
        is_live = _flag(request, "is_live")
        if is_live is not None:
            rows = [r for r in rows if r["is_live"] is is_live]
        page_text = query.get("page", "1")
        if not page_text.isdigit() or int(page_text) < 1:
            raise UpstreamError(400, "page must be a positive integer")
        page = int(page_text)
        chunk = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return JSONResponse({"data": chunk, "page": page, "has_more": page * PAGE_SIZE < len(rows)})

    async def stats(self, request: Request) -> Response:
        """Test hook: every call and violation per fixture."""
        body = self.limit.stats()
        body["totals"]["unauthorized"] = self.unauthorized
        return JSONResponse(body)

    async def reset(self, request: Request) -> Response:
        self.limit.reset()
        self.unauthorized = 0
        self.faults.clear()
        self.listed.clear()
        return Response(status_code=204)

    async def set_fixtures(self, request: Request) -> Response:
        """Test hook: POST a list of fixtures (each with an `id`; other fields as in /fixtures)
        to list them, or change them (a reschedule, a status); DELETE empties the listing."""
        if request.method == "DELETE":
            self.listed.clear()
            return Response(status_code=204)
        try:
            body = await request.json()
        except ValueError:
            raise UpstreamError(400, "not JSON") from None
        if not isinstance(body, list):
            raise UpstreamError(400, "expected a list of fixtures")
        self._list(body)
        return JSONResponse({"data": list(self.listed.values())})

    async def add_fault(self, request: Request) -> Response:
        """Test hook: POST {"status", "body", "delay", "times"} (all optional)."""
        try:
            fault = Fault(**await request.json())
        except (TypeError, ValueError) as error:
            raise UpstreamError(400, f"not a fault: {error}") from None
        self.faults.append(fault)
        return Response(status_code=204)


def _start(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["start_date"])


def create_app(settings: FakeSettings | None = None) -> Starlette:
    fake = FakeOpticOdds(settings or FakeSettings())

    async def upstream_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, UpstreamError)
        return error_response(error.status, str(error), error.headers)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return error_response(error.status_code, error.detail)

    app = Starlette(
        routes=[
            Route("/fixtures", fake.endpoint(fake.fixtures)),
            Route("/fixtures/active", fake.endpoint(fake.fixtures)),
            Route("/fixtures/odds", fake.endpoint(fake.fixture_odds)),
            Route("/fixtures/odds/historical", fake.endpoint(fake.historical_odds)),
            Route("/fixtures/results", fake.endpoint(fake.fixture_results)),
            Route("/_fake/stats", fake.stats),
            Route("/_fake/reset", fake.reset, methods=["POST"]),
            Route("/_fake/fault", fake.add_fault, methods=["POST"]),
            Route("/_fake/fixtures", fake.set_fixtures, methods=["POST", "DELETE"]),
        ],
        exception_handlers={UpstreamError: upstream_error, HTTPException: http_error},
    )
    app.state.fake = fake
    return app
