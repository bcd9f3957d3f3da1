"""hotspot-warmer: classify fixtures, and keep the odds of major ones warm in the shared cache.

It polls Optic Odds' /fixtures (no permit), classifies each fixture with TOML rules,
and from `lead` before kick-off until the game ends refreshes the configured odds
into the cache, with permits taken only when a slot is free (max_wait=0) and at a
cadence within a share of the fixture's budget.
"""
