"""Health, metrics, the clock endpoints and the heartbeats of background services."""
