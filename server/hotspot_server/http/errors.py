"""Every HTTP error is one JSON body, `{"error": NAME, "message": ...}`, aiohttp's own included.

A request that aiohttp's parser refuses (an overlong request line or header, too many headers,
not HTTP at all) never reaches a middleware or a signal (aio-libs/aiohttp#3287); aiohttp
answers it from `RequestHandler.handle_error` in plain text and logs a traceback. JsonErrorRunner
gives each connection a handler whose `handle_error` answers the JSON body and logs one short
line, rate-limited, since any client can send such requests as fast as it likes.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler

from hotspot_core.clock import LoopClock
from hotspot_core.errors import InvalidArgument
from hotspot_core.log_summary import LogSummary
from hotspot_server.http.headers import add_standard_headers

logger = logging.getLogger("hotspot.http")

MAX_ECHO = 100
"""Characters of a parser's complaint (which quotes the request) put in the body and the log."""


def error_response(status: int, message: str, **fields: Any) -> web.Response:
    """The JSON error body; `error` is the status's name in snake case unless given."""
    name = fields.pop("error", None) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    return web.json_response({"error": name, **fields, "message": message}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bad input and unknown paths answer JSON that names the rule, like every other reply."""
    try:
        return await handler(request)
    except InvalidArgument as error:
        return error_response(400, str(error), error="invalid_argument", field=error.field)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        message = f"{request.method} {request.path[:MAX_ECHO]}: {error.reason}"
        if error.status == 404:
            message += "; endpoints: " + ", ".join(
                sorted({r.resource.canonical for r in request.app.router.routes() if r.resource})
            )
        response = error_response(
            error.status, message, error=error.reason.lower().replace(" ", "_")
        )
        if "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
        return response


class _JsonErrorProtocol(RequestHandler):
    """aiohttp's connection handler, answering its own refusals with the JSON body."""

    refusals: LogSummary

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: too late for another answer
            raise ConnectionError("the response has started; cannot send the error instead")
        if status >= 500:
            # Our own failure (a handler raised): the traceback is what will fix it.
            if self.refusals.first(str(status)):
                logger.error(
                    "HTTP %d answering %s %s",
                    status,
                    request.method,
                    request.path[:MAX_ECHO],
                    exc_info=exc,
                    extra={"event": "http_error", "status": status},
                )
            detail = HTTPStatus(status).phrase
        else:
            text = exc.message if isinstance(exc, HttpProcessingError) else (message or "")
            detail = (str(text).strip().splitlines() or [HTTPStatus(status).phrase])[0]
            detail = detail[:MAX_ECHO] + ("..." if len(detail) > MAX_ECHO else "")
            if self.refusals.first(str(status)):
                logger.warning(
                    "HTTP %d for a request from %s that aiohttp could not take: %s",
                    status,
                    request.remote,
                    detail,
                    extra={"event": "http_refused", "status": status},
                )
        response = error_response(status, detail)
        add_standard_headers(response, "")
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    refusals: LogSummary

    def __call__(self) -> RequestHandler:
        protocol = _JsonErrorProtocol(self, loop=self._loop, **self._kwargs)
        protocol.refusals = self.refusals
        return protocol


class JsonErrorRunner(web.AppRunner):
    """An AppRunner whose connections answer aiohttp's own refusals with the JSON body."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds its Server itself (from the app's private handler); only the class
        # of connection handler it makes has to change, and no argument chooses it.
        server.__class__ = _JsonErrorServer
        assert isinstance(server, _JsonErrorServer)
        server.refusals = LogSummary(
            LoopClock(), logger, what="requests refused", key_name="status", event="http_refused"
        )
        return server
