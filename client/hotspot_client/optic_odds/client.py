"""OpticOddsClient: the Optic Odds v3 API over httpx, every fixture-specific call under permits."""

from __future__ import annotations

import dataclasses
import enum
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal, Self, TypeVar

import httpx

from hotspot_client import Outcome, Permit, PermitClient
from hotspot_client.optic_odds import query
from hotspot_client.optic_odds.cache import Fetched, OddsCache, Served, cache_key
from hotspot_client.optic_odds.errors import (
    OpticOddsRequestInvalid,
    UpstreamBadResponse,
    UpstreamConnectionLost,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnauthorized,
    UpstreamUnreachable,
)
from hotspot_client.optic_odds.models import (
    Fixture,
    FixtureOdds,
    OpticOddsResponse,
    ResponseShapeError,
    parse_envelope,
)
from hotspot_client.optic_odds.permit_batch import acquire_each, release_each
from hotspot_client.optic_odds.retry_after import upstream_retry_after

DEFAULT_BASE_URL = "https://api.opticodds.com/api/v3"
DEFAULT_TIMEOUT = 10.0

T = TypeVar("T")


class _Default(enum.Enum):
    """The client's own max_wait, as distinct from None (no limit)."""

    MAX_WAIT = enum.auto()


MaxWait = float | None | Literal[_Default.MAX_WAIT]

# httpx's transport errors, most specific first, as this client's errors.
_TRANSPORT_ERRORS: list[tuple[tuple[type[Exception], ...], type[UpstreamError], str]] = [
    (
        (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout),
        UpstreamUnreachable,
        "could not connect to Optic Odds; the request was not sent",
    ),
    ((httpx.TimeoutException,), UpstreamTimeout, "Optic Odds did not answer in time"),
    ((httpx.TransportError,), UpstreamConnectionLost, "the connection to Optic Odds failed"),
]


class OpticOddsClient:
    """Optic Odds v3 for asyncio code, one permit per fixture per call.

    `fixture_odds`, `historical_odds` and `fixture_results` take a permit for every
    fixture they name from `permits` (a PermitClient) before sending anything;
    `fixtures` is not fixture-specific and takes none. After the call each permit
    is released with what happened: SUCCESS; FAILURE (an error status, a timeout,
    a bad body); NOT_SENT (no connection could be made); UPSTREAM_RATE_LIMITED
    with the upstream's Retry-After (else x-ratelimit-reset) on a 429, which
    pauses the fixture in the permit service.

    `max_wait`: seconds a call may wait for its permits (None: as long as the
    permit service allows); each call can override it. Permit refusals are the
    permit client's errors (RateLimitExceeded, PermitServiceUnavailable); upstream
    failures are UpstreamError subclasses; bad arguments OpticOddsRequestInvalid.
    `http`: an httpx.AsyncClient to send with (its own timeout applies, and it is
    left open on close); by default the client makes one with `timeout`.
    `cache`: an OddsCache the fixture-specific calls read through (left open on
    close): identical calls share one entry and one upstream call, and the answer
    says its `age` and whether it is `stale`; permits are taken only by the fetch.
    """

    def __init__(
        self,
        permits: PermitClient,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        max_wait: float | None = None,
        http: httpx.AsyncClient | None = None,
        cache: OddsCache | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty: Optic Odds answers 401 without one")
        self.permits = permits
        self.base_url = base_url
        self.max_wait = max_wait
        self.cache = cache
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._headers = {"X-Api-Key": api_key, "Accept": "application/json"}
        self._base = httpx.URL(base_url.rstrip("/") + "/")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP client this client made (not one it was given, nor the permits)."""
        if self._owns_http:
            await self._http.aclose()

    # -- Endpoints -------------------------------------------------------------------------

    async def fixture_odds(
        self,
        fixture_ids: str | Sequence[str],
        sportsbooks: str | Sequence[str],
        markets: str | Sequence[str] | None = None,
        *,
        is_main: bool | None = None,
        odds_format: str | None = None,
        max_wait: MaxWait = _Default.MAX_WAIT,
    ) -> OpticOddsResponse[FixtureOdds]:
        """GET /fixtures/odds: up to 5 fixtures and 1 to 5 sportsbooks."""
        ids = query.fixture_ids(fixture_ids, at_most=query.MAX_ODDS_FIXTURES)
        params = query.odds(ids, sportsbooks, markets) + query.optional(
            is_main=is_main, odds_format=odds_format
        )
        return await self._read("fixtures/odds", params, ids, FixtureOdds.from_json, max_wait)

    async def historical_odds(
        self,
        fixture_id: str,
        sportsbooks: str | Sequence[str],
        market: str | None = None,
        *,
        include_timeseries: bool | None = None,
        is_main: bool | None = None,
        max_wait: MaxWait = _Default.MAX_WAIT,
    ) -> OpticOddsResponse[FixtureOdds]:
        """GET /fixtures/odds/historical: exactly one fixture, 1 to 5 sportsbooks."""
        if not isinstance(fixture_id, str):
            raise OpticOddsRequestInvalid(
                "historical odds take exactly one fixture_id", field="fixture_id"
            )
        ids = query.fixture_ids(fixture_id, at_most=1)
        if include_timeseries and not market:
            raise OpticOddsRequestInvalid(
                "market is required with include_timeseries=true", field="market"
            )
        params = query.odds(ids, sportsbooks, market) + query.optional(
            include_timeseries=include_timeseries, is_main=is_main
        )
        return await self._read(
            "fixtures/odds/historical", params, ids, FixtureOdds.from_json, max_wait
        )

    async def fixture_results(
        self, fixture_ids: str | Sequence[str], *, max_wait: MaxWait = _Default.MAX_WAIT
    ) -> OpticOddsResponse[Fixture]:
        """GET /fixtures/results: up to 50 fixtures."""
        ids = query.fixture_ids(fixture_ids, at_most=query.MAX_RESULT_FIXTURES)
        params = query.repeated("fixture_id", ids)
        return await self._read("fixtures/results", params, ids, Fixture.from_json, max_wait)

    async def fixtures(
        self,
        *,
        sport: str | None = None,
        league: str | None = None,
        fixture_ids: str | Sequence[str] | None = None,
        status: str | None = None,
        is_live: bool | None = None,
        start_date_after: datetime | None = None,
        start_date_before: datetime | None = None,
        page: int | None = None,
    ) -> OpticOddsResponse[Fixture]:
        """GET /fixtures: not fixture-specific, so no permit is taken."""
        ids = [] if fixture_ids is None else query.fixture_ids(fixture_ids, at_most=None)
        params = query.repeated("id", ids) + query.optional(
            sport=sport,
            league=league,
            status=status,
            is_live=is_live,
            start_date_after=start_date_after,
            start_date_before=start_date_before,
            page=page,
        )
        response = await self._send("fixtures", params, ())
        return self._parse(response, "fixtures", (), Fixture.from_json, ())

    async def refresh_fixture_odds(
        self,
        fixture_ids: str | Sequence[str],
        sportsbooks: str | Sequence[str],
        markets: str | Sequence[str] | None = None,
        *,
        odds_format: str | None = None,
        max_wait: float | None = 0.0,
        unless_fresh: bool = True,
    ) -> Served | None:
        """Fetch GET /fixtures/odds into the cache now (the warmer's call); needs a cache.

        `max_wait` 0: take a permit only if one is free now, never queueing ahead of a
        user. None when nothing was fetched: the entry was fresh (`unless_fresh`), or
        another caller or replica was fetching it. Raises what the call raises.
        """
        if self.cache is None:
            raise ValueError("refresh_fixture_odds needs an OpticOddsClient with a cache")
        ids = query.fixture_ids(fixture_ids, at_most=query.MAX_ODDS_FIXTURES)
        params = query.odds(ids, sportsbooks, markets) + query.optional(odds_format=odds_format)
        path = "fixtures/odds"
        fetch = self._fetch_for_cache(
            self.cache, path, params, ids, FixtureOdds.from_json, max_wait
        )
        return await self.cache.refresh(
            cache_key(path, params), path, fetch, unless_fresh=unless_fresh
        )

    # -- Through the cache -----------------------------------------------------------------

    async def _read(
        self,
        path: str,
        params: query.Query,
        fixture_ids: list[str],
        parse: Callable[[object, str], T],
        max_wait: MaxWait,
    ) -> OpticOddsResponse[T]:
        if self.cache is None:
            result, _ = await self._under_permits(path, params, fixture_ids, parse, max_wait)
            return result
        fetch = self._fetch_for_cache(self.cache, path, params, fixture_ids, parse, max_wait)
        served = await self.cache.read(cache_key(path, params), path, fetch)
        return self._from_cache(served, path, fixture_ids, parse)

    def _fetch_for_cache(
        self,
        cache: OddsCache,
        path: str,
        params: query.Query,
        fixture_ids: list[str],
        parse: Callable[[object, str], T],
        max_wait: MaxWait,
    ) -> Callable[[], Awaitable[Fetched]]:
        async def fetch() -> Fetched:
            result, body = await self._under_permits(path, params, fixture_ids, parse, max_wait)
            fixtures = [f for f in result.data if isinstance(f, Fixture)]
            fetched_at = datetime.fromtimestamp(cache.now(), UTC)
            return Fetched(body, cache.freshness.choose(path, fixtures, fetched_at))

        return fetch

    def _from_cache(
        self,
        served: Served,
        path: str,
        fixture_ids: list[str],
        parse: Callable[[object, str], T],
    ) -> OpticOddsResponse[T]:
        # The body was checked when it was fetched; this parse cannot fail on its shape.
        result = self._parse_body(served.entry.body, path, fixture_ids, parse, ())
        # One entry serves the fixtures named in any order: answer in this caller's order.
        order = {f: i for i, f in enumerate(fixture_ids)}
        data = sorted(result.data, key=lambda d: order.get(getattr(d, "id", ""), len(order)))
        return dataclasses.replace(
            result,
            data=data,
            cached=True,
            age=served.age,
            stale=served.stale,
            fresh_for=served.entry.fresh_for,
        )

    # -- Under permits ---------------------------------------------------------------------

    async def _under_permits(
        self,
        path: str,
        params: query.Query,
        fixture_ids: list[str],
        parse: Callable[[object, str], T],
        max_wait: MaxWait,
    ) -> tuple[OpticOddsResponse[T], bytes]:
        """The call under one permit per fixture: its parsed answer and its body."""
        wait = self.max_wait if max_wait is _Default.MAX_WAIT else max_wait
        permits = await acquire_each(self.permits, fixture_ids, max_wait=wait)
        outcome, delay = Outcome.FAILURE, None
        try:
            response = await self._send(path, params, fixture_ids)
            result = self._parse(response, path, fixture_ids, parse, permits)
            outcome = Outcome.SUCCESS
            return result, response.content
        except UpstreamRateLimited as error:
            outcome, delay = Outcome.UPSTREAM_RATE_LIMITED, error.retry_after
            raise
        except UpstreamUnreachable:
            outcome = Outcome.NOT_SENT  # no connection, so the upstream never counted it
            raise
        finally:
            await release_each(self.permits, permits, outcome, delay)

    async def _send(
        self, path: str, params: query.Query, fixture_ids: Sequence[str]
    ) -> httpx.Response:
        url = self._base.join(path)
        try:
            response = await self._http.get(url, params=tuple(params), headers=self._headers)
        except httpx.TransportError as error:
            kind, what = next((k, w) for t, k, w in _TRANSPORT_ERRORS if isinstance(error, t))
            raise kind(
                f"{what} (GET /{path} at {self.base_url}): {error!r}",
                path=path,
                fixture_ids=fixture_ids,
            ) from error
        if response.is_success:
            return response
        raise _status_error(response, path, fixture_ids)

    def _parse(
        self,
        response: httpx.Response,
        path: str,
        fixture_ids: Sequence[str],
        parse: Callable[[object, str], T],
        permits: tuple[Permit, ...],
    ) -> OpticOddsResponse[T]:
        return self._parse_body(response.content, path, fixture_ids, parse, permits)

    def _parse_body(
        self,
        body: bytes,
        path: str,
        fixture_ids: Sequence[str],
        parse: Callable[[object, str], T],
        permits: tuple[Permit, ...],
    ) -> OpticOddsResponse[T]:
        try:
            return parse_envelope(json.loads(body), parse, permits)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            why = f"is not JSON ({error})"
        except ResponseShapeError as error:
            why = f"is not of the documented shape: {error}"
        raise UpstreamBadResponse(
            f"Optic Odds' answer to GET /{path} {why}", path=path, fixture_ids=fixture_ids
        )


def _status_error(
    response: httpx.Response, path: str, fixture_ids: Sequence[str]
) -> UpstreamHTTPError:
    status = response.status_code
    said = _error_message(response)
    message = f"Optic Odds answered GET /{path} with {status}: {said}"
    body = response.text
    if status == 429:
        retry_after = upstream_retry_after(response.headers, time.time())
        return UpstreamRateLimited(
            message, path=path, body=body, retry_after=retry_after, fixture_ids=fixture_ids
        )
    kind = UpstreamUnauthorized if status in (401, 403) else UpstreamHTTPError
    return kind(message, path=path, status_code=status, body=body, fixture_ids=fixture_ids)


def _error_message(response: httpx.Response) -> str:
    """The "error" of an Optic Odds error body, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return response.text[:200] or response.reason_phrase
