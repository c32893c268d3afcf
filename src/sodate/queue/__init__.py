"""Durable jobs and timers: rows with a due time, an idempotency key, retries and a dead letter."""
