"""`hotspot-server`: run the permit service."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from hotspot_server.logs import configure_logging
from hotspot_server.server import serve
from hotspot_server.settings import SettingsError, command_line


def main(argv: Sequence[str] | None = None) -> None:
    """A bad start is one line on stderr, never a traceback: exit 2 for a setting the
    operator got wrong, 1 for the machine (a port taken, a file unreadable)."""
    settings, source = command_line(argv)
    configure_logging(settings.log_format, settings.log_level)
    try:
        asyncio.run(serve(settings, reload=source.resolve))
    except SettingsError as error:  # found only at start, e.g. an unknown backend
        sys.stderr.write(f"hotspot-server: error: {error}\n")
        sys.exit(2)
    except OSError as error:
        sys.exit(f"hotspot-server: {error}")
