"""CacheEntry: one upstream answer as the cache keeps it, and how it travels through Redis."""

from __future__ import annotations

from dataclasses import dataclass


class EntryFormatError(ValueError):
    """Bytes in the cache that are not an entry this version wrote."""


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """An upstream body with when it was fetched and how long it may be served.

    Times are Unix seconds from the cache's clock, so every replica reads one age.
    """

    body: bytes
    """The upstream's JSON body, as received."""
    fetched_at: float
    fresh_for: float
    """Seconds after `fetched_at` during which it is served as fresh."""
    max_stale: float
    """Seconds past freshness during which it is still served (marked stale) while refreshing."""

    def age(self, now: float) -> float:
        return max(0.0, now - self.fetched_at)

    def is_fresh(self, now: float) -> bool:
        return self.age(now) <= self.fresh_for

    def is_servable(self, now: float) -> bool:
        """Fresh, or stale within the maximum staleness."""
        return self.age(now) <= self.fresh_for + self.max_stale

    @property
    def keep_for(self) -> float:
        """Seconds after fetching the entry is of any use: a store may drop it then."""
        return self.fresh_for + self.max_stale

    def to_bytes(self) -> bytes:
        # One header line and the body: one GET returns everything, with no second encoding.
        header = f"v1 {self.fetched_at!r} {self.fresh_for!r} {self.max_stale!r}\n"
        return header.encode() + self.body

    @classmethod
    def from_bytes(cls, raw: bytes) -> CacheEntry:
        header, _, body = raw.partition(b"\n")
        parts = header.split()
        if len(parts) != 4 or parts[0] != b"v1":
            raise EntryFormatError(f"not a v1 cache entry: {header[:60]!r}")
        try:
            fetched_at, fresh_for, max_stale = (float(p) for p in parts[1:])
        except ValueError:
            raise EntryFormatError(f"not a v1 cache entry: {header[:60]!r}") from None
        return cls(body, fetched_at, fresh_for, max_stale)
