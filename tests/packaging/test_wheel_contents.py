"""What the published wheels hold: their packages and metadata, and nothing from development."""

from __future__ import annotations

import re
import zipfile
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

import pytest

from tests.packaging.conftest import Wheels

pytestmark = pytest.mark.slow

CLIENT_PACKAGES = {"hotspot", "hotspot_core", "hotspot_client", "hotspot_warmer", "hotspot_load"}
SERVER_PACKAGES = {"hotspot_server"}
# Development-only code that must stay in the repository.
NEVER_SHIPPED = {"tests", "fake_optic_odds", "examples", "bench", "protos"}


def names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def top_level_packages(wheel: Path) -> set[str]:
    return {n.split("/")[0] for n in names(wheel) if ".dist-info/" not in n}


def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as z:
        (path,) = (n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return HeaderParser().parsestr(z.read(path).decode())


def wheel_of(wheels: Wheels, which: str) -> Path:
    return wheels.client if which == "client" else wheels.server


def test_client_wheel_holds_the_client_the_core_and_the_stubs(wheels: Wheels) -> None:
    assert top_level_packages(wheels.client) == CLIENT_PACKAGES
    assert "hotspot/v1/permits_pb2.py" in names(wheels.client)
    assert "hotspot/v1/permits_pb2_grpc.pyi" in names(wheels.client)


def test_server_wheel_holds_only_the_server(wheels: Wheels) -> None:
    assert top_level_packages(wheels.server) == SERVER_PACKAGES
    assert "hotspot_server/http/dashboard.html" in names(wheels.server)


@pytest.mark.parametrize("which", ["client", "server"])
def test_no_tests_no_fakes(wheels: Wheels, which: str) -> None:
    wheel = wheel_of(wheels, which)
    shipped = [n for n in names(wheel) if set(re.split(r"[/.-]", n)) & NEVER_SHIPPED]
    assert shipped == []
    assert not any(re.search(r"(^|/)(test_[^/]*|conftest)\.py$", n) for n in names(wheel))
    entry_points = [n for n in names(wheel) if n.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(wheel) as z:
        scripts = "".join(z.read(n).decode() for n in entry_points)
    assert "fake" not in scripts


@pytest.mark.parametrize("which", ["client", "server"])
def test_every_package_is_typed(wheels: Wheels, which: str) -> None:
    wheel = wheel_of(wheels, which)
    missing = {p for p in top_level_packages(wheel) if f"{p}/py.typed" not in names(wheel)}
    assert missing == set(), f"no py.typed in {sorted(missing)}"


@pytest.mark.parametrize("which", ["client", "server"])
def test_license_is_in_the_metadata(wheels: Wheels, which: str) -> None:
    wheel = wheel_of(wheels, which)
    meta = metadata(wheel)
    assert meta["License-Expression"] == "MIT"
    assert meta["License-File"] == "LICENSE"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names(wheel))


@pytest.mark.parametrize("which", ["client", "server"])
def test_grpcio_is_asked_for_by_range_not_pinned(wheels: Wheels, which: str) -> None:
    requires = metadata(wheel_of(wheels, which)).get_all("Requires-Dist") or []
    grpc = [r for r in requires if re.match(r"grpcio([-\w]*)\b", r) and "extra ==" not in r]
    assert grpc, requires
    # An exact pin would fix every user's grpcio; the tested version lives in constraints.txt.
    assert not [r for r in grpc if "==" in r], grpc


def test_client_depends_only_on_grpc_and_protobuf(wheels: Wheels) -> None:
    requires = metadata(wheels.client).get_all("Requires-Dist") or []
    base = {re.split(r"[<>=!~; \[]", r)[0].lower() for r in requires if "extra ==" not in r}
    assert base == {"grpcio", "grpcio-status", "protobuf", "googleapis-common-protos"}
