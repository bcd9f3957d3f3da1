"""How long an upstream 429 asks us to wait: Retry-After first, then x-ratelimit-reset."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime


def upstream_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from a 429's headers (`now`: Unix seconds); None when neither says.

    Retry-After is delay-seconds or an HTTP date; x-ratelimit-reset is the Unix
    second at which the window resets.
    """
    value = headers.get("retry-after")
    if value is not None:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            pass  # unreadable: try the next header
    reset = headers.get("x-ratelimit-reset")
    if reset is not None:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            pass
    return None
