"""Whether each consumer makes progress: the evidence behind /health/live.

A consumer "has lag" while a message it received is not committed yet (in its handler, waiting
for a redelivery, or its commit failing); its progress is its last commit. Lag with no progress
for ``liveness_stall_s`` means the process is stuck (a commit that never returns, a handler that
never ends): liveness fails and the orchestrator restarts it. An idle consumer is alive however
long ago it last committed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class ConsumerProgress:
    name: str
    last_progress: float  # time.monotonic() of the last commit (or of the start)
    waiting_since: float | None = None  # since when the oldest uncommitted message waits
    said: bool = False  # its stall was logged (one line per stall, not one per probe)


class Progress:
    """Kept by the consumer (``received``/``committed``), read by the liveness probe (``stalled``)."""

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self._consumers: dict[int, ConsumerProgress] = {}

    def received(self, consumer: object, name: str) -> None:
        now = time.monotonic()
        progress = self._consumers.setdefault(id(consumer), ConsumerProgress(name, now))
        if progress.waiting_since is None:
            progress.waiting_since = now

    def committed(self, consumer: object) -> None:
        progress = self._consumers.get(id(consumer))
        if progress is not None:
            if progress.said:
                log.info("consumer makes progress again", extra={"fields": {"consumer": progress.name}})
            progress.last_progress, progress.waiting_since, progress.said = time.monotonic(), None, False

    def report(self) -> list[dict]:
        """Each consumer: whether it has lag and how long ago it last made progress."""
        now = time.monotonic()
        return [{"consumer": p.name, "has_lag": p.waiting_since is not None,
                 "last_progress_s_ago": round(now - p.last_progress, 1)} for p in self._consumers.values()]

    def stalled(self) -> list[str]:
        """Why the process is stuck (empty: it is not); a stall is logged once, when first seen."""
        now, reasons = time.monotonic(), []
        for p in self._consumers.values():
            if p.waiting_since is None or now - p.waiting_since < self.stall_s:
                continue
            reason = (f"consumer {p.name} has lag and made no progress for {now - p.last_progress:.0f} s "
                      f"(limit {self.stall_s:g} s)")
            reasons.append(reason)
            if not p.said:
                p.said = True
                log.error("liveness fails: " + reason, extra={"fields": {"consumer": p.name}})
        return reasons
