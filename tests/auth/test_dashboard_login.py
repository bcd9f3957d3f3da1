"""A browser opens the dashboard of a server that asks who is calling: it answers the challenge
with the token as a Basic password, and the page's EventSource carries it too."""

from __future__ import annotations

import pytest

from hotspot.v1 import permits_pb2 as pb
from tests.auth.conftest import Pki, permit_stub, serving
from tests.auth.test_matrix import TIMEOUT
from tests.visibility.test_dashboard import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no /usr/bin/chromium: install Debian's `chromium` package (.ci/run does)",
)


async def test_a_browser_reads_the_dashboard_with_the_token(pki: Pki) -> None:
    from playwright.async_api import async_playwright, expect

    async with serving(pki.settings(mtls=False)) as server:
        async with permit_stub(server, pki.token_security("acquirer")) as stub:
            await stub.Acquire(pb.AcquireRequest(fixture_id="fx-browser"), timeout=TIMEOUT)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            # The test CA is not in the browser's store; the token is what is under test here.
            anonymous = await browser.new_context(ignore_https_errors=True)
            # A request, not a page: headless, a page would meet a login prompt nobody answers.
            refused = await anonymous.request.get(f"{server.http_url}/dashboard")
            challenge = refused.headers.get("www-authenticate", "")
            reader = await browser.new_context(
                ignore_https_errors=True,
                http_credentials={"username": "anyone", "password": pki.tokens["reader"]},
            )
            page = await reader.new_page()
            await page.goto(f"{server.http_url}/dashboard")
            # Rows come from the stream only: the EventSource was let in.
            row = page.locator('tbody tr[data-fixture-id="fx-browser"]')
            await expect(row).to_have_count(1, timeout=TIMEOUT * 1000)
            await expect(page.locator("#status")).to_have_class("live")
            await browser.close()
    assert refused.status == 401
    assert challenge.startswith('Basic realm="hotspot"')
