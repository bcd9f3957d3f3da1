"""The odds gateway: a Starlette service that reads Optic Odds under hotspot permits.

    GET /fixtures/{fixture_id}/odds?sportsbook=DraftKings[&sportsbook=...][&market=...]
    GET /odds?fixture_id=A&fixture_id=B&sportsbook=...     (up to 5 fixtures, one permit each)
    (both also take max_wait=0|500ms|2s to wait less for permits)
    GET /healthz
    GET /metrics   (the odds cache's counters, per endpoint)

With CACHE_URL set, reads go through the odds cache: the answer says its "cache"
age and staleness, with Age and Cache-Control headers.

Run it with `uvicorn --factory examples.odds_gateway.app:create_app` from the
repository root; examples/odds_gateway/README.md has the whole demo.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from examples.odds_gateway.settings import GatewaySettings
from hotspot_client import InvalidArgument, PermitClient, PermitPolicy, UnavailableRetry
from hotspot_client.asgi import PermitErrorMiddleware
from hotspot_client.optic_odds import (
    FixtureOdds,
    OpticOddsClient,
    OpticOddsRequestInvalid,
    OpticOddsResponse,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from hotspot_client.optic_odds.cache import CacheMetrics, Freshness, FreshnessRules, OddsCache
from hotspot_client.optic_odds.cache.prometheus import CacheCollector
from hotspot_core.durations import parse_duration

Handler = Callable[[Request, Exception], Awaitable[Response]]


CACHED_ENDPOINTS = ("fixtures/odds", "fixtures/odds/historical", "fixtures/results")


def _odds_body(response: OpticOddsResponse[FixtureOdds]) -> dict[str, Any]:
    return {
        "data": [fixture.to_json() for fixture in response.data],
        "cache": (
            {"age": round(response.age, 3), "stale": response.stale} if response.cached else None
        ),
        # How each permit was granted: callers (and the end-to-end tests) can see the queue.
        "permits": [
            {
                "fixture_id": p.fixture_id,
                "queue_position": p.queue_position,
                "waited": round(p.waited, 6),
                "granted_at": p.granted_at,
                "local": p.local,
            }
            for p in response.permits
        ],
    }


async def _bad_request(request: Request, error: Exception) -> Response:
    field = getattr(error, "field", None)
    return JSONResponse(
        {"error": "invalid_request", "field": field, "message": str(error)}, status_code=400
    )


async def _odds_response(call: Awaitable[OpticOddsResponse[FixtureOdds]]) -> Response:
    """The call's answer, or its upstream failure as 502 / 504.

    An upstream 429 is left to PermitErrorMiddleware, which answers 429 with its Retry-After.
    """
    try:
        response = await call
    except UpstreamRateLimited:
        raise
    except UpstreamError as error:
        status = 504 if isinstance(error, UpstreamTimeout) else 502
        upstream = error.status_code if isinstance(error, UpstreamHTTPError) else None
        return JSONResponse(
            {"error": "upstream_failed", "upstream_status": upstream, "message": str(error)},
            status_code=status,
        )
    return JSONResponse(_odds_body(response), headers=_cache_headers(response))


def _cache_headers(response: OpticOddsResponse[FixtureOdds]) -> dict[str, str]:
    """RFC 9111: an answer whose Age passed its max-age is stale, and says so."""
    if not response.cached:
        return {}
    return {
        "Age": str(int(response.age)),
        "Cache-Control": f"max-age={int(response.fresh_for)}",
    }


def _odds_cache(config: GatewaySettings, metrics: CacheMetrics) -> OddsCache | None:
    if not config.cache_url:
        return None
    freshness = FreshnessRules(
        live_odds=Freshness(config.cache_live_fresh, config.cache_live_max_stale),
        pregame_odds=Freshness(config.cache_pregame_fresh, config.cache_pregame_max_stale),
    )
    return OddsCache.from_url(config.cache_url, freshness=freshness, metrics=metrics)


def create_app(settings: GatewaySettings | None = None) -> Starlette:
    """The gateway; without settings, they come from the environment."""
    config = settings or GatewaySettings.from_env(os.environ)
    clients: dict[str, OpticOddsClient] = {}
    cache_metrics = CacheMetrics()
    registry = CollectorRegistry()
    registry.register(CacheCollector(cache_metrics, CACHED_ENDPOINTS))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        permits = PermitClient(
            config.hotspot_target,
            client_id=config.hotspot_client_id,
            fail_open=config.hotspot_fail_open,
            fallback_policy=PermitPolicy(
                limit=config.fallback_limit,
                window=config.fallback_window,
                queue=config.fallback_queue,
            ),
            retry=UnavailableRetry(give_up_after=config.hotspot_retry_for),
        )
        cache = _odds_cache(config, cache_metrics)
        async with (
            permits,
            OpticOddsClient(
                permits,
                api_key=config.optic_odds_api_key,
                base_url=config.optic_odds_base_url,
                timeout=config.optic_odds_timeout,
                max_wait=config.hotspot_max_wait,
                cache=cache,
            ) as odds,
        ):
            clients["odds"] = odds
            try:
                yield
            finally:
                if cache is not None:
                    await cache.close()

    async def odds(request: Request) -> Response:
        """One fixture from the path, or several from `fixture_id` query parameters.

        `max_wait` (e.g. 0, 500ms, 2s) shortens how long this request may wait for its
        permits; it never lengthens HOTSPOT_MAX_WAIT.
        """
        query = request.query_params
        max_wait = config.hotspot_max_wait
        if "max_wait" in query:
            try:
                max_wait = min(max_wait, parse_duration(query["max_wait"]))
            except ValueError as error:
                return await _bad_request(request, ValueError(f"max_wait: {error}"))
        path_fixture = request.path_params.get("fixture_id")
        return await _odds_response(
            clients["odds"].fixture_odds(
                path_fixture or query.getlist("fixture_id"),
                query.getlist("sportsbook"),
                query.getlist("market") or None,
                odds_format=query.get("odds_format"),
                max_wait=max_wait,
            )
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    handlers: dict[Any, Handler] = {
        OpticOddsRequestInvalid: _bad_request,
        InvalidArgument: _bad_request,
    }
    return Starlette(
        routes=[
            Route("/fixtures/{fixture_id}/odds", odds),
            Route("/odds", odds),
            Route("/healthz", healthz),
            Route("/metrics", metrics),
        ],
        middleware=[
            Middleware(
                PermitErrorMiddleware,
                fixture_id_path=r"^/fixtures/(?P<fixture_id>[^/]+)",
                fixture_id_query="fixture_id",
            )
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
