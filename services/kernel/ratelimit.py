"""A sliding-window rate limit per key, in process memory (per replica; see the issue notes)."""

from __future__ import annotations

import math
from collections import defaultdict, deque


class RateLimit:
    """At most ``limit`` hits per ``window_s`` for each key."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def hit(self, key: str, now: float) -> int | None:
        """Count a hit; None if allowed, else the whole seconds to wait (for ``Retry-After``)."""
        hits = self._hits[key]
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1, math.ceil(hits[0] + self.window_s - now))
        hits.append(now)
        return None
