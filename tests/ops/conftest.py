"""The in-process server with its HTTP side (tests/visibility), for the operator-facing tests."""

from tests.visibility.conftest import start_visible as start_visible
