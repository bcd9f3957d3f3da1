"""AlertWebhook: POST every hot-spot alert raised or cleared to a URL, off the permit path.

The alert listener only puts the alert in a bounded queue (a full queue drops
it, with a log line); one background task delivers them in order, each with a
timeout and a bounded number of attempts. Delivery is at least once: a
receiver that answers too slowly may see an alert twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

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


class AlertWebhook:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = TIMEOUT,
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.url = url
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
        body = alert_to_json(alert)
        problem = ""
        for attempt in range(1, self._attempts + 1):
            try:
                async with session.post(self.url, json=body) as response:
                    if response.status < 300:
                        self.delivered += 1
                        return
                    problem = f"HTTP {response.status}"
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
