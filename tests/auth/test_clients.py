"""The client library and the `hotspot` command against a server that asks who is calling."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from hotspot_client import PermitClient, SyncPermitClient
from hotspot_client.channel_options import ChannelSecurity
from hotspot_client.console import cli
from hotspot_client.errors import PermitError
from tests.auth.conftest import Pki, serving


async def test_the_async_client_over_tls_with_a_token(pki: Pki) -> None:
    async with serving(pki.settings(mtls=False, http=False)) as server:
        security = pki.token_security("acquirer")
        async with (
            PermitClient(server.address, security=security) as client,
            client.permit("fx-client") as permit,
        ):
            assert permit.permit_id
        async with PermitClient(server.address, security=pki.token_security("reader")) as client:
            with pytest.raises(PermitError) as refused:
                await client.acquire("fx-client")
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "needs the role 'acquire'" in refused.value.message


async def test_the_sync_client_over_mtls(pki: Pki) -> None:
    def take_one() -> str:
        security = pki.certificate_security("acquirer")
        with (
            SyncPermitClient(server.address, security=security) as client,
            client.permit("fx-client") as permit,
        ):
            return permit.permit_id

    async with serving(pki.settings(mtls=True, http=False)) as server:
        assert await asyncio.to_thread(take_one)


async def test_a_token_alone_to_a_loopback_server_in_plain_text(pki: Pki) -> None:
    """gRPC sends call credentials only on a secure channel; on the loopback, local
    credentials count as one, so a server without TLS can still take tokens there."""
    settings = replace(pki.settings(mtls=False, http=False), tls_cert=None, tls_key=None)
    async with serving(settings) as server:
        security = ChannelSecurity(token=pki.tokens["acquirer"])
        async with PermitClient(server.address, security=security) as client:
            permit = await client.acquire("fx-client")
            await client.release(permit)
        async with PermitClient(server.address) as anonymous:
            with pytest.raises(PermitError) as refused:
                await anonymous.acquire("fx-client")
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED


async def test_security_is_for_a_channel_the_client_opens() -> None:
    with pytest.raises(ValueError, match="a given one has its own"):
        PermitClient(channel=grpc.aio.insecure_channel("127.0.0.1:1"), security=ChannelSecurity())
    with pytest.raises(ValueError, match="cert_file and key_file go together"):
        ChannelSecurity(cert_file=Path("client.pem"))


async def test_the_hotspot_command_takes_the_same_options(
    pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = pki.directory / "reader.token"
    token_file.write_text(pki.tokens["reader"] + "\n")  # as `echo` writes it
    cert, key = pki.client_files("reader")
    async with serving(pki.settings(mtls=True, http=False)) as server:
        mtls_address = server.address
        common = ["--target", server.address, "--tls-ca", str(pki.ca_file)]
        await asyncio.to_thread(
            cli.main, [*common, "--tls-cert", str(cert), "--tls-key", str(key), "stats", "--json"]
        )
        by_certificate = json.loads(capsys.readouterr().out)
        acquirer_cert, acquirer_key = pki.client_files("acquirer")
        with pytest.raises(SystemExit) as refused:
            await asyncio.to_thread(
                cli.main,
                [
                    *common,
                    "--tls-cert",
                    str(acquirer_cert),
                    "--tls-key",
                    str(acquirer_key),
                    "stats",
                ],
            )
    async with serving(pki.settings(mtls=False, http=False)) as server:
        common = ["--target", server.address, "--tls-ca", str(pki.ca_file)]
        await asyncio.to_thread(
            cli.main, [*common, "--token-file", str(token_file), "stats", "--json"]
        )
        by_token = json.loads(capsys.readouterr().out)
    assert "totals" in by_certificate
    assert "totals" in by_token
    assert str(refused.value.code) == (
        f"hotspot: {mtls_address} answered PERMISSION_DENIED: caller 'acquirer' may not call "
        "hotspot.v1.PermitService/Stats: it needs the role 'read-stats'"
    )
