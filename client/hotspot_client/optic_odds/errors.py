"""What the Optic Odds client raises besides the permit errors (hotspot_client.PermitError).

OpticOddsError                 anything from this client
├── OpticOddsRequestInvalid    a local check failed; nothing was asked of anyone (ValueError)
└── UpstreamError              the call to Optic Odds went wrong; `.fixture_ids` it named
    ├── UpstreamHTTPError      an error status; `.status_code`, `.message` (its "error")
    │   ├── UpstreamUnauthorized   401 / 403: the key is missing, wrong or lacks the product
    │   └── UpstreamRateLimited    429; `.retry_after` seconds (None when not said)
    ├── UpstreamTimeout        no answer in time (the request was sent)
    ├── UpstreamUnreachable    no connection: the request was never sent
    ├── UpstreamConnectionLost the connection broke after the request may have been sent
    └── UpstreamBadResponse    a 2xx whose body is not JSON of the documented shape
"""

from __future__ import annotations

from collections.abc import Sequence


class OpticOddsError(Exception):
    """Base of every error the Optic Odds client raises itself."""


class OpticOddsRequestInvalid(OpticOddsError, ValueError):
    """The call breaks one of the API's rules; the message names it. No permit was taken."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class UpstreamError(OpticOddsError):
    def __init__(self, message: str, *, path: str, fixture_ids: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.path = path
        self.fixture_ids = tuple(fixture_ids)


class UpstreamHTTPError(UpstreamError):
    def __init__(
        self,
        message: str,
        *,
        path: str,
        status_code: int,
        body: str,
        fixture_ids: Sequence[str] = (),
    ) -> None:
        super().__init__(message, path=path, fixture_ids=fixture_ids)
        self.status_code = status_code
        self.body = body
        """The response body as text (an Optic Odds error body is {"error": message})."""


class UpstreamUnauthorized(UpstreamHTTPError):
    pass


class UpstreamRateLimited(UpstreamHTTPError):
    def __init__(
        self,
        message: str,
        *,
        path: str,
        body: str,
        retry_after: float | None,
        fixture_ids: Sequence[str] = (),
    ) -> None:
        super().__init__(message, path=path, status_code=429, body=body, fixture_ids=fixture_ids)
        self.retry_after = retry_after
        """Seconds, from Retry-After or else x-ratelimit-reset; None when neither says."""


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamUnreachable(UpstreamError):
    pass


class UpstreamConnectionLost(UpstreamError):
    pass


class UpstreamBadResponse(UpstreamError):
    pass
