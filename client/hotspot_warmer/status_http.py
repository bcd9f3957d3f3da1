"""The warmer's HTTP side: /healthz, /status (JSON for `hotspot-warmer status`), /metrics."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from hotspot_client.optic_odds.cache import CacheMetrics
from hotspot_client.optic_odds.cache.prometheus import CacheCollector
from hotspot_warmer.metrics import WarmerCollector
from hotspot_warmer.scheduler import WarmingScheduler

ENDPOINTS = ("fixtures/odds",)


def status_json(scheduler: WarmingScheduler, cache_metrics: CacheMetrics | None) -> dict[str, Any]:
    settings = scheduler.config.warming
    now = scheduler.clock.timestamp()
    budget = settings.budget_share * settings.limit
    rows = sorted(scheduler.warmings.values(), key=lambda w: (w.warm_from, w.fixture_id))
    return {
        "now": scheduler.clock.now().isoformat().replace("+00:00", "Z"),
        "polls": scheduler.polls,
        "poll_errors": scheduler.poll_errors,
        "refresh_every": settings.refresh_every,
        "warmings": [w.as_json(now, settings.window, budget) for w in rows],
        "cache": cache_metrics.snapshot() if cache_metrics else {},
    }


def status_app(scheduler: WarmingScheduler, cache_metrics: CacheMetrics | None) -> web.Application:
    registry = CollectorRegistry()
    registry.register(WarmerCollector(scheduler))
    if cache_metrics is not None:
        registry.register(CacheCollector(cache_metrics, ENDPOINTS))

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "polls": scheduler.polls})

    async def status(request: web.Request) -> web.Response:
        return web.json_response(status_json(scheduler, cache_metrics))

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/status", status)
    app.router.add_get("/metrics", metrics)
    return app
