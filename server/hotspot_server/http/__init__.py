"""The HTTP side of the permit server: hot-spot JSON, health, Prometheus metrics, the dashboard."""
