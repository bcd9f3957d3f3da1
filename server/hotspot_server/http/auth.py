"""The HTTP side's one auth check: every endpoint but the probes needs an identity with read-stats.

A caller is named as on gRPC: `Authorization: Bearer TOKEN`, or a verified client certificate's
CN. A browser cannot put a bearer token on the dashboard's EventSource, so `Basic` is taken
too, with the token as the password (any user name): the browser asks once and sends it with
every request to this origin, the stream included.
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from hotspot_server.transport.auth import bearer_token, identify, lacks_role
from hotspot_server.transport.caller import READ_STATS
from hotspot_server.transport.callers_file import CallersFile

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
"""Liveness and readiness probes, which carry no identity and tell nothing about fixtures."""
CHALLENGES = (
    # Basic first: a browser answers the first scheme it knows, and knows no Bearer.
    ("WWW-Authenticate", 'Basic realm="hotspot", charset="UTF-8"'),
    ("WWW-Authenticate", 'Bearer realm="hotspot"'),
)


def _token(authorization: str) -> str:
    """The token of a Bearer or Basic header; "" (no caller's token) for anything else."""
    token = bearer_token(authorization)
    if token is not None:
        return token
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[2]
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _common_name(request: web.Request) -> str | None:
    """The CN of the client certificate that the TLS layer verified, if one was sent."""
    if request.transport is None:
        return None
    certificate = request.transport.get_extra_info("peercert")
    for rdn in (certificate or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def require_read_stats(callers: CallersFile) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        authorization = request.headers.get("Authorization")
        token = _token(authorization) if authorization is not None else None
        found = identify(callers, token, _common_name(request))
        if isinstance(found, str):
            return web.json_response(
                {"error": "unauthenticated", "message": found}, status=401, headers=CHALLENGES
            )
        if not found.may(READ_STATS):
            message = lacks_role(found, READ_STATS, f"GET {request.path[:100]}")
            return web.json_response({"error": "permission_denied", "message": message}, status=403)
        return await handler(request)

    return middleware
