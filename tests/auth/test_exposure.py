"""No open door on the network unless asked for: each refusal exits 2 with one line, before
anything is bound. (Only the refusals run here: no test serves on a non-loopback address.)"""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from hotspot_server.settings import Settings
from tests.auth.conftest import Pki, serving

SERVER = [sys.executable, "-m", "hotspot_server", "--state-dir", "none"]


def refused(*args: str) -> str:
    """The one line a start that cannot go ahead writes; asserts exit status 2."""
    process = subprocess.run([*SERVER, *args], capture_output=True, text=True, timeout=30)
    assert process.returncode == 2, process.stderr
    lines = process.stderr.splitlines()
    assert len(lines) == 1, process.stderr
    assert process.stdout == ""
    return lines[0]


def test_every_interface_without_identity_is_refused() -> None:
    line = refused("--listen", "0.0.0.0:0", "--http", "off")
    assert line == (
        "hotspot-server: error: 0.0.0.0:0 can be reached from other machines and no caller has "
        "to say who it is: give auth_tokens (and tls_cert, tls_key), or insecure to serve anyone "
        "(see --help)"
    )


def test_the_http_side_on_every_interface_is_refused_too() -> None:
    line = refused("--listen", "127.0.0.1:0", "--http", "[::]:0")
    assert "[::]:0 can be reached from other machines" in line


def test_tokens_in_clear_text_over_the_network_are_refused(pki: Pki) -> None:
    line = refused("--listen", "0.0.0.0:0", "--http", "off", "--auth-tokens", str(pki.callers_file))
    assert "bearer tokens would reach 0.0.0.0:0 in clear text: give tls_cert and tls_key" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "server.pem"], "tls_cert and tls_key go together"),
        (["--tls-client-ca", "ca.pem"], "tls_client_ca needs tls_cert and tls_key"),
        (
            ["--tls-cert", "s.pem", "--tls-key", "s.key", "--tls-client-ca", "ca.pem"],
            "auth_tokens (the callers file) grants their roles",
        ),
        (["--insecure", "--insecure=1"], "ignored explicit argument"),
    ],
)
def test_security_settings_that_do_not_go_together(args: list[str], message: str) -> None:
    assert message in refused("--listen", "127.0.0.1:0", "--http", "off", *args)


def test_a_broken_callers_file_is_refused_at_start(pki: Pki) -> None:
    pki.callers_file.write_text('[callers.x]\nroles = ["acquire"]\ntoken_sha256 = "abc"\n')
    line = refused(
        "--listen", "127.0.0.1:0", "--http", "off", "--auth-tokens", str(pki.callers_file)
    )
    assert line.startswith("hotspot-server: error: ")
    assert "callers.x: token_sha256 is a sha256 hex digest" in line


def test_insecure_lifts_the_refusal_in_every_spelling() -> None:
    """Checked on the settings alone: serving on 0.0.0.0 is not something tests do."""
    from hotspot_server.settings import load_settings

    for argv, environ in (
        (["--insecure"], {}),
        ([], {"HOTSPOT_INSECURE": "true"}),
    ):
        settings = load_settings(["--listen", "0.0.0.0:50051", "--http", "off", *argv], environ)
        assert settings.insecure is True


async def test_an_open_server_says_so_at_start(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with serving(Settings(listen="127.0.0.1:0", http="127.0.0.1:0")) as server:
        addresses = f"{server.address} and {server.http_url}"
    warnings = [r.getMessage() for r in caplog.records if getattr(r, "event", "") == "auth_open"]
    assert warnings == [
        f"no caller identity (no --auth-tokens): anyone who reaches {addresses} may acquire, "
        "release, pause fixtures and read stats"
    ]
