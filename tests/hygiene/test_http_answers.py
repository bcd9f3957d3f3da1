"""The HTTP side's errors and headers, on a real aiohttp server on loopback: every error the
JSON body (aiohttp's own refusals included), nosniff everywhere, no-store on live numbers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from tests.visibility.conftest import StartVisible, VisibleServer

LIVE = ["/health/hot-spots", "/metrics", "/healthz", "/readyz"]


async def raw_request(h: VisibleServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client would send these) and read the whole answer."""
    port = h.server.http_url.rsplit(":", 1)[1] if h.server.http_url else ""
    reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)  # the server closes after an error
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


def json_error(headers: Mapping[str, str], body: bytes) -> Any:
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["content-type"].startswith("application/json"), headers
    assert headers["x-content-type-options"] == "nosniff"
    error = json.loads(body)
    assert set(error) >= {"error", "message"}, error
    return error


@pytest.mark.parametrize(
    ("name", "request_bytes"),
    [
        ("overlong request line", b"GET /health/hot-spots?top=" + b"1" * 9000 + b" HTTP/1.1\r\n"),
        ("overlong query", b"GET /health/hot-spots?fixture_id=" + b"a" * 9000 + b" HTTP/1.1\r\n"),
        ("overlong header", b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n"),
        ("too many headers", b"GET /healthz HTTP/1.1\r\n" + b"X-A: a\r\n" * 200),
        ("not HTTP", b"GARBAGE\r\n"),
    ],
)
async def test_aiohttps_own_refusals_are_the_json_error_in_one_short_log_line(
    start_visible: StartVisible, caplog: pytest.LogCaptureFixture, name: str, request_bytes: bytes
) -> None:
    h = await start_visible()
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        status, headers, body = await raw_request(h, request_bytes + b"Host: x\r\n\r\n")
        assert status == 400, (name, body)
        error = json_error(headers, body)
        assert error["error"] == "bad_request"
        assert len(error["message"]) < 200  # a short prefix of what was sent, never all of it
    logged = [r for r in caplog.records if r.name in ("hotspot.http", "aiohttp.server")]
    assert all(r.exc_info is None for r in logged)  # no traceback
    assert len(logged) <= 1  # three refusals, one line: the rest go into the minute's count
    assert await h.get_json("/healthz") == (200, {"status": "alive"})


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("?top=%C2%B2", "'\xb2'"),  # superscript two: str.isdigit() says yes, int() says no
        ("?top=%D9%A1%D9%A0", "'\u0661\u0660'"),  # Arabic-Indic ten
        ("?top=" + "1" * 5000, "'11111111111111111111'"),  # more digits than int() reads
        ("?top=%2B5", "'+5'"),
    ],
)
async def test_top_takes_ascii_digits_only(
    start_visible: StartVisible, query: str, shown: str
) -> None:
    h = await start_visible()
    async with h.http.get("/health/hot-spots" + query) as response:
        assert response.status == 400
        error = json_error(response.headers, await response.read())
    assert (error["error"], error["field"]) == ("invalid_argument", "top")
    assert error["message"].endswith(f"got {shown}")


async def test_unknown_paths_and_wrong_methods_are_json(start_visible: StartVisible) -> None:
    h = await start_visible()
    async with h.http.get("/nope") as response:
        assert response.status == 404
        error = json_error(response.headers, await response.read())
        assert error["error"] == "not_found"
        assert "/health/hot-spots" in error["message"]  # names the endpoints there are
    async with h.http.post("/healthz") as response:
        assert response.status == 405
        assert "GET" in response.headers["Allow"]
        error = json_error(response.headers, await response.read())
        assert error["error"] == "method_not_allowed"


@pytest.mark.parametrize("path", LIVE)
async def test_live_endpoints_are_never_cached(start_visible: StartVisible, path: str) -> None:
    h = await start_visible()
    async with h.http.get(path) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_event_stream_is_never_cached(start_visible: StartVisible) -> None:
    h = await start_visible()
    async with h.http.get("/health/hot-spots/stream") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_no_other_site_may_frame_the_dashboard(start_visible: StartVisible) -> None:
    h = await start_visible()
    async with h.http.get("/dashboard") as response:
        assert response.status == 200
        policy = [p.strip() for p in response.headers["Content-Security-Policy"].split(";")]
        assert "frame-ancestors 'none'" in policy
        assert "default-src 'none'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
