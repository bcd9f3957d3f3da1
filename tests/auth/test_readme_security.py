"""The README's Security commands work as written: its openssl and token commands make files
that a server, given its callers file, accepts."""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from hotspot.v1 import permits_pb2 as pb
from hotspot_client.channel_options import ChannelSecurity
from hotspot_server.settings import Settings
from tests.auth.conftest import permit_stub, serving
from tests.auth.test_matrix import TIMEOUT, http_get

ROOT = Path(__file__).resolve().parents[2]


def security_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Security\n", 1)[1].split("\n## ", 1)[0]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", security_section(), re.DOTALL)


@pytest.fixture
def readme_pki(tmp_path: Path) -> str:
    """Runs the README's openssl and token commands in tmp_path; the token's hash they print."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl (Debian's openssl)")
    openssl, token = blocks("sh")[:2]
    for script in (openssl, token):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"[0-9a-f]{64}\n", done.stdout), done.stdout
    return done.stdout.strip()


async def test_the_readme_commands_make_a_working_pki_and_token(
    tmp_path: Path, readme_pki: str
) -> None:
    token_hash = readme_pki
    callers = re.sub(r'token_sha256 = "[^"]*"', f'token_sha256 = "{token_hash}"', blocks("toml")[0])
    (tmp_path / "callers.toml").write_text(callers)
    settings = Settings(
        listen="127.0.0.1:0",
        http="127.0.0.1:0",
        tls_cert=tmp_path / "server.pem",
        tls_key=tmp_path / "server.key",
        tls_client_ca=tmp_path / "ca.pem",
        auth_tokens=tmp_path / "callers.toml",
    )
    odds_api = ChannelSecurity(
        tmp_path / "ca.pem", tmp_path / "odds-api.pem", tmp_path / "odds-api.key"
    )
    async with serving(settings) as server:
        async with permit_stub(server, odds_api) as stub:
            grant = await stub.Acquire(pb.AcquireRequest(fixture_id="fx-readme"), timeout=TIMEOUT)
        context = ssl.create_default_context(cafile=tmp_path / "ca.pem")
        bearer = {"Authorization": f"Bearer {(tmp_path / 'dashboard.token').read_text()}"}
        status, body = await http_get(f"{server.http_url}/health/hot-spots", context, bearer)
    assert grant.permit_id
    assert (status, '"fixture_id":"fx-readme"' in body) == (200, True)
