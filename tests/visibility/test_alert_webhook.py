"""--alert-webhook against a real HTTP receiver on loopback: thresholds, order, retries, bounds.

The core's hysteresis itself is covered on virtual time in tests/unit; these tests check what
the HTTP side and the webhook add: what they show and send, and that sending never blocks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

import pytest

from hotspot.v1 import permits_pb2 as pb
from hotspot_core.grants import Outcome
from hotspot_core.memory import MemoryBackend
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsView
from hotspot_server.alert_webhook import AlertWebhook
from tests.visibility.conftest import StartVisible, VisibleServer, WebhookReceiver


class Fixture:
    """One fixture's count in the window, moved up by Acquire and down by NOT_SENT refunds."""

    def __init__(self, h: VisibleServer, fixture_id: str) -> None:
        self.h = h
        self.fixture_id = fixture_id
        self.permits: list[str] = []

    async def to(self, calls: int) -> Any:
        while len(self.permits) < calls:
            permit = await self.h.stub.Acquire(pb.AcquireRequest(fixture_id=self.fixture_id))
            self.permits.append(permit.permit_id)
        while len(self.permits) > calls:
            await self.h.stub.Release(
                pb.ReleaseRequest(permit_id=self.permits.pop(), outcome=pb.OUTCOME_NOT_SENT)
            )
        body = await self.h.hot_spots(f"?fixture_id={self.fixture_id}")
        assert body["fixtures"][0]["calls_in_window"] == calls
        return body


def seen(receiver: WebhookReceiver) -> list[tuple[str, str, int]]:
    return [(b["fixture_id"], b["state"], b["calls_in_window"]) for b in receiver.bodies]


async def test_raised_at_40_cleared_below_35_never_flapping(
    start_visible: StartVisible, receiver: WebhookReceiver
) -> None:
    h = await start_visible(window=30, alert_webhook=receiver.url)  # limit 50, ratio 0.8
    f = Fixture(h, "derby")
    body = await f.to(39)
    assert not body["fixtures"][0]["hot"]
    assert body["alerts"] == []

    body = await f.to(40)
    assert body["fixtures"][0]["hot"]
    [alert] = body["alerts"]
    assert (alert["fixture_id"], alert["threshold"], alert["clear_below"]) == ("derby", 40, 35)
    await receiver.wait_for(bodies=1)
    [raised] = receiver.bodies
    assert set(raised) == {"fixture_id", "state", "calls_in_window", "threshold", "at"} | {
        "clear_below"
    }
    assert (raised["state"], raised["calls_in_window"], raised["threshold"]) == ("raised", 40, 40)
    sent_at = datetime.fromisoformat(raised["at"]).timestamp()
    assert abs(sent_at - time.time()) < 10

    # Hovering between 35 and 40 keeps it hot, with nothing sent.
    for calls in (35, 40, 36, 39, 35, 41, 35):
        body = await f.to(calls)
        assert body["fixtures"][0]["hot"], calls
    body = await f.to(34)
    assert not body["fixtures"][0]["hot"]
    assert body["alerts"] == []
    # Hovering just under 40 once cleared sends nothing either.
    for calls in (39, 34, 39):
        assert not (await f.to(calls))["fixtures"][0]["hot"], calls
    await f.to(40)
    # Deliveries keep their order, so the clear arriving second proves nothing came between.
    await receiver.wait_for(bodies=3)
    assert seen(receiver) == [
        ("derby", "raised", 40),
        ("derby", "cleared", 34),
        ("derby", "raised", 40),
    ]
    assert receiver.attempts == 3


async def raise_alert(backend: MemoryBackend) -> None:
    """limit 5, ratio 0.8: the 4th grant raises."""
    for _ in range(4):
        await backend.acquire("f")


@pytest.fixture
async def backend() -> MemoryBackend:
    return MemoryBackend(PermitPolicy(limit=5, window=30))


async def test_retries_failures_and_timeouts_then_delivers_once(
    receiver: WebhookReceiver, backend: MemoryBackend
) -> None:
    webhook = AlertWebhook(receiver.url, timeout=0.3, backoff=0.05)
    webhook.start(backend)
    receiver.script += [503, "hang"]
    await raise_alert(backend)
    await receiver.wait_for(bodies=1)
    assert receiver.attempts == 3  # 503, a timeout, then 200
    assert seen(receiver) == [("f", "raised", 4)]
    assert (webhook.delivered, webhook.failed) == (1, 0)
    await webhook.close(1)


@pytest.mark.parametrize(("answers", "attempts"), [([500, 500, 500, 500], 3), ([400], 1)])
async def test_gives_up_after_bounded_attempts(
    receiver: WebhookReceiver,
    backend: MemoryBackend,
    caplog: pytest.LogCaptureFixture,
    answers: list[int | str],
    attempts: int,
) -> None:
    webhook = AlertWebhook(receiver.url, attempts=3, backoff=0.05)
    webhook.start(backend)
    receiver.script += answers
    await raise_alert(backend)
    await receiver.wait_for(attempts=attempts)
    await webhook.close(1)  # waits for the delivery to finish
    assert receiver.attempts == attempts  # a 4xx other than 408/429 is not retried
    assert (webhook.delivered, webhook.failed) == (0, 1)
    assert f"after {attempts} attempt(s): HTTP {answers[0]}" in caplog.text


async def test_full_queue_drops_with_a_log_and_permits_never_wait(
    receiver: WebhookReceiver, backend: MemoryBackend, caplog: pytest.LogCaptureFixture
) -> None:
    webhook = AlertWebhook(receiver.url, timeout=30, queue_size=1)
    webhook.start(backend)
    receiver.script.append("hang")  # the first delivery hangs until released
    await raise_alert(backend)
    await receiver.wait_for(attempts=1)
    # Six more changes while the receiver hangs, and none of them waits for it:
    # one fits the queue, five are dropped.
    with caplog.at_level(logging.WARNING, logger="hotspot.alert_webhook"):
        for _ in range(3):
            grant = await backend.acquire("f")  # 5 calls
            await backend.release(grant.permit_id, Outcome.NOT_SENT)  # 4: still hot
            grant = await backend.acquire("f")  # 5
            await backend.release(grant.permit_id, Outcome.NOT_SENT)  # 4
            row = (await backend.stats(StatsView(fixture_ids=("f",)))).fixtures[0]
            assert row.hot
    assert webhook.dropped == 0  # hovering sent nothing
    with caplog.at_level(logging.WARNING, logger="hotspot.alert_webhook"):
        grants = [await backend.acquire("g") for _ in range(4)]  # raised: queued
        for _ in range(3):
            for _ in range(2):  # cleared at 2: the cool-down threshold is a call below 4
                await backend.release(grants.pop().permit_id, Outcome.NOT_SENT)
            grants += [await backend.acquire("g") for _ in range(2)]  # raised at 4
        for _ in range(5):  # alerts reach their listeners in a later loop step, never inline
            await asyncio.sleep(0)
    assert webhook.dropped == 6
    assert caplog.text.count("alert webhook queue is full") == 6
    receiver.release.set()
    await webhook.close(2)
    assert seen(receiver) == [("g", "raised", 4)]
