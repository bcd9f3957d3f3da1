"""The Containerfile's build inputs, checked without building (test_container.py builds it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_podman_and_docker_ignore_the_same_files() -> None:
    assert (ROOT / ".containerignore").read_text() == (ROOT / ".dockerignore").read_text()


def test_the_context_leaves_out_the_venv_git_and_caches() -> None:
    ignored = set((ROOT / ".containerignore").read_text().split())
    assert {".git", ".venv", "**/__pycache__", ".mypy_cache", ".pytest_cache", "tests"} <= ignored


def test_installs_with_the_tested_versions_and_a_replaceable_base() -> None:
    text = (ROOT / "Containerfile").read_text()
    assert re.search(r"^ARG BASE=localhost/bookworm-py:latest$", text, re.M)
    assert re.search(r"^FROM \$\{BASE\}$", text, re.M)
    installs = re.findall(r"pip install [^\n]*", text)
    assert installs
    assert all("-c constraints.txt" in line for line in installs)
