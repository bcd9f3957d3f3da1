"""The in-process server with its HTTP side (tests/visibility), for the HTTP hygiene tests."""

from tests.visibility.conftest import start_visible as start_visible
