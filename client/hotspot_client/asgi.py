"""PermitErrorMiddleware: a calling service's HTTP edge for permit refusals (pure ASGI).

    app = Starlette(routes=..., middleware=[Middleware(PermitErrorMiddleware)])
    app.add_middleware(PermitErrorMiddleware, fixture_id_path=r"^/fixtures/(?P<fixture_id>[^/]+)")

An endpoint that lets one of these escape gets, instead of a 500:

- RateLimitExceeded (the permit service refused) and UpstreamRateLimited (Optic
  Odds answered 429): `429 Too Many Requests`, `Retry-After` in whole seconds
  rounded up, and `{"error": "rate_limited", "reason": ..., "fixture_id": ...,
  "retry_after": <seconds>}`;
- PermitServiceUnavailable: `503 Service Unavailable` with `Retry-After` and
  `{"error": "permit_service_unavailable", "reason": ..., "retry_after": ...}`.

It can also set `current_fixture_id` (read by @guarded) for each request, from a
path pattern and/or a query parameter. docs/errors.md describes both formats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from hotspot_client.errors import PermitServiceUnavailable, RateLimitExceeded
from hotspot_client.guard import current_fixture_id
from hotspot_client.optic_odds.errors import UpstreamRateLimited
from hotspot_core.errors import whole_seconds

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_RETRY_AFTER = 1.0
"""Seconds to advise when the error itself does not say."""

_HANDLED = (RateLimitExceeded, UpstreamRateLimited, PermitServiceUnavailable)
HandledError = RateLimitExceeded | UpstreamRateLimited | PermitServiceUnavailable


class PermitErrorMiddleware:
    """Turns permit refusals into 429 / 503 answers; optionally sets current_fixture_id.

    fixture_id_path: a regular expression searched in the request path, with a
    group named `fixture_id` (e.g. r"^/fixtures/(?P<fixture_id>[^/]+)").
    fixture_id_query: a query parameter whose first value is the fixture id.
    The path wins when both match. default_retry_after: seconds to advise when
    the error carries no delay.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        fixture_id_path: str | re.Pattern[str] | None = None,
        fixture_id_query: str | None = None,
        default_retry_after: float = DEFAULT_RETRY_AFTER,
    ) -> None:
        self.app = app
        self.fixture_id_path = re.compile(fixture_id_path) if fixture_id_path else None
        if self.fixture_id_path is not None and "fixture_id" not in self.fixture_id_path.groupindex:
            raise ValueError(
                f"fixture_id_path {self.fixture_id_path.pattern!r} needs a group named "
                "fixture_id, e.g. (?P<fixture_id>[^/]+)"
            )
        self.fixture_id_query = fixture_id_query
        if not default_retry_after >= 0:
            raise ValueError(f"default_retry_after must be 0 or more, got {default_retry_after}")
        self.default_retry_after = default_retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        token = current_fixture_id.set(self.fixture_id_of(scope))
        try:
            await self.app(scope, receive, watch)
        except Exception as raised:
            error = _handled(raised)
            if error is None or started:  # a response already begun cannot be replaced
                raise
            await self._answer(error, send)
        finally:
            current_fixture_id.reset(token)

    def fixture_id_of(self, scope: Scope) -> str | None:
        if self.fixture_id_path is not None:
            path: str = scope.get("path", "")
            match = self.fixture_id_path.search(path)
            found: str | None = match.group("fixture_id") if match is not None else None
            if found:
                return found
        if self.fixture_id_query is not None:
            raw: bytes = scope.get("query_string", b"")
            query = parse_qs(raw.decode("latin-1"))
            values = query.get(self.fixture_id_query)
            if values:
                return values[0]
        return None

    async def _answer(self, error: HandledError, send: Send) -> None:
        delay = error.retry_after if error.retry_after is not None else self.default_retry_after
        body: dict[str, Any]
        if isinstance(error, PermitServiceUnavailable):
            status = 503
            body = {
                "error": "permit_service_unavailable",
                "reason": error.reason,
                "retry_after": round(delay, 3),
            }
        else:
            status = 429
            if isinstance(error, UpstreamRateLimited):
                reason = "UPSTREAM_RATE_LIMITED"
                ids = error.fixture_ids
                fixture_id = ids[0] if len(ids) == 1 else None
            else:
                reason, fixture_id = error.reason, error.fixture_id
            body = {
                "error": "rate_limited",
                "reason": reason,
                "fixture_id": fixture_id,
                "retry_after": round(delay, 3),
            }
        content = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                    (b"retry-after", str(whole_seconds(delay)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})


def _handled(raised: Exception) -> HandledError | None:
    """The error to answer for, also when a task group wrapped it alone in a group."""
    if isinstance(raised, _HANDLED):
        return raised
    if isinstance(raised, BaseExceptionGroup):
        matched, rest = raised.split(_HANDLED)
        if matched is not None and rest is None:
            first = matched.exceptions[0]
            return _handled(first) if isinstance(first, Exception) else None
    return None
