"""`hotspot-server`: run the permit service."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from hotspot_server.logs import configure_logging
from hotspot_server.server import serve
from hotspot_server.settings import load_settings


def main(argv: Sequence[str] | None = None) -> None:
    settings = load_settings(argv)
    configure_logging(settings.log_format)
    try:
        asyncio.run(serve(settings))
    except OSError as error:
        # A port already taken is the operator's to fix, not a crash: one line, exit 1.
        sys.exit(f"hotspot-server: {error}")
