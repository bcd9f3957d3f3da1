"""The odds cache: read-through, coalesced, stale-while-revalidate; memory:// or redis://.

cache = OddsCache.from_url("redis://127.0.0.1:6379/0")   # or memory://
async with OpticOddsClient(permits, api_key=KEY, cache=cache) as odds: ...
"""

from hotspot_client.optic_odds.cache.entry import CacheEntry
from hotspot_client.optic_odds.cache.freshness import Freshness, FreshnessRules
from hotspot_client.optic_odds.cache.key import cache_key
from hotspot_client.optic_odds.cache.memory_store import MemoryStore
from hotspot_client.optic_odds.cache.metrics import CacheEvent, CacheMetrics
from hotspot_client.optic_odds.cache.open_store import open_cache_store
from hotspot_client.optic_odds.cache.read_through import Fetched, OddsCache, Served, WallClock
from hotspot_client.optic_odds.cache.store import CacheStore, CacheUnavailable

__all__ = [
    "CacheEntry",
    "CacheEvent",
    "CacheMetrics",
    "CacheStore",
    "CacheUnavailable",
    "Fetched",
    "Freshness",
    "FreshnessRules",
    "MemoryStore",
    "OddsCache",
    "Served",
    "WallClock",
    "cache_key",
    "open_cache_store",
]
