"""AlertWebhook: POST every hot-spot alert raised or cleared to a URL, off the permit path.

The alert listener only puts the alert in a bounded queue (a full queue drops
it, with a log line); one background task delivers them in order, each with a
timeout and a bounded number of attempts. Delivery is at least once: a
receiver that answers too slowly may see an alert twice.

Redirects are never followed: a 3xx is a failed delivery, since following one would send the
alert (and its signature) to whatever host the receiver names. With a secret, each attempt is
signed: `X-Hotspot-Timestamp` (Unix seconds) and `X-Hotspot-Signature: v1=HEX`, the HMAC-SHA256
of "TIMESTAMP.BODY" under the secret, so a receiver can check the sender and refuse replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from hotspot_core.alerts import Alert
from hotspot_core.backend import PermitBackend
from hotspot_server.http.json_messages import alert_to_json

logger = logging.getLogger("hotspot.alert_webhook")

TIMEOUT = 2.0
"""Seconds one POST may take."""
ATTEMPTS = 3
BACKOFF = 0.5
"""Seconds before the second attempt; doubled before each one after."""
QUEUE_SIZE = 1000
USER_AGENT = "hotspot-alert-webhook"
TIMESTAMP_HEADER = "X-Hotspot-Timestamp"
SIGNATURE_HEADER = "X-Hotspot-Signature"
MIN_SECRET_BYTES = 16


@dataclass(frozen=True)
class WebhookSecret:
    """The signing key, read from `path`; printed as its path only (a reload names it)."""

    path: Path
    key: bytes = field(repr=False)

    def __str__(self) -> str:
        return str(self.path)


def read_webhook_secret(text: str) -> WebhookSecret:
    """The --alert-webhook-secret-file setting: the file's bytes, without surrounding
    whitespace (the trailing newline an editor or `echo` adds)."""
    path = Path(str(text))  # a TOML value may be any type
    try:
        key = path.read_bytes().strip()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(
            f"{path} holds {len(key)} bytes; a secret needs at least {MIN_SECRET_BYTES} "
            "(e.g. `openssl rand -hex 32`)"
        )
    return WebhookSecret(path, key)


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    """The X-Hotspot-Signature value of `body` sent at `timestamp`."""
    return "v1=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class AlertWebhook:
    def __init__(
        self,
        url: str,
        *,
        secret: WebhookSecret | None = None,
        timeout: float = TIMEOUT,
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.url = url
        self.secret = secret
        """Read at each attempt: a reload replaces it, alerts still queued included."""
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=queue_size)
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.delivered = 0
        self.dropped = 0
        self.failed = 0

    def start(self, backend: PermitBackend) -> None:
        """Listen to the backend's alerts and start delivering. Runs inside the event loop."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={"User-Agent": USER_AGENT},
        )
        self._task = asyncio.create_task(self._deliver_in_order(self._session))
        self._unsubscribe = backend.subscribe_alerts(self.enqueue)

    def enqueue(self, alert: Alert) -> None:
        """The alert listener: O(1), never waits, never raises."""
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.dropped += 1
            logger.warning(
                "alert webhook queue is full (%d): dropped %s alert for fixture_id=%s",
                self._queue.maxsize,
                alert.state.value,
                alert.fixture_id,
                extra={"event": "alert_webhook_dropped", "fixture_id": alert.fixture_id},
            )

    async def _deliver_in_order(self, session: aiohttp.ClientSession) -> None:
        while True:
            alert = await self._queue.get()
            try:
                await self._deliver(session, alert)
            finally:
                self._queue.task_done()

    async def _deliver(self, session: aiohttp.ClientSession, alert: Alert) -> None:
        body = json.dumps(alert_to_json(alert)).encode()
        problem = ""
        for attempt in range(1, self._attempts + 1):
            try:
                async with session.post(
                    self.url, data=body, headers=self._headers(body), allow_redirects=False
                ) as response:
                    if response.status < 300:
                        self.delivered += 1
                        return
                    problem = f"HTTP {response.status}"
                    if response.status < 400:
                        location = response.headers.get("Location", "")[:100]
                        problem += f" (a redirect to {location!r}, not followed)"
                    if response.status < 500 and response.status not in (408, 429):
                        break  # the receiver refuses this body: sending it again cannot help
            except (aiohttp.ClientError, TimeoutError) as error:
                problem = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            if attempt < self._attempts:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
        self.failed += 1
        logger.error(
            "alert webhook gave up on the %s alert for fixture_id=%s after %d attempt(s): %s",
            alert.state.value,
            alert.fixture_id,
            attempt,
            problem,
            extra={"event": "alert_webhook_failed", "fixture_id": alert.fixture_id},
        )

    def _headers(self, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.secret is not None:
            # Signed per attempt: a retry carries a fresh timestamp, not a stale one.
            timestamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = signature(self.secret.key, timestamp, body)
        return headers

    async def close(self, grace: float) -> None:
        """Stop listening, give queued alerts up to `grace` seconds, then drop the rest."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), max(0.0, grace))
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        left = self._queue.qsize()
        if left:
            logger.warning("alert webhook closed with %d alert(s) undelivered", left)
        if self._session is not None:
            await self._session.close()
            self._session = None
