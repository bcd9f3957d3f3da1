"""PermitErrorMiddleware in Starlette and FastAPI apps, driven through httpx.ASGITransport.

The refusals are real: a permit server and a fake Optic Odds on loopback refuse
for real, and the middleware turns what they raise into 429 and 503 answers.
"""

from __future__ import annotations

import math
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hotspot_client import PermitClient, RateLimitExceeded, UnavailableRetry
from hotspot_client.asgi import PermitErrorMiddleware
from hotspot_client.guard import current_fixture_id, guarded
from tests.optic_odds.conftest import MakeRig, Rig

MIDDLEWARE: dict[str, Any] = {
    "fixture_id_path": r"^/fixtures/(?P<fixture_id>[^/]+)",
    "fixture_id_query": "fixture_id",
}


@dataclass
class Calls:
    """What the endpoints do, the same for either framework."""

    touch: Callable[[], Awaitable[str | None]]
    odds: Callable[[str], Awaitable[dict[str, object]]]
    whoami: Callable[[], Awaitable[dict[str, object]]]


def calls_for(rig: Rig, permits: PermitClient) -> Calls:
    @guarded(permits, max_wait=0)  # the fixture id comes from the middleware's contextvar
    async def touch() -> str | None:
        return current_fixture_id.get()

    async def odds(fixture_id: str) -> dict[str, object]:
        response = await rig.odds.fixture_odds(fixture_id, "Pinnacle", max_wait=0)
        return {"fixtures": [f.id for f in response.data]}

    async def whoami() -> dict[str, object]:
        return {"fixture_id": current_fixture_id.get()}

    return Calls(touch, odds, whoami)


def starlette_app(rig: Rig, permits: PermitClient) -> Starlette:
    calls = calls_for(rig, permits)

    async def touch(request: Request) -> Response:
        return JSONResponse({"fixture_id": await calls.touch()})

    async def odds(request: Request) -> Response:
        return JSONResponse(await calls.odds(request.path_params["fixture_id"]))

    async def whoami(request: Request) -> Response:
        return JSONResponse(await calls.whoami())

    return Starlette(
        routes=[
            Route("/fixtures/{fixture_id}/touch", touch),
            Route("/fixtures/{fixture_id}/odds", odds),
            Route("/whoami", whoami),
        ],
        middleware=[Middleware(PermitErrorMiddleware, **MIDDLEWARE)],
    )


def fastapi_app(rig: Rig, permits: PermitClient) -> FastAPI:
    calls = calls_for(rig, permits)
    app = FastAPI()
    app.add_middleware(PermitErrorMiddleware, **MIDDLEWARE)

    @app.get("/fixtures/{fixture_id}/touch")
    async def touch(fixture_id: str) -> dict[str, object]:
        return {"fixture_id": await calls.touch()}

    @app.get("/fixtures/{fixture_id}/odds")
    async def odds(fixture_id: str) -> object:
        return await calls.odds(fixture_id)

    @app.get("/whoami")
    async def whoami() -> object:
        return await calls.whoami()

    return app


AppFactory = Callable[[Rig, PermitClient], Starlette | FastAPI]
FRAMEWORKS = pytest.mark.parametrize(
    "make_app", [starlette_app, fastapi_app], ids=["starlette", "fastapi"]
)


def client_for(app: Starlette | FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


@FRAMEWORKS
async def test_a_permit_refusal_is_429_with_retry_after(
    make_rig: MakeRig, make_app: AppFactory
) -> None:
    rig = await make_rig(limit=1, window=30)
    async with client_for(make_app(rig, rig.permits)) as http:
        first = await http.get("/fixtures/F1/touch")
        refused = await http.get("/fixtures/F1/touch")

    assert first.status_code == 200
    assert first.json() == {"fixture_id": "F1"}  # @guarded read it from the path
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/json"
    body = refused.json()
    assert body["error"] == "rate_limited"
    assert body["reason"] == "WAIT_TOO_LONG"
    assert body["fixture_id"] == "F1"
    assert 29 < body["retry_after"] <= 30
    assert int(refused.headers["retry-after"]) == math.ceil(body["retry_after"])


@FRAMEWORKS
async def test_an_upstream_429_is_passed_on_as_429(make_rig: MakeRig, make_app: AppFactory) -> None:
    rig = await make_rig(limit=10, upstream_limit=1, upstream_window=20)
    async with client_for(make_app(rig, rig.permits)) as http:
        assert (await http.get("/fixtures/F2/odds")).status_code == 200
        limited = await http.get("/fixtures/F2/odds")

    assert limited.status_code == 429
    assert limited.json() == {
        "error": "rate_limited",
        "reason": "UPSTREAM_RATE_LIMITED",
        "fixture_id": "F2",
        "retry_after": 20.0,
    }
    assert limited.headers["retry-after"] == "20"


@FRAMEWORKS
async def test_an_unreachable_permit_service_is_503(
    make_rig: MakeRig, make_app: AppFactory
) -> None:
    rig = await make_rig()
    with socket.socket() as s:  # nothing listens on a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{s.getsockname()[1]}"
    async with (
        PermitClient(nowhere, retry=UnavailableRetry(give_up_after=0)) as down,
        client_for(make_app(rig, down)) as http,
    ):
        answer = await http.get("/fixtures/F3/touch")

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"  # no delay given: the default
    body = answer.json()
    assert body["error"] == "permit_service_unavailable"
    assert body["retry_after"] == 1.0


@FRAMEWORKS
async def test_the_fixture_id_comes_from_the_path_or_the_query(
    make_rig: MakeRig, make_app: AppFactory
) -> None:
    rig = await make_rig()
    async with client_for(make_app(rig, rig.permits)) as http:
        from_query = await http.get("/whoami", params={"fixture_id": "Q-1"})
        absent = await http.get("/whoami")
    assert from_query.json() == {"fixture_id": "Q-1"}
    assert absent.json() == {"fixture_id": None}
    assert current_fixture_id.get() is None  # reset after each request


def refusal() -> RateLimitExceeded:
    return RateLimitExceeded(
        "full", reason="QUEUE_FULL", fixture_id="F", retry_after=2.5, estimated_wait=3.0
    )


async def test_a_refusal_wrapped_alone_in_an_exception_group_is_answered() -> None:
    async def grouped(request: Request) -> Response:
        raise ExceptionGroup("task group", [refusal()])

    app = Starlette(routes=[Route("/", grouped)], middleware=[Middleware(PermitErrorMiddleware)])
    async with client_for(app) as http:
        answer = await http.get("/")
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "3"
    assert answer.json()["reason"] == "QUEUE_FULL"


async def test_a_refusal_after_the_response_began_is_not_hidden() -> None:
    async def stream(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"partial"
            raise refusal()

        return StreamingResponse(body())

    app = Starlette(routes=[Route("/", stream)], middleware=[Middleware(PermitErrorMiddleware)])
    async with client_for(app) as http:
        with pytest.raises(RateLimitExceeded):
            await http.get("/")


def test_a_path_pattern_without_the_group_is_refused() -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="group named fixture_id"):
        PermitErrorMiddleware(app, fixture_id_path=r"^/fixtures/([^/]+)")
