"""How far behind the services downstream are, in seconds: admission of a request whose promise
depends on them (intake's "call me", ADR 0051).

Intake takes "call me" clicks faster than routing and notify can turn them into calls: under
overload every accepted click joins a queue that only grows, and a click's call comes minutes
later, long after the overload ended. What is waiting is measured where it waits: how long this
service's log follower took lately to publish what was appended (``LogFollower.waited_s``) and,
for each consumer group downstream, the messages of its topic not yet committed (Kafka's consumer
lag) divided by the rate at which the group committed lately while it had work. Their sum is the
time a request accepted now would wait before the last of them reaches it, give or take the
one-second commit interval (an overestimate: the stages drain at the same time).

Only a backlog that moves counts: a group that committed nothing in the last ``RATE_WINDOW_S``
(stopped, restarting, or a group of long ago) has no pace to judge by, and an outage of the
broker publishes nothing (the follower's figure stays at its last). Refusing every "call me"
because a dialler restarts would turn a ten-second blip into an outage of the button; the
health checks and alerts are for a service that is down.

Polled once a second in a thread (librdkafka's admin calls block), so a request reads a number
and waits on nothing. Only the replica whose follower holds the lease knows its own part; the
others count the groups' parts alone.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

log = logging.getLogger(__name__)

#: How far back a group's commits are looked at for its rate.
RATE_WINDOW_S = 10.0
#: How long one admin call may take (a broker away: the figure is then not updated).
ADMIN_TIMEOUT_S = 5.0


@dataclass
class GroupLag:
    """One consumer group on one topic: messages not yet committed, and its pace while busy."""

    group: str
    topic: str
    lag: int = 0
    #: (monotonic time, the group's committed offset of each partition, its lag) of the last polls
    history: deque[tuple[float, dict[int, int], int]] = field(default_factory=lambda: deque(maxlen=64))

    def behind_s(self) -> float:
        """Its lag over the rate it committed at while it had work: the pace of an idle stretch
        (a burst's first seconds) says nothing of how fast it works."""
        if self.lag <= 0:
            return 0.0
        moved, busy = 0, 0.0
        for (t0, before, lag), (t1, after, _) in itertools.pairwise(self.history):
            if lag > 0:
                # partitions committed at both ends only: a partition's first commit is no pace
                moved += sum(after[p] - before[p] for p in before.keys() & after.keys())
                busy += t1 - t0
        rate = moved / busy if busy > 0 else 0.0
        return self.lag / rate if rate > 0 else 0.0  # no pace: stopped, or long gone (see above)


class DownstreamLag:
    """The seconds a request accepted now would wait behind what is already queued."""

    def __init__(
        self,
        admin_config: dict[str, Any],
        watched: Iterable[tuple[str, str]],
        own: Callable[[], float] = lambda: 0.0,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.admin_config, self.own, self.interval_s, self.clock = admin_config, own, interval_s, clock
        self.groups = [GroupLag(group, topic) for group, topic in watched]
        self._admin: AdminClient | None = None

    def behind_s(self) -> float:
        """This service's own publishing delay now, plus each group's wait as last polled."""
        return self.own() + sum(group.behind_s() for group in self.groups)

    def figures(self) -> dict[str, float]:
        """Each part of ``behind_s`` (for logs and metrics)."""
        return {"unpublished": self.own()} | {g.group: g.behind_s() for g in self.groups}

    async def run(self) -> None:
        """Poll until cancelled; a failed poll keeps the last figures and is logged once a minute."""
        last_warning = -60.0
        while True:
            try:
                await self.poll()
            except (KafkaException, TimeoutError, ValueError) as exc:  # a broker away or starting
                if (now := self.clock()) - last_warning >= 60:
                    last_warning = now
                    log.warning("downstream lag not measured", extra={"fields": {"error": str(exc)}})
            await asyncio.sleep(self.interval_s)

    async def poll(self) -> None:
        """Read each group's committed offsets and its topic's ends once."""
        if self.groups:
            figures = await asyncio.to_thread(self._kafka_figures)
            now = self.clock()
            for group, (committed, lag) in zip(self.groups, figures, strict=True):
                group.lag = lag
                group.history.append((now, committed, lag))
                while len(group.history) > 2 and now - group.history[0][0] > RATE_WINDOW_S:
                    group.history.popleft()

    def _kafka_figures(self) -> list[tuple[dict[int, int], int]]:
        """(committed offset of each partition, messages not committed) of each group, on its topic."""
        admin = self._admin = self._admin or AdminClient(self.admin_config)
        topics = {g.topic for g in self.groups}
        described = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
        partitions = {t: [TopicPartition(t, p) for p in described[t].partitions] for t in topics if t in described}
        asked_ends = {tp: OffsetSpec.latest() for tps in partitions.values() for tp in tps}
        ends = admin.list_offsets(asked_ends, request_timeout=ADMIN_TIMEOUT_S) if asked_ends else {}
        end = {(tp.topic, tp.partition): future.result(ADMIN_TIMEOUT_S).offset for tp, future in ends.items()}
        figures: list[tuple[dict[int, int], int]] = []
        for group in self.groups:
            if not partitions.get(group.topic):
                figures.append(({}, 0))  # its topic is not there yet: nothing waits on it
                continue
            request = [ConsumerGroupTopicPartitions(group.group, partitions[group.topic])]
            asked = admin.list_consumer_group_offsets(request, request_timeout=ADMIN_TIMEOUT_S)
            answer = asked[group.group].result(ADMIN_TIMEOUT_S)
            committed, lag = {}, 0
            for tp in answer.topic_partitions:
                if tp.offset < 0:
                    continue  # nothing committed yet on this partition: no pace to judge by
                committed[tp.partition] = tp.offset
                lag += max(0, end.get((tp.topic, tp.partition), tp.offset) - tp.offset)
            figures.append((committed, lag))
        return figures
