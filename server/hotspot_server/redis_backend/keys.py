"""Where the Redis backend keeps things: every key under one shard's hash tag.

A script may only touch keys of one slot in a Redis Cluster, and each fixture operation is one
script over the fixture's keys and the fleet's rows it changes (tracked fixtures, heat, totals,
hold samples, per-caller counts, raised alerts, the permit and request indexes). So fixtures
are grouped into shards by a hash of their id, and each shard keeps its own fleet rows beside
its fixtures, all under the shard's tag: one script, one slot. Readers of the fleet's view
merge the shards' rows. One shard (single-node Redis, Sentinel) is exactly one fleet. With
several, the counts behind the fleet-wide caps are the fleet ledger's (ledger.lua), under a tag
of its own; each shard keeps an outbox of the counts it lowered, for the ledger.
"""

from __future__ import annotations

import itertools
import zlib

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

MAX_SHARDS = 256
CLUSTER_SHARDS = 16
"""Shards of a Cluster unless its URL says otherwise: enough to spread over a few primaries."""
_FIXTURE_KEYS = ("s", "held", "rel", "p", "exp", "h", "q", "t", "dl", "tl", "done")
_SHARD_KEYS = (
    "fixtures",  # zset: every tracked fixture, scored by when it is due for a look
    "heat",
    "totals",
    "holds",
    "callers",
    "hot",
    "permits",  # hash: permit id -> its fixture
    "requests",
    "released",
    "released_order",
    "outbox",  # hash: seq -> the fleet counts a script lowered (ledger.lua); n, e: last seq, epoch
)
_REQUESTS = _SHARD_KEYS.index("requests")
_PERMITS = _SHARD_KEYS.index("permits")
_RELEASED = _SHARD_KEYS.index("released")
_OUTBOX = _SHARD_KEYS.index("outbox")
LEDGER_PREFIX = "hotspot:{fleet}:"
"""The fleet ledger's hash tag (ledger.lua): its own slot, apart from every shard's."""
_LEDGER_KEYS = ("counts", "pending", "pending_at", "applied")


def _tag(shard: int, shards: int) -> str:
    """A hash tag whose slot lies in the shard's own equal part of the slot space, so the
    shards spread evenly over a Cluster's nodes however they split the slots."""
    low = shard * REDIS_CLUSTER_HASH_SLOTS // shards
    high = (shard + 1) * REDIS_CLUSTER_HASH_SLOTS // shards
    for attempt in itertools.count():
        tag = f"{shard}.{attempt}"
        if low <= key_slot(tag.encode()) < high:
            return tag
    raise AssertionError("unreachable")


class KeyLayout:
    """The keys of `shards` shards. Every replica of a fleet must use the same count."""

    def __init__(self, shards: int = 1) -> None:
        if not 1 <= shards <= MAX_SHARDS:
            raise ValueError(f"shards must be 1 to {MAX_SHARDS}, got {shards}")
        self.shards = shards
        self.fleet = shards > 1
        """Whether the fleet-wide counts live in the fleet ledger (they are a shard's own when
        there is one shard)."""
        self._prefixes = [f"hotspot:{{{_tag(shard, shards)}}}:" for shard in range(shards)]

    def shard_of(self, fixture_id: str) -> int:
        return zlib.crc32(fixture_id.encode()) % self.shards

    def script_keys(self, fixture_id: str) -> list[str]:
        """The KEYS of a fixture's script (common.lua): its own keys, then its shard's rows."""
        return self._keys(self.shard_of(fixture_id), fixture_id)

    def shard_script_keys(self, shard: int) -> list[str]:
        """The KEYS of a script over a shard's rows alone (overview.lua)."""
        return self._keys(shard, "-")

    def _keys(self, shard: int, fixture_id: str) -> list[str]:
        prefix = self._prefixes[shard]
        return [f"{prefix}f:{fixture_id}:{name}" for name in _FIXTURE_KEYS] + [
            prefix + name for name in _SHARD_KEYS
        ]

    @property
    def probe(self) -> str:
        """A key written only to learn whether Redis takes writes again (see sweep)."""
        return self._prefixes[0] + "write-probe"

    def requests(self, shard: int) -> str:
        return self._prefixes[shard] + _SHARD_KEYS[_REQUESTS]

    def permits(self, shard: int) -> str:
        return self._prefixes[shard] + _SHARD_KEYS[_PERMITS]

    def released(self, shard: int) -> str:
        return self._prefixes[shard] + _SHARD_KEYS[_RELEASED]

    def outbox(self, shard: int) -> str:
        return self._prefixes[shard] + _SHARD_KEYS[_OUTBOX]

    def reservation(self, shard: int, reservation_id: str) -> str:
        """Where a shard notes a fleet reservation it used or revoked (acquire.lua, revoke.lua)."""
        return f"{self._prefixes[shard]}r:{reservation_id}"

    @staticmethod
    def ledger_keys() -> list[str]:
        """The KEYS of ledger.lua: the fleet's counts, pending reservations, applied outboxes."""
        return [LEDGER_PREFIX + name for name in _LEDGER_KEYS]

    def permit_id(self, fixture_id: str, token: str) -> str:
        """A permit id that names its fixture's shard: a release finds the shard from it."""
        return f"{self.shard_of(fixture_id)}.{token}"

    def permit_shard(self, permit_id: str) -> int | None:
        """The shard a permit id names; None for an id this layout never made."""
        shard, dot, _ = permit_id.partition(".")
        if not (dot and shard.isascii() and shard.isdigit()) or int(shard) >= self.shards:
            return None
        return int(shard)
