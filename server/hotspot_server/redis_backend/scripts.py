"""The Lua scripts' texts: each one is the package's files it needs, joined, so that a rule
(Redis's time in clock.lua, a fixture's state in common.lua) is written once."""

from __future__ import annotations

from importlib import resources


def script_text(*names: str) -> str:
    package = resources.files(__package__)
    return "".join(package.joinpath(name).read_text() for name in names)
