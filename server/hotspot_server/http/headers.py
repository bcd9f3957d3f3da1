"""Headers every HTTP answer carries: no content sniffing, and no caching of live numbers."""

from __future__ import annotations

from aiohttp import web

LIVE_PATHS = frozenset(
    {"/health/hot-spots", "/health/hot-spots/stream", "/metrics", "/healthz", "/readyz"}
)
"""Answers true only at the moment they are made: no cache or proxy may keep them."""


def add_standard_headers(response: web.StreamResponse, path: str) -> None:
    # A browser must take each body as its declared type: JSON that quotes a caller's input
    # is never sniffed into HTML.
    response.headers["X-Content-Type-Options"] = "nosniff"
    if path in LIVE_PATHS:
        response.headers["Cache-Control"] = "no-store"


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """The app's on_response_prepare signal: every answer of a route, a middleware or an error."""
    add_standard_headers(response, request.path)
