"""A fake Optic Odds v3 HTTP server for tests and demos."""
