"""The authorisation matrix on a real server on the loopback: every RPC and HTTP endpoint, with
no identity, the wrong role and the right role, over TLS with bearer tokens and over mTLS."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import aiohttp
import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from hotspot.v1 import permits_pb2 as pb
from hotspot_client.channel_options import ChannelSecurity
from hotspot_core.policy import PermitPolicy
from hotspot_server.server import PermitServer
from tests.auth.conftest import Pki, permit_stub, serving

if TYPE_CHECKING:
    from hotspot.v1.permits_pb2_grpc import PermitServiceAsyncStub

OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
NO_HANDSHAKE = grpc.StatusCode.UNAVAILABLE
"""mTLS without a client certificate: the server ends the handshake, no call is made."""
TIMEOUT = 5.0


@dataclass(frozen=True)
class Rpc:
    name: str
    right: str
    """A caller with the role it needs."""
    wrong: str
    """A caller without it."""
    role: str
    call: Callable[[PermitServiceAsyncStub, str], Awaitable[object]]
    """Makes the call as a caller, given the id of a permit that caller holds."""


async def _acquire(stub: PermitServiceAsyncStub, _: str) -> object:
    return await stub.Acquire(pb.AcquireRequest(fixture_id="fx-auth"), timeout=TIMEOUT)


async def _release(stub: PermitServiceAsyncStub, permit_id: str) -> object:
    request = pb.ReleaseRequest(permit_id=permit_id, outcome=pb.OUTCOME_SUCCESS)
    return await stub.Release(request, timeout=TIMEOUT)


async def _release_upstream_limited(stub: PermitServiceAsyncStub, permit_id: str) -> object:
    request = pb.ReleaseRequest(
        permit_id=permit_id,
        outcome=pb.OUTCOME_UPSTREAM_RATE_LIMITED,
        upstream_retry_after=Duration(seconds=1),
    )
    return await stub.Release(request, timeout=TIMEOUT)


async def _announce_warmings(stub: PermitServiceAsyncStub, _: str) -> object:
    request = pb.AnnounceWarmingsRequest(announcer="matrix")  # empty: withdraws, changes nothing
    return await stub.AnnounceWarmings(request, timeout=TIMEOUT)


async def _stats(stub: PermitServiceAsyncStub, _: str) -> object:
    return await stub.Stats(pb.StatsRequest(top_n=3), timeout=TIMEOUT)


async def _watch_stats(stub: PermitServiceAsyncStub, _: str) -> object:
    stream = stub.WatchStats(pb.WatchStatsRequest(top_n=3), timeout=TIMEOUT)
    try:
        async for first in stream:
            return first
    finally:
        stream.cancel()
    raise AssertionError("WatchStats ended without a message")


RPCS = [
    Rpc("Acquire", "acquirer", "reader", "acquire", _acquire),
    Rpc("Release own permit", "acquirer", "reader", "acquire", _release),
    Rpc("Release UPSTREAM_RATE_LIMITED", "reporter", "acquirer", "report-upstream",
        _release_upstream_limited),
    Rpc("AnnounceWarmings", "acquirer", "reader", "acquire", _announce_warmings),
    Rpc("Stats", "reader", "acquirer", "read-stats", _stats),
    Rpc("WatchStats", "reader", "acquirer", "read-stats", _watch_stats),
]  # fmt: skip
IDENTITIES = ["none", "wrong role", "right role"]
MODES = ["tls+token", "mtls"]


def security_of(pki: Pki, mode: str, caller: str | None) -> ChannelSecurity:
    return pki.token_security(caller) if mode == "tls+token" else pki.certificate_security(caller)


async def code_of(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return OK, ""


async def own_permit(server: PermitServer, pki: Pki, mode: str, caller: str | None) -> str:
    """A permit held by `caller` if it may acquire, else by an admin: what the caller releases."""
    holder = caller if caller in ("acquirer", "reporter") else "root"
    async with permit_stub(server, security_of(pki, mode, holder)) as stub:
        grant = await stub.Acquire(pb.AcquireRequest(fixture_id="fx-auth"), timeout=TIMEOUT)
    return grant.permit_id


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rpc", RPCS, ids=lambda r: r.name)
@pytest.mark.parametrize("identity", IDENTITIES)
async def test_grpc_matrix(pki: Pki, mode: str, rpc: Rpc, identity: str) -> None:
    caller = {"none": None, "wrong role": rpc.wrong, "right role": rpc.right}[identity]
    async with serving(pki.settings(mtls=mode == "mtls", http=False)) as server:
        permit_id = await own_permit(server, pki, mode, caller)
        async with permit_stub(server, security_of(pki, mode, caller)) as stub:
            code, message = await code_of(rpc.call(stub, permit_id))
    expected = {
        "none": NO_HANDSHAKE if mode == "mtls" else UNAUTHENTICATED,
        "wrong role": DENIED,
        "right role": OK,
    }[identity]
    assert code == expected, message
    if code == DENIED:
        assert f"caller '{caller}'" in message
        assert f"needs the role '{rpc.role}'" in message
    if code == UNAUTHENTICATED:
        assert "no identity" in message


@pytest.mark.parametrize("mode", MODES)
async def test_an_unknown_token_or_certificate_names_nobody(pki: Pki, mode: str) -> None:
    """A token not in the file is UNAUTHENTICATED; a certificate of another CA never gets
    through the handshake; one of this CA whose CN the file does not list holds no role."""
    async with serving(pki.settings(mtls=mode == "mtls", http=False)) as server:
        if mode == "tls+token":
            stranger = ChannelSecurity(ca_file=pki.ca_file, token="not-a-token-of-the-file")
            expected = [UNAUTHENTICATED]
        else:
            from tests.auth.certificates import CertificateAuthority

            cert, key = CertificateAuthority("other CA").client("root").write(pki.directory, "x")
            stranger = ChannelSecurity(ca_file=pki.ca_file, cert_file=cert, key_file=key)
            expected = [NO_HANDSHAKE]
        async with permit_stub(server, stranger) as stub:
            codes = [(await code_of(_stats(stub, "")))[0]]
        if mode == "mtls":
            async with permit_stub(server, pki.certificate_security("unlisted")) as stub:
                code, message = await code_of(_stats(stub, ""))
            codes.append(code)
            expected.append(DENIED)
            assert message == "caller 'unlisted' may not call hotspot.v1.PermitService/Stats: " \
                "it needs the role 'read-stats'"  # fmt: skip
    assert codes == expected


async def test_admin_holds_every_role_and_a_token_beats_a_certificate(pki: Pki) -> None:
    async with serving(pki.settings(mtls=True, http=False)) as server:
        permit_id = await own_permit(server, pki, "mtls", "root")
        async with permit_stub(server, pki.certificate_security("root")) as stub:
            assert (await code_of(_release_upstream_limited(stub, permit_id)))[0] == OK
            assert (await code_of(_stats(stub, "")))[0] == OK
        # A reader's certificate carrying the acquirer's token is the acquirer.
        cert, key = pki.client_files("reader")
        both = ChannelSecurity(pki.ca_file, cert, key, token=pki.tokens["acquirer"])
        async with permit_stub(server, both) as stub:
            assert (await code_of(_acquire(stub, "")))[0] == OK
            code, message = await code_of(_stats(stub, ""))
    assert (code, message.split(" may")[0]) == (DENIED, "caller 'acquirer'")


async def test_health_and_reflection_need_no_identity(pki: Pki) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async with serving(pki.settings(mtls=False, http=False)) as server:
        anonymous = ChannelSecurity(ca_file=pki.ca_file)
        target = server.address
        async with grpc.aio.secure_channel(target, anonymous.credentials(target)) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            replies = [r async for r in reflection.ServerReflectionInfo(iter([request]))]
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    services = {s.name for s in replies[0].list_services_response.service}
    assert "hotspot.v1.PermitService" in services


async def test_the_caller_name_is_the_client_id(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    """An authenticated caller's grants carry its name, whatever client_id it sends: the log of
    an abandoned permit (the one place the core names clients) says who held it."""
    settings = replace(pki.settings(mtls=False, http=False), policy=PermitPolicy(lease=0.2))
    caplog.set_level(logging.WARNING)
    seen = AbandonedPermits()
    logging.getLogger().addHandler(seen)
    try:
        async with serving(settings) as server:
            async with permit_stub(server, pki.token_security("acquirer")) as stub:
                request = pb.AcquireRequest(fixture_id="fx-named", client_id="pretends-to-be-root")
                await stub.Acquire(request, timeout=TIMEOUT)
            await asyncio.wait_for(seen.logged.wait(), TIMEOUT)  # 0.2 s after the grant
    finally:
        logging.getLogger().removeHandler(seen)
    assert [getattr(r, "client_id", None) for r in seen.records] == ["acquirer"]


class AbandonedPermits(logging.Handler):
    """Keeps the `permit_abandoned` records; the core logs them on the event loop's thread."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.logged = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", "") == "permit_abandoned":
            self.records.append(record)
            self.logged.set()


# -- HTTP ------------------------------------------------------------------------------------

READ_ENDPOINTS = ["/health/hot-spots", "/health/hot-spots/stream", "/metrics", "/dashboard"]
PROBES = ["/healthz", "/readyz"]


async def http_get(
    url: str, context: object, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """Status and the start of the body (one event of a stream)."""
    connector = aiohttp.TCPConnector(ssl=context)  # type: ignore[arg-type]
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, headers=headers or {}, timeout=aiohttp.ClientTimeout(TIMEOUT)) as reply,
    ):
        if reply.content_type == "text/event-stream":
            return reply.status, (await reply.content.readline()).decode()
        return reply.status, await reply.text()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", READ_ENDPOINTS + PROBES)
async def test_http_matrix(pki: Pki, mode: str, path: str) -> None:
    async with serving(pki.settings(mtls=mode == "mtls")) as server:
        url = f"{server.http_url}{path}"
        answers = {}
        for identity, caller in (
            ("none", None),
            ("wrong role", "acquirer"),
            ("right role", "reader"),
        ):
            if mode == "tls+token":
                headers = {"Authorization": f"Bearer {pki.tokens[caller]}"} if caller else {}
                answers[identity] = await http_get(url, pki.http_context(), headers)
            else:
                answers[identity] = await http_get(url, pki.http_context(caller))
    codes = {identity: status for identity, (status, _) in answers.items()}
    if path in PROBES:
        assert codes == {"none": 200, "wrong role": 200, "right role": 200}
        return
    assert codes == {"none": 401, "wrong role": 403, "right role": 200}
    assert '"error":"unauthenticated"' in answers["none"][1].replace(" ", "")
    assert "caller 'acquirer' may not GET" in answers["wrong role"][1]
    assert "needs the role 'read-stats'" in answers["wrong role"][1]


async def test_http_takes_the_token_as_a_basic_password_for_browsers(pki: Pki) -> None:
    async with serving(pki.settings(mtls=False)) as server:
        basic = base64.b64encode(f"anyone:{pki.tokens['reader']}".encode()).decode()
        ok = await http_get(
            f"{server.http_url}/dashboard", pki.http_context(), {"Authorization": f"Basic {basic}"}
        )
        refused = await http_get(f"{server.http_url}/dashboard", pki.http_context())
    assert ok[0] == 200
    assert refused[0] == 401
