"""The outbox relay: publishing committed events to the service's topic, at least once.

Driven by the log follower (``follower.py``), which holds the lease (``lease.py``). A commit
leaves the pending list only after the broker acknowledged every one of its events; a crash in
between publishes it again, and consumers drop the repeat by event id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from confluent_kafka import KafkaException, Message
from faststream.confluent import KafkaBroker

from contracts.envelope import Envelope, to_kafka
from services.kernel.eventstore import Commit
from services.kernel.kafka import publish
from services.kernel.telemetry import remote_parent

log = logging.getLogger(__name__)


class OutboxRelay:
    """Publishes the public events of commits to the service's topic, in the order given."""

    def __init__(self, broker: KafkaBroker, topic: str, public: Callable[[str], bool]) -> None:
        self.broker, self.topic, self.public = broker, topic, public

    async def publish(self, commits: list[Commit]) -> set[str]:
        """Publish the public events of ``commits``; the ids of those fully acknowledged.

        Every event is queued first (``no_confirm``), in order, and the acknowledgements are
        awaited together: one round trip to the broker per round, not one per event.
        """
        pending = []
        try:
            for commit in commits:
                events = [e for e in commit.events if self.public(e.type)]
                pending.append((commit.id, [await self._publish(e) for e in events]))
        except KafkaException as exc:  # refused before queuing (e.g. too large): later ones wait
            log.warning(
                "the producer refused an event; its commit and the later ones stay pending",
                extra={"fields": {"commit_id": commit.id, "error": str(exc)}},
            )
        done: set[str] = set()
        for commit_id, futures in pending:
            results = await asyncio.gather(*futures, return_exceptions=True)
            failed = [r for r in results if isinstance(r, Exception)]
            if failed:
                log.warning(
                    "delivery failed; the commit stays pending",
                    extra={"fields": {"commit_id": commit_id, "error": str(failed[0])}},
                )
                continue
            done.add(commit_id)
        return done

    async def _publish(self, event: Envelope) -> asyncio.Future[Message | None]:
        # In the trace of the span that appended it: FastStream's producer span continues it.
        with remote_parent(event.traceparent):
            return await publish(self.broker, self.topic, *to_kafka(event), no_confirm=True)
