"""Per-workspace rate limits on the tracking API, counted in messages.

A token bucket per workspace, kept in this process's memory: a limit protects this process,
and losing the buckets on restart loses nothing durable.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimited(Exception):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"rate limit exceeded; retry after {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class MessageRateLimiter:
    """Allows `rate` messages per second per workspace, with bursts of `burst` messages."""

    def __init__(
        self, rate: float, burst: float, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._monotonic = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, workspace_id: str, messages: int) -> None:
        """Spend `messages` tokens or raise RateLimited without spending any.

        A request larger than the burst is let through from a full bucket, which it leaves in
        debt: else a client whose batches exceed the burst would be refused for ever.
        """
        if self.rate <= 0:
            return
        now = self._monotonic()
        with self._lock:
            tokens, since = self._buckets.get(workspace_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - since) * self.rate)
            needed = min(messages, self.burst)
            if needed > tokens:
                self._buckets[workspace_id] = (tokens, now)
                raise RateLimited(max(1, math.ceil((needed - tokens) / self.rate)))
            self._buckets[workspace_id] = (tokens - messages, now)
