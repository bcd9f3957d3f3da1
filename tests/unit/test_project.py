"""Project rules that code review would otherwise have to catch."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "client" / "hotspot_core"
CLIENT_DISTRIBUTION = ROOT / "client"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_the_core_imports_nothing_from_grpc_or_protobuf(path: Path) -> None:
    forbidden = {"grpc", "grpc_status", "google", "hotspot"}
    bad = {m for m in imported_modules(path) if m.split(".")[0] in forbidden}
    assert not bad, f"{path.name} imports {sorted(bad)}: the core must stay transport-free"


@pytest.mark.parametrize(
    "path",
    sorted(p for p in CLIENT_DISTRIBUTION.rglob("*.py") if "_pb2" not in p.name),
    ids=lambda p: str(p.relative_to(CLIENT_DISTRIBUTION)),
)
def test_the_client_distribution_never_imports_the_server(path: Path) -> None:
    bad = {m for m in imported_modules(path) if m.split(".")[0] == "hotspot_server"}
    assert not bad, f"{path} imports {sorted(bad)}: the client must install without the server"


def test_the_license_ships_with_both_distributions() -> None:
    assert (ROOT / "LICENSE").read_bytes() == (CLIENT_DISTRIBUTION / "LICENSE").read_bytes()


def test_generated_modules_are_fresh(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.py*"))
    assert generated, "protoc wrote nothing"
    stale = [
        str(rel)
        for rel in generated
        if not (ROOT / "client" / rel).exists()
        or (ROOT / "client" / rel).read_bytes() != (tmp_path / rel).read_bytes()
    ]
    assert not stale, f"stale generated modules {stale}: run `make proto` and commit"


def test_buf_lint_is_clean() -> None:
    buf = shutil.which("buf", path=str(Path(sys.executable).parent))
    assert buf is not None, "buf-bin is a dev dependency"
    result = subprocess.run([buf, "lint"], cwd=ROOT / "protos", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
