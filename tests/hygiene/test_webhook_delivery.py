"""The alert webhook follows no redirect, and its signature checks out at a real receiver running
the README's own `verify` snippet: in-process, then through a server process and a SIGHUP."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from aiohttp import web

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from hotspot_core.memory import MemoryBackend
from hotspot_core.policy import PermitPolicy
from hotspot_server.alert_webhook import AlertWebhook, WebhookSecret
from tests.integration.test_process import ServerProcess
from tests.ops.test_readme_snippets import python_block_after

Verify = Callable[[bytes, Mapping[str, str], bytes], bool]
KEY = b"k" * 32


def readme_verify() -> Verify:
    """The README's snippet, run as written."""
    namespace: dict[str, object] = {}
    exec(python_block_after("### Alert webhook"), namespace)  # our own README's snippet
    return namespace["verify"]  # type: ignore[return-value]


async def raise_alert(backend: MemoryBackend) -> None:
    """limit 5, ratio 0.8: the 4th grant raises."""
    for _ in range(4):
        await backend.acquire("f")


async def delivered_or_failed(webhook: AlertWebhook, within: float = 5) -> None:
    """Wait until the webhook has finished with one alert, then close it."""
    deadline = time.monotonic() + within
    while webhook.delivered + webhook.failed < 1:
        assert time.monotonic() < deadline, "the alert was never sent"
        await asyncio.sleep(0.01)
    await webhook.close(1)


@pytest.fixture
async def backend() -> MemoryBackend:
    return MemoryBackend(PermitPolicy(limit=5, window=30))


@dataclass
class Receiver:
    url: str = ""
    arrived: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    """(path, headers, raw body) of each POST."""


@pytest.fixture
async def redirecting() -> AsyncIterator[Receiver]:
    """POST /alerts answers 307 to /elsewhere on the same server; both record what arrives."""
    receiver = Receiver()

    async def record(request: web.Request) -> web.Response:
        receiver.arrived.append((request.path, dict(request.headers), await request.read()))
        if request.path == "/alerts":
            raise web.HTTPTemporaryRedirect("/elsewhere")
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/alerts", record)
    app.router.add_post("/elsewhere", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/alerts"
    yield receiver
    await runner.cleanup()


async def test_a_redirect_is_a_failed_delivery_never_followed(
    redirecting: Receiver, backend: MemoryBackend, caplog: pytest.LogCaptureFixture
) -> None:
    webhook = AlertWebhook(redirecting.url, backoff=0.01)
    webhook.start(backend)
    await raise_alert(backend)
    await delivered_or_failed(webhook)
    assert [path for path, _, _ in redirecting.arrived] == ["/alerts"]  # once, not re-POSTed
    assert (webhook.delivered, webhook.failed) == (0, 1)
    [gave_up] = [r.getMessage() for r in caplog.records if r.name == "hotspot.alert_webhook"]
    assert "after 1 attempt(s): HTTP 307 (a redirect to '/elsewhere', not followed)" in gave_up


@pytest.fixture
async def verifying() -> AsyncIterator[Receiver]:
    """Answers 200 to a POST the README's verify() accepts under KEY, 401 to any other."""
    receiver, verify = Receiver(), readme_verify()

    async def check(request: web.Request) -> web.Response:
        body = await request.read()
        receiver.arrived.append((request.path, dict(request.headers), body))
        return web.json_response({}, status=200 if verify(KEY, request.headers, body) else 401)

    app = web.Application()
    app.router.add_post("/alerts", check)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/alerts"
    yield receiver
    await runner.cleanup()


async def test_a_signed_alert_verifies_at_the_receiver(
    verifying: Receiver, backend: MemoryBackend
) -> None:
    webhook = AlertWebhook(verifying.url, secret=WebhookSecret(Path("key"), KEY))
    webhook.start(backend)
    await raise_alert(backend)
    await delivered_or_failed(webhook)
    assert (webhook.delivered, webhook.failed) == (1, 0)  # the receiver said 200: verified
    [(_, headers, body)] = verifying.arrived
    assert abs(int(headers["X-Hotspot-Timestamp"]) - time.time()) < 10
    assert headers["X-Hotspot-Signature"].startswith("v1=")

    # What the snippet refuses: another key, an altered body, an old request, no signature.
    verify = readme_verify()
    assert verify(KEY, headers, body)
    assert not verify(b"x" * 32, headers, body)
    assert not verify(KEY, headers, body.replace(b'"raised"', b'"cleared"'))
    assert not verify(KEY, {**headers, "X-Hotspot-Timestamp": str(int(time.time()) - 1)}, body)
    assert not verify(KEY, {"X-Hotspot-Timestamp": headers["X-Hotspot-Timestamp"]}, body)
    replayed = verify_at(verify, headers, body, time.time() + 301)
    assert not replayed


def verify_at(verify: Verify, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """verify() as a receiver whose clock reads `now` would run it."""
    real = time.time
    time.time = lambda: now  # the snippet reads time.time(); a receiver later than 5 minutes
    try:
        return verify(KEY, headers, body)
    finally:
        time.time = real


async def test_an_unsigned_alert_is_refused_by_the_receiver(
    verifying: Receiver, backend: MemoryBackend
) -> None:
    webhook = AlertWebhook(verifying.url, backoff=0.01)
    webhook.start(backend)
    await raise_alert(backend)
    await delivered_or_failed(webhook)
    assert (webhook.delivered, webhook.failed) == (0, 1)
    assert "X-Hotspot-Signature" not in verifying.arrived[0][1]


class _Recording(BaseHTTPRequestHandler):
    arrived: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.arrived.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def thread_receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A receiver a blocking test can use: the URL, and (headers, body) of each POST."""
    arrived: list[tuple[dict[str, str], bytes]] = []
    handler = type("Recording", (_Recording,), {"arrived": arrived})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/alerts", arrived
    httpd.shutdown()
    httpd.server_close()


def wait_for(what: str, done: Callable[[], bool], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.mark.slow
def test_the_server_signs_with_the_secret_file_and_rereads_it_on_sighup(
    tmp_path: Path, thread_receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, arrived = thread_receiver
    secret_file = tmp_path / "webhook.key"
    old_key, new_key = b"old-" + b"a" * 28, b"new-" + b"b" * 28
    secret_file.write_bytes(old_key + b"\n")  # the newline an editor adds is no part of the key
    process = ServerProcess(
        "--limit", "5", "--window", "30s", "--alert-webhook", url,
        "--alert-webhook-secret-file", str(secret_file),
    )  # fmt: skip
    verify = readme_verify()
    try:
        with grpc.insecure_channel(process.address) as channel:
            stub = permits_pb2_grpc.PermitServiceStub(channel)
            permits = [stub.Acquire(pb.AcquireRequest(fixture_id="f")) for _ in range(4)]
            wait_for("the raised alert", lambda: len(arrived) == 1)
            headers, body = arrived[0]
            assert b'"raised"' in body
            assert verify(old_key, headers, body)
            assert not verify(new_key, headers, body)

            secret_file.write_bytes(new_key)
            process.proc.send_signal(signal.SIGHUP)
            assert process.proc.stderr is not None
            reloaded = ""
            while "SIGHUP" not in reloaded:  # the alert's own line may come first
                reloaded = process.proc.stderr.readline()
                process.log.append(reloaded)
            assert "SIGHUP: settings reloaded; changed live: alert_webhook_secret_file" in reloaded
            assert old_key.decode() not in reloaded  # named by its path, never its content

            for permit in permits[:2]:  # 2 calls: below the clear threshold
                stub.Release(
                    pb.ReleaseRequest(permit_id=permit.permit_id, outcome=pb.OUTCOME_NOT_SENT)
                )
            wait_for("the cleared alert", lambda: len(arrived) == 2)
            headers, body = arrived[1]
            assert b'"cleared"' in body
            assert verify(new_key, headers, body)
            assert not verify(old_key, headers, body)
    finally:
        assert process.stop() == 0, "".join(process.log)


@pytest.mark.parametrize(
    ("content", "problem"), [(b"short\n", "holds 5 bytes"), (None, "cannot read")]
)
def test_a_bad_secret_file_stops_the_start_with_one_line(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    secret_file = tmp_path / "webhook.key"
    if content is not None:
        secret_file.write_bytes(content)
    result = subprocess.run(
        [sys.executable, "-m", "hotspot_server", "--listen", "127.0.0.1:0", "--http", "off",
         "--alert-webhook-secret-file", str(secret_file)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "alert_webhook_secret_file" in line
    assert problem in line


def test_the_secret_never_shows_in_settings_text() -> None:
    secret = WebhookSecret(Path("/run/hotspot/webhook.key"), KEY)
    assert KEY.decode() not in f"{secret} {secret!r}"
