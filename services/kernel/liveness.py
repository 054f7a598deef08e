"""Whether each consumer makes progress: the evidence behind /health/live.

A consumer "has lag" while a message it received is not committed yet (queued, in its handler,
waiting for a redelivery, or its commit failing); its progress is its last commit. Lag with no progress
for ``liveness_stall_s`` means the process is stuck (a commit that never returns, a handler that
never ends): liveness fails and the orchestrator restarts it. An idle consumer is alive however
long ago it last committed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class ConsumerProgress:
    name: str
    last_progress: float  # time.monotonic() of the last commit (or of the start)
    #: (topic, partition) -> since when its oldest uncommitted message waits, and the last offset received
    waiting: dict[tuple[str, int], tuple[float, int]] = field(default_factory=dict)
    said: bool = False  # its stall was logged (one line per stall, not one per probe)


class Progress:
    """Kept by the consumer (``received``/``committed``), read by the liveness probe (``stalled``).

    Per partition, since a consumer's partitions are handled side by side: one stuck partition is
    a stuck consumer even while the others commit.
    """

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self._consumers: dict[int, ConsumerProgress] = {}

    def received(self, consumer: object, name: str, message) -> None:
        now, key, offset = time.monotonic(), (message.topic(), message.partition()), message.offset()
        progress = self._consumers.setdefault(id(consumer), ConsumerProgress(name, now))
        since, _ = progress.waiting.get(key, (now, offset))
        progress.waiting[key] = (since, offset)

    def committed(self, consumer: object, message) -> None:
        progress = self._consumers.get(id(consumer))
        if progress is None:
            return
        now, key, offset = time.monotonic(), (message.topic(), message.partition()), message.offset()
        if progress.said:
            log.info("consumer makes progress again", extra={"fields": {"consumer": progress.name}})
        progress.last_progress, progress.said = now, False
        _, last_received = progress.waiting.get(key, (now, offset))
        if offset >= last_received:
            progress.waiting.pop(key, None)
        else:  # the next one, received meanwhile, could not start before this one was done
            progress.waiting[key] = (now, last_received)

    def report(self) -> list[dict]:
        """Each consumer: whether it has lag and how long ago it last made progress."""
        now = time.monotonic()
        return [{"consumer": p.name, "has_lag": bool(p.waiting),
                 "last_progress_s_ago": round(now - p.last_progress, 1)} for p in self._consumers.values()]

    def stalled(self) -> list[str]:
        """Why the process is stuck (empty: it is not); a stall is logged once, when first seen."""
        now, reasons = time.monotonic(), []
        for p in self._consumers.values():
            stuck = [key for key, (since, _) in p.waiting.items() if now - since >= self.stall_s]
            if not stuck:
                continue
            reason = (f"consumer {p.name} has lag on {stuck[0][0]}[{stuck[0][1]}] and made no progress for "
                      f"{now - p.waiting[stuck[0]][0]:.0f} s (limit {self.stall_s:g} s)")
            reasons.append(reason)
            if not p.said:
                p.said = True
                log.error("liveness fails: " + reason, extra={"fields": {"consumer": p.name}})
        return reasons

