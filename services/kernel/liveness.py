"""Whether each consumer makes progress: the evidence behind /health/live.

A consumer "has lag" while a message it received is not committed yet (queued, in its handler,
waiting for a redelivery, or its commit failing); its progress is its last commit. Lag with no progress
for ``liveness_stall_s`` means the process is stuck (a commit that never returns, a handler that
never ends): liveness fails and the orchestrator restarts it. An idle consumer is alive however
long ago it last committed.

Well before that, a partition with lag that has not moved for ``partition_stuck_s`` is *stuck*:
one WARNING line names it (and one INFO line when it moves again), and /health/ready lists it,
so that operators can alert on a jammed partition without waiting for a restart (issue 16).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message

from services.kernel.kafka import position

log = logging.getLogger(__name__)


@dataclass
class ConsumerProgress:
    name: str
    last_progress: float  # time.monotonic() of the last commit (or of the start)
    #: (topic, partition) -> since when its oldest uncommitted message waits, and the last offset received
    waiting: dict[tuple[str, int], tuple[float, int]] = field(default_factory=dict)
    said: bool = False  # its stall was logged (one line per stall, not one per probe)
    #: the partitions reported stuck (one line when first seen, one when they move again)
    reported: set[tuple[str, int]] = field(default_factory=set)


class Progress:
    """Kept by the consumer (``received``/``committed``), read by the liveness probe (``stalled``).

    Per partition, since a consumer's partitions are handled side by side: one stuck partition is
    a stuck consumer even while the others commit.
    """

    def __init__(self, stall_s: float, stuck_s: float | None = None) -> None:
        self.stall_s, self.stuck_s = stall_s, stuck_s if stuck_s is not None else stall_s
        self._consumers: dict[int, ConsumerProgress] = {}

    def received(self, consumer: object, name: str, message: Message) -> None:
        now, (topic, partition, offset) = time.monotonic(), position(message)
        key = (topic, partition)
        progress = self._consumers.setdefault(id(consumer), ConsumerProgress(name, now))
        since, _ = progress.waiting.get(key, (now, offset))
        progress.waiting[key] = (since, offset)

    def committed(self, consumer: object, message: Message) -> None:
        progress = self._consumers.get(id(consumer))
        if progress is None:
            return
        now, (topic, partition, offset) = time.monotonic(), position(message)
        key = (topic, partition)
        if progress.said:
            log.info("consumer makes progress again", extra={"fields": {"consumer": progress.name}})
        if key in progress.reported:
            progress.reported.discard(key)
            log.info(
                "partition moves again",
                extra={"fields": {"consumer": progress.name, "topic": key[0], "partition": key[1], "offset": offset}},
            )
        progress.last_progress, progress.said = now, False
        _, last_received = progress.waiting.get(key, (now, offset))
        if offset >= last_received:
            progress.waiting.pop(key, None)
        else:  # the next one, received meanwhile, could not start before this one was done
            progress.waiting[key] = (now, last_received)

    def report(self) -> list[dict[str, Any]]:
        """Each consumer: whether it has lag and how long ago it last made progress."""
        now = time.monotonic()
        stuck = self.stuck()
        return [
            {
                "consumer": p.name,
                "has_lag": bool(p.waiting),
                "last_progress_s_ago": round(now - p.last_progress, 1),
                "stuck": stuck.get(p.name, []),
            }
            for p in self._consumers.values()
        ]

    def waiting(self) -> list[tuple[tuple[str, int], float]]:
        """For the metrics: each partition with lag, and how long its oldest message has waited."""
        now = time.monotonic()
        return [
            (key, now - since) for p in list(self._consumers.values()) for key, (since, _) in list(p.waiting.items())
        ]

    def stuck(self) -> dict[str, list[str]]:
        """Each consumer's partitions (``topic[partition]``) with lag that have not moved for
        ``stuck_s``; a newly stuck one is logged, once (called by the readiness probe and by the
        runtime's watch, so the line comes without a probe too)."""
        now = time.monotonic()
        found: dict[str, list[str]] = {}
        for p in self._consumers.values():
            for key, (since, offset) in p.waiting.items():
                if now - since < self.stuck_s:
                    continue
                found.setdefault(p.name, []).append(f"{key[0]}[{key[1]}]")
                if key not in p.reported:
                    p.reported.add(key)
                    log.warning(
                        "partition stuck: lag and no commit",
                        extra={
                            "fields": {
                                "consumer": p.name,
                                "topic": key[0],
                                "partition": key[1],
                                "last_offset_received": offset,
                                "waiting_s": round(now - since, 1),
                                "limit_s": self.stuck_s,
                            }
                        },
                    )
        return found

    def stalled(self) -> list[str]:
        """Why the process is stuck (empty: it is not); a stall is logged once, when first seen."""
        now, reasons = time.monotonic(), []
        for p in self._consumers.values():
            stuck = [key for key, (since, _) in p.waiting.items() if now - since >= self.stall_s]
            if not stuck:
                continue
            reason = (
                f"consumer {p.name} has lag on {stuck[0][0]}[{stuck[0][1]}] and made no progress for "
                f"{now - p.waiting[stuck[0]][0]:.0f} s (limit {self.stall_s:g} s)"
            )
            reasons.append(reason)
            if not p.said:
                p.said = True
                log.error("liveness fails: " + reason, extra={"fields": {"consumer": p.name}})
        return reasons
