"""Certificates and the callers file change under a running server: the next connection, or the
next call, sees the new ones; no restart."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import grpc
import pytest

from hotspot.v1 import permits_pb2 as pb
from hotspot_client.channel_options import ChannelSecurity
from hotspot_server.transport import callers_file
from tests.auth.certificates import CertificateAuthority
from tests.auth.conftest import ROLES_OF, Pki, permit_stub, serving, write_callers
from tests.auth.test_matrix import TIMEOUT, code_of, http_get

OK = grpc.StatusCode.OK


def replace_files(pem_cert: bytes, pem_key: bytes, cert: Path, key: Path) -> None:
    """As a certificate manager does: each file written aside, then renamed over the old one."""
    for data, path in ((pem_key, key), (pem_cert, cert)):
        staging = path.with_suffix(".new")
        staging.write_bytes(data)
        os.replace(staging, path)


async def stats_code(server_address: str, security: ChannelSecurity) -> grpc.StatusCode:
    async with grpc.aio.secure_channel(
        server_address, security.credentials(server_address)
    ) as channel:
        call = channel.unary_unary(
            "/hotspot.v1.PermitService/Stats",
            request_serializer=pb.StatsRequest.SerializeToString,
            response_deserializer=pb.StatsResponse.FromString,
        )(pb.StatsRequest(top_n=1), timeout=TIMEOUT)
        return (await code_of(call))[0]


async def test_a_new_server_certificate_and_client_ca_apply_to_the_next_connection(
    pki: Pki,
) -> None:
    """The server moves to a certificate and a client CA of another authority: new connections
    need the new CA and a client certificate it signed, on gRPC and HTTP alike."""
    new_ca = CertificateAuthority("renewed CA")
    new_ca_file = pki.directory / "new-ca.pem"
    new_ca_file.write_bytes(new_ca.pem)
    reader_cert, reader_key = new_ca.client("reader").write(pki.directory, "new-reader")
    renewed = ChannelSecurity(ca_file=new_ca_file, cert_file=reader_cert, key_file=reader_key)
    async with serving(pki.settings(mtls=True)) as server:
        before = await stats_code(server.address, pki.certificate_security("reader"))
        server_pem = new_ca.server()
        replace_files(server_pem.cert, server_pem.key, pki.server_cert, pki.server_key)
        client_ca = pki.ca_file.with_suffix(".new")
        client_ca.write_bytes(new_ca.pem)
        os.replace(client_ca, pki.ca_file)  # the server's --tls-client-ca
        after = await stats_code(server.address, renewed)
        old_client = await stats_code(
            server.address,
            ChannelSecurity(new_ca_file, *pki.client_files("reader")),
        )
        http_new = ssl.create_default_context(cafile=new_ca_file)
        http_new.load_cert_chain(reader_cert, reader_key)
        http_status, _ = await http_get(f"{server.http_url}/metrics", http_new)
    assert (before, after, old_client) == (OK, OK, grpc.StatusCode.UNAVAILABLE)
    assert http_status == 200


async def test_a_broken_pair_keeps_the_certificate_read_last(pki: Pki) -> None:
    async with serving(pki.settings(mtls=False, http=False)) as server:
        other = pki.ca.server()
        # A new key beside the old certificate: they do not match.
        replace_files(pki.server_cert.read_bytes(), other.key, pki.server_cert, pki.server_key)
        code = await stats_code(server.address, pki.token_security("reader"))
    assert code == OK


async def test_the_callers_file_is_read_again_when_it_changes(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new token works and a replaced one stops working: at once on SIGHUP (apply_live), and
    on the next call once the refresh interval (1 s; 0 here, to need no waiting) has passed."""
    async with serving(pki.settings(mtls=False, http=False)) as server:
        assert await stats_code(server.address, pki.token_security("reader")) == OK
        rotated = "a-new-token-for-the-reader-0123456789"
        callers = {n: (roles, pki.tokens[n]) for n, roles in ROLES_OF.items()}
        callers["reader"] = (ROLES_OF["reader"], rotated)
        write_callers(pki.callers_file, callers)
        await server.apply_live(server.settings)  # what SIGHUP does
        on_sighup = [
            await stats_code(server.address, ChannelSecurity(pki.ca_file, token=rotated)),
            await stats_code(server.address, pki.token_security("reader")),
        ]
        monkeypatch.setattr(callers_file, "REFRESH_INTERVAL", 0.0)
        callers["reader"] = (ROLES_OF["reader"], pki.tokens["reader"])
        write_callers(pki.callers_file, callers)
        on_use = [
            await stats_code(server.address, pki.token_security("reader")),
            await stats_code(server.address, ChannelSecurity(pki.ca_file, token=rotated)),
        ]
    assert on_sighup == [OK, grpc.StatusCode.UNAUTHENTICATED]
    assert on_use == [OK, grpc.StatusCode.UNAUTHENTICATED]


async def test_a_broken_callers_file_keeps_the_callers_read_last(pki: Pki) -> None:
    async with serving(pki.settings(mtls=False, http=False)) as server:
        pki.callers_file.write_text("[callers.reader]\nroles = ['no-such-role']\n")
        await server.apply_live(server.settings)
        async with permit_stub(server, pki.token_security("reader")) as stub:
            answer = await stub.Stats(pb.StatsRequest(top_n=1), timeout=TIMEOUT)
    assert answer is not None
