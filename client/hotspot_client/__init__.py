"""Client library for the hotspot permit service."""
