"""The rule every request id follows: a caller's own name for one Acquire."""

from __future__ import annotations

import re

from hotspot_core.errors import InvalidArgument

REQUEST_ID_RULE = "request_id must be 1 to 64 characters of [A-Za-z0-9._:-]"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}", re.ASCII)


def check_request_id(request_id: str) -> str:
    if _REQUEST_ID.fullmatch(request_id) is None:
        raise InvalidArgument(f"{REQUEST_ID_RULE}; got {request_id[:72]!r}", field="request_id")
    return request_id
