"""The Optic Odds v3 API, every fixture-specific call under a permit per fixture."""

from hotspot_client.optic_odds.client import DEFAULT_BASE_URL, OpticOddsClient
from hotspot_client.optic_odds.errors import (
    OpticOddsError,
    OpticOddsRequestInvalid,
    UpstreamBadResponse,
    UpstreamConnectionLost,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnauthorized,
    UpstreamUnreachable,
)
from hotspot_client.optic_odds.models import (
    Category,
    Competitor,
    Fixture,
    FixtureOdds,
    Odd,
    OpticOddsResponse,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "Category",
    "Competitor",
    "Fixture",
    "FixtureOdds",
    "Odd",
    "OpticOddsClient",
    "OpticOddsError",
    "OpticOddsRequestInvalid",
    "OpticOddsResponse",
    "UpstreamBadResponse",
    "UpstreamConnectionLost",
    "UpstreamError",
    "UpstreamHTTPError",
    "UpstreamRateLimited",
    "UpstreamTimeout",
    "UpstreamUnauthorized",
    "UpstreamUnreachable",
]
