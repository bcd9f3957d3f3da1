"""What this build is: the versions behind --version and hotspot_build_info."""

from __future__ import annotations

import platform
from importlib import metadata

import grpc

SERVER_DISTRIBUTION = "hotspot-permits"
CLIENT_DISTRIBUTION = "hotspot-permits-client"


def distribution_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
        return "unknown"


def build_info() -> dict[str, str]:
    """The labels of hotspot_build_info."""
    return {
        "version": distribution_version(SERVER_DISTRIBUTION),
        "client_version": distribution_version(CLIENT_DISTRIBUTION),
        "python": platform.python_version(),
        "grpc": grpc.__version__,
    }


def version_line(prog: str) -> str:
    info = build_info()
    return (
        f"{prog} {info['version']} ({SERVER_DISTRIBUTION}; {CLIENT_DISTRIBUTION} "
        f"{info['client_version']}, Python {info['python']}, grpcio {info['grpc']})"
    )
