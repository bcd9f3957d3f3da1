"""GET /dashboard in a real headless Chromium (Debian's), driven by Playwright for Python."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from playwright.async_api import async_playwright, expect

from hotspot.v1 import permits_pb2 as pb
from tests.integration.test_grpc_permits import fill, wait_for_depth
from tests.visibility.conftest import StartVisible

CHROMIUM = Path("/usr/bin/chromium")
# Flags for a root, offline machine: no sandbox, and no background calls to Google's hosts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
# The README's screenshot is rewritten only on request, so that a test run leaves the tree clean:
# UPDATE_SCREENSHOT=1 make test
UPDATE_SCREENSHOT = os.environ.get("UPDATE_SCREENSHOT") == "1"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no /usr/bin/chromium: install Debian's `chromium` package (.ci/run does)",
)

TRAFFIC = [  # fixture, calls in the window (limit 50: hot at 40)
    ("epl:arsenal-chelsea", 43),
    ("nfl:chiefs-bills", 38),
    ("mlb:yankees-redsox", 24),
    ("nhl:oilers-leafs", 15),
    ("atp:final", 9),
    ("laliga:clasico", 5),
    ("ufc:main-event", 2),
]
HOTTEST = "nba:lakers-celtics"


@pytest.mark.timeout(60)
async def test_dashboard_lists_the_hot_fixture_first_and_updates_live(
    start_visible: StartVisible, tmp_path: Path
) -> None:
    screenshot = README_SCREENSHOT if UPDATE_SCREENSHOT else tmp_path / "dashboard.png"
    h = await start_visible(window=60)
    await fill(h, HOTTEST, 50)
    queued = [
        asyncio.ensure_future(h.stub.Acquire(pb.AcquireRequest(fixture_id=HOTTEST)))
        for _ in range(6)
    ]
    await wait_for_depth(h, HOTTEST, 6)
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError):  # refused at once, and counted
            await h.stub.Acquire(pb.AcquireRequest(fixture_id=HOTTEST, max_wait=Duration()))
    for fixture_id, calls in TRAFFIC:
        await fill(h, fixture_id, calls)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1100, "height": 720})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        await page.goto(f"{h.url}/dashboard")
        rows = page.locator("tbody tr.fixture")
        await expect(rows).to_have_count(8)
        first = rows.first
        await expect(first).to_have_attribute("data-fixture-id", HOTTEST)
        await expect(first).to_have_class("fixture hot")
        await expect(first.locator(".badge")).to_be_visible()
        await expect(first.locator("td.calls")).to_have_text("50 / 50")
        await expect(first.locator("td.queue")).to_have_text("6 / 100")
        await expect(first.locator("td.refused")).to_have_text("3")
        # The second is hot too; the third (38 of 50) is below the 40-call line.
        await expect(rows.nth(1)).to_have_class("fixture hot")
        await expect(rows.nth(2)).to_have_class("fixture")
        await expect(rows.nth(2).locator(".badge")).to_be_hidden()
        line = first.locator(".alertline")
        assert await line.evaluate("e => e.style.left") == "80%"
        assert await first.locator(".fill").evaluate("e => e.style.width") == "100%"

        # Live: new traffic shows up without a reload (the stream ticks every second).
        await fill(h, "ucl:final", 41)
        arrived = page.locator('tbody tr[data-fixture-id="ucl:final"]')
        await expect(arrived).to_have_class("fixture hot", timeout=3000)
        await expect(rows.nth(2)).to_have_attribute("data-fixture-id", "ucl:final")
        await expect(page.locator("#status")).to_have_class("live")

        await page.screenshot(path=str(screenshot), full_page=True)
        await browser.close()

    server = urlsplit(h.url).netloc
    assert requested, "the browser made no request at all"
    assert {urlsplit(url).netloc for url in requested} == {server}, requested
    assert screenshot.stat().st_size > 10_000
    for task in queued:
        task.cancel()
