"""The API's rules on parameters, checked before any permit is taken, and the query they make.

Several values of one parameter are repeated keys (`sportsbook=A&sportsbook=B`);
httpx sends a literal `+` as `%2B`, as the API needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from hotspot_client.optic_odds.errors import OpticOddsRequestInvalid
from hotspot_client.optic_odds.models import api_time
from hotspot_core.errors import InvalidFixtureId
from hotspot_core.fixture_id import FIXTURE_ID_RULE, check_fixture_id

MAX_ODDS_FIXTURES = 5
MAX_SPORTSBOOKS = 5
MAX_RESULT_FIXTURES = 50

Query = list[tuple[str, str]]


def _listed(values: str | Sequence[str] | None) -> list[str]:
    """One value or several, in order, without repeats."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return list(dict.fromkeys(values))


def fixture_ids(values: str | Sequence[str], *, at_most: int | None) -> list[str]:
    """The fixtures a call names: 1 to `at_most` (None: any number), each a valid fixture id."""
    ids = _listed(values)
    if not ids:
        raise OpticOddsRequestInvalid("fixture_id is required", field="fixture_id")
    if at_most is not None and len(ids) > at_most:
        raise OpticOddsRequestInvalid(
            f"maximum {at_most} fixture_ids allowed, got {len(ids)}", field="fixture_id"
        )
    for fixture_id in ids:
        # The permit service holds fixture ids to this rule; breaking it after some
        # permits were granted would only waste them.
        if not isinstance(fixture_id, str):
            raise OpticOddsRequestInvalid(
                f"{FIXTURE_ID_RULE}; got {fixture_id!r}", field="fixture_id"
            )
        try:
            check_fixture_id(fixture_id)
        except InvalidFixtureId as error:
            raise OpticOddsRequestInvalid(str(error), field="fixture_id") from None
    return ids


def sportsbooks(values: str | Sequence[str]) -> list[str]:
    books = _listed(values)
    if not books or any(not isinstance(b, str) or not b.strip() for b in books):
        raise OpticOddsRequestInvalid(
            f"sportsbook is required: 1 to {MAX_SPORTSBOOKS} non-empty names", field="sportsbook"
        )
    if len(books) > MAX_SPORTSBOOKS:
        raise OpticOddsRequestInvalid(
            f"maximum {MAX_SPORTSBOOKS} sportsbooks allowed, got {len(books)}", field="sportsbook"
        )
    return books


def markets(values: str | Sequence[str] | None) -> list[str]:
    names = _listed(values)
    if any(not isinstance(m, str) or not m.strip() for m in names):
        raise OpticOddsRequestInvalid("market names must not be empty", field="market")
    return names


def repeated(key: str, values: Iterable[str]) -> Query:
    return [(key, v) for v in values]


def odds(
    fixture_id_list: list[str],
    sportsbook_names: str | Sequence[str],
    market_names: str | Sequence[str] | None,
) -> Query:
    """The query both odds endpoints share; checks the sportsbooks and markets."""
    return (
        repeated("fixture_id", fixture_id_list)
        + repeated("sportsbook", sportsbooks(sportsbook_names))
        + repeated("market", markets(market_names))
    )


def optional(**values: str | bool | int | datetime | None) -> Query:
    """The parameters given, as the API spells them (true/false, ISO 8601 with Z)."""
    query: Query = []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, datetime):
            text = api_time(value)
        else:
            text = str(value)
        query.append((key, text))
    return query
