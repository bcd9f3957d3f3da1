"""Typed Optic Odds v3 objects: fixtures, odds, and the `data` envelope around them.

Every object keeps the fields it does not model in `extra`, so nothing the API
sends is lost, and `to_json()` gives the object back in the API's shape (a
modelled field that was absent comes back as null).
A field of the wrong type is a ResponseShapeError naming where it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, Self, TypeVar

from hotspot_client import Permit

T = TypeVar("T")


class ResponseShapeError(ValueError):
    """A body that is JSON but not of the documented shape; the message names the place."""


class _Reader:
    """Takes typed fields out of one JSON object; what is left is its extra."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise ResponseShapeError(f"{where} must be an object, got {_kind(data)}")
        self._rest: dict[str, Any] = dict(data)
        self.where = where

    def _take(self, key: str, kinds: tuple[type, ...], kind_name: str) -> Any:
        value = self._rest.pop(key, None)
        if value is None:
            return None
        # bool is an int to Python, never to JSON.
        ok = isinstance(value, bool) == (bool in kinds) and isinstance(value, kinds)
        if not ok:
            raise ResponseShapeError(f"{self.where}.{key} must be {kind_name}, got {value!r}")
        return value

    def text(self, key: str) -> str | None:
        value: str | None = self._take(key, (str,), "a string")
        return value

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise ResponseShapeError(f"{self.where}.{key} is required")
        return value

    def integer(self, key: str) -> int | None:
        value: int | None = self._take(key, (int,), "an integer")
        return value

    def number(self, key: str) -> float | None:
        value: int | float | None = self._take(key, (int, float), "a number")
        return None if value is None else float(value)

    def flag(self, key: str) -> bool | None:
        value: bool | None = self._take(key, (bool,), "true or false")
        return value

    def mapping(self, key: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self._take(key, (dict,), "an object")
        return value

    def moment(self, key: str) -> datetime | None:
        text = self.text(key)
        if text is None:
            return None
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise ResponseShapeError(
                f"{self.where}.{key} must be an ISO 8601 time, got {text!r}"
            ) from None

    def any(self, key: str) -> Any:
        return self._rest.pop(key, None)

    def one(self, key: str, parse: Callable[[object, str], T]) -> T | None:
        value = self._rest.pop(key, None)
        return None if value is None else parse(value, f"{self.where}.{key}")

    def many(self, key: str, parse: Callable[[object, str], T]) -> list[T]:
        return parse_list(self._rest.pop(key, None), f"{self.where}.{key}", parse)

    def extra(self) -> dict[str, Any]:
        return self._rest


def parse_list(value: object, where: str, parse: Callable[[object, str], T]) -> list[T]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ResponseShapeError(f"{where} must be a list, got {_kind(value)}")
    return [parse(item, f"{where}[{i}]") for i, item in enumerate(value)]


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def api_time(moment: datetime) -> str:
    """ISO 8601, UTC written with a Z as the API does."""
    text = moment.isoformat()
    return text.removesuffix("+00:00") + "Z" if moment.utcoffset() == timedelta(0) else text


def _as_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return api_time(value)
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    if isinstance(value, OpticOddsObject):
        return value.to_json()
    return value


Read = Callable[[_Reader, str], Any]
Reading = dict[str, Read]
"""A modelled field's metadata: how to take it out of the JSON object."""

TEXT: Reading = {"read": _Reader.text}
REQUIRED_TEXT: Reading = {"read": _Reader.required_text}
INTEGER: Reading = {"read": _Reader.integer}
NUMBER: Reading = {"read": _Reader.number}
FLAG: Reading = {"read": _Reader.flag}
OBJECT: Reading = {"read": _Reader.mapping}
MOMENT: Reading = {"read": _Reader.moment}
AS_IS: Reading = {"read": _Reader.any}


def one(kind: type[OpticOddsObject]) -> Reading:
    return {"read": lambda r, key: r.one(key, kind.from_json)}


def many(kind: type[OpticOddsObject]) -> Reading:
    return {"read": lambda r, key: r.many(key, kind.from_json)}


@dataclass(frozen=True, kw_only=True)
class OpticOddsObject:
    """Modelled fields are read as their metadata says; the rest land in `extra`."""

    json_name: ClassVar[str] = "object"
    """How errors name an object of this kind."""

    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    """Fields the API sent that this client does not model, as sent."""

    @classmethod
    def from_json(cls, data: object, where: str | None = None) -> Self:
        r = _Reader(data, where or cls.json_name)
        known = {f.name: f.metadata["read"](r, f.name) for f in _modelled(cls)}
        return cls(**known, extra=r.extra())

    def to_json(self) -> dict[str, Any]:
        """The object in the API's shape: modelled fields (null when absent) and extra."""
        known = {f.name: _as_json(getattr(self, f.name)) for f in _modelled(type(self))}
        return {**known, **self.extra}


def _modelled(cls: type[OpticOddsObject]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if "read" in f.metadata]


@dataclass(frozen=True, kw_only=True)
class Competitor(OpticOddsObject):
    json_name = "competitor"

    id: str | None = field(metadata=TEXT)
    name: str | None = field(metadata=TEXT)
    numerical_id: int | None = field(metadata=INTEGER)
    base_id: int | None = field(metadata=INTEGER)
    abbreviation: str | None = field(metadata=TEXT)
    logo: str | None = field(metadata=TEXT)


@dataclass(frozen=True, kw_only=True)
class Category(OpticOddsObject):
    """A fixture's sport or league: {id, name, numerical_id}."""

    json_name = "category"

    id: str | None = field(metadata=TEXT)
    name: str | None = field(metadata=TEXT)
    numerical_id: int | None = field(metadata=INTEGER)


@dataclass(frozen=True, kw_only=True)
class Odd(OpticOddsObject):
    """One selection's price at one sportsbook."""

    json_name = "odd"

    id: str = field(metadata=REQUIRED_TEXT)
    sportsbook: str | None = field(metadata=TEXT)
    market: str | None = field(metadata=TEXT)
    market_id: str | None = field(metadata=TEXT)
    name: str | None = field(metadata=TEXT)
    is_main: bool | None = field(metadata=FLAG)
    selection: str | None = field(metadata=TEXT)
    normalized_selection: str | None = field(metadata=TEXT)
    selection_line: str | None = field(metadata=TEXT)
    points: float | None = field(metadata=NUMBER)
    price: float | None = field(metadata=NUMBER)
    timestamp: float | None = field(metadata=NUMBER)
    """Epoch seconds."""
    grouping_key: str | None = field(metadata=TEXT)
    player_id: str | None = field(metadata=TEXT)
    team_id: str | None = field(metadata=TEXT)
    deep_link: dict[str, Any] | None = field(metadata=OBJECT)
    limits: dict[str, Any] | None = field(metadata=OBJECT)


@dataclass(frozen=True, kw_only=True)
class Fixture(OpticOddsObject):
    json_name = "fixture"

    id: str = field(metadata=REQUIRED_TEXT)
    numerical_id: int | None = field(metadata=INTEGER)
    game_id: str | None = field(metadata=TEXT)
    start_date: datetime | None = field(metadata=MOMENT)
    updated_at: datetime | None = field(metadata=MOMENT)
    status: str | None = field(metadata=TEXT)
    """unplayed, live, half, completed, cancelled, suspended, delayed."""
    is_live: bool | None = field(metadata=FLAG)
    has_odds: bool | None = field(metadata=FLAG)
    home_competitors: list[Competitor] = field(metadata=many(Competitor))
    away_competitors: list[Competitor] = field(metadata=many(Competitor))
    home_team_display: str | None = field(metadata=TEXT)
    away_team_display: str | None = field(metadata=TEXT)
    sport: Category | None = field(metadata=one(Category))
    league: Category | None = field(metadata=one(Category))
    tournament: Any = field(metadata=AS_IS)
    tournament_stage: Any = field(metadata=AS_IS)
    season_type: str | None = field(metadata=TEXT)
    season_year: str | None = field(metadata=TEXT)
    season_week: str | None = field(metadata=TEXT)
    result: dict[str, Any] | None = field(metadata=OBJECT)
    """Scores, once there are some (GET /fixtures/results)."""


@dataclass(frozen=True, kw_only=True)
class FixtureOdds(Fixture):
    """A fixture with its odds (GET /fixtures/odds and /fixtures/odds/historical)."""

    odds: list[Odd] = field(metadata=many(Odd))


@dataclass(frozen=True)
class OpticOddsResponse(Generic[T]):
    """The `data` envelope, parsed, with the permits the call ran under."""

    data: list[T]
    page: int | None = None
    has_more: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    """Envelope fields this client does not model."""
    permits: tuple[Permit, ...] = ()
    """One per fixture for a fixture-specific call, in the order the fixtures were named.

    Empty for an answer read through the odds cache: its fetch took the permits."""
    cached: bool = False
    """Read through the odds cache (fresh from the upstream or not: see `age`)."""
    age: float = 0.0
    """Seconds since the upstream answered (0 for an uncached call)."""
    stale: bool = False
    """Past its freshness: served within the maximum staleness while a refresh runs or fails."""
    fresh_for: float = 0.0
    """Seconds after the upstream answered during which a cached answer is fresh."""


def parse_envelope(
    body: object, parse: Callable[[object, str], T], permits: tuple[Permit, ...]
) -> OpticOddsResponse[T]:
    r = _Reader(body, "body")
    data = r.any("data")
    if not isinstance(data, list):
        raise ResponseShapeError(f"body.data must be a list, got {_kind(data)}")
    return OpticOddsResponse(
        data=parse_list(data, "body.data", parse),
        page=r.integer("page"),
        has_more=r.flag("has_more"),
        extra=r.extra(),
        permits=permits,
    )
