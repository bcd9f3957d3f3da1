"""The rule every fixture id follows."""

from __future__ import annotations

import re

from hotspot_core.errors import InvalidFixtureId

FIXTURE_ID_RULE = "fixture_id must be 1 to 128 characters of [A-Za-z0-9._:-]"
_FIXTURE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def check_fixture_id(fixture_id: str) -> str:
    if _FIXTURE_ID.fullmatch(fixture_id) is None:
        raise InvalidFixtureId(f"{FIXTURE_ID_RULE}; got {fixture_id[:140]!r}", field="fixture_id")
    return fixture_id
