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

Polled once a second on a thread of its own (librdkafka's calls block), so a request reads a
number and waits on nothing. Only the replica whose follower holds the lease knows its own part; the
others count the groups' parts alone.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

log = logging.getLogger(__name__)

#: How far back a group's commits are looked at for its rate.
RATE_WINDOW_S = 10.0
#: How long one call to the broker may take (a broker away: the figure is then not updated).
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
    """The seconds a request accepted now would wait behind what is already queued.

    Its Kafka clients are plain consumers of the watched groups that never join them (``committed``
    and ``get_watermark_offsets`` only), made, used and closed on one thread of its own. Not the
    AdminClient: its answers run Python in librdkafka's background thread, where a garbage
    collection that frees any client aborts the process ("rd_kafka_destroy called from librdkafka
    owned thread"; confluent-kafka-python #2131) — which is what the first version did to the
    test run. ``close`` must be awaited when done (the app's lifespan does it).
    """

    def __init__(
        self,
        client_config: dict[str, Any],
        watched: Iterable[tuple[str, str]],
        own: Callable[[], float] = lambda: 0.0,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_config, self.own, self.interval_s, self.clock = client_config, own, interval_s, clock
        self.groups = [GroupLag(group, topic) for group, topic in watched]
        self._clients: dict[str, Consumer] = {}
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="downstream-lag")

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
            figures = await asyncio.get_running_loop().run_in_executor(self._thread, self._kafka_figures)
            now = self.clock()
            for group, (committed, lag) in zip(self.groups, figures, strict=True):
                group.lag = lag
                group.history.append((now, committed, lag))
                while len(group.history) > 2 and now - group.history[0][0] > RATE_WINDOW_S:
                    group.history.popleft()

    async def close(self) -> None:
        """Close the clients on their own thread, after a poll in flight (the run cancelled first)."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close_clients)
        self._thread.shutdown(wait=False)

    def _close_clients(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def _client(self, group: str) -> Consumer:
        if (client := self._clients.get(group)) is None:
            config = {**self.client_config, "group.id": group, "enable.auto.commit": False}
            client = self._clients[group] = Consumer(config)
        return client

    def _kafka_figures(self) -> list[tuple[dict[int, int], int]]:
        """(committed offset of each partition, messages not committed) of each group, on its topic."""
        figures: list[tuple[dict[int, int], int]] = []
        for group in self.groups:
            client = self._client(group.group)
            described = client.list_topics(group.topic, timeout=ADMIN_TIMEOUT_S).topics.get(group.topic)
            if described is None or described.error is not None or not described.partitions:
                figures.append(({}, 0))  # its topic is not there yet: nothing waits on it
                continue
            asked = [TopicPartition(group.topic, p) for p in described.partitions]
            committed, lag = {}, 0
            for tp in client.committed(asked, timeout=ADMIN_TIMEOUT_S):
                if tp.offset < 0:
                    continue  # nothing committed yet on this partition: no pace to judge by
                marks = client.get_watermark_offsets(tp, timeout=ADMIN_TIMEOUT_S, cached=False)
                if marks is None:
                    raise TimeoutError(f"no end offset of {tp.topic}[{tp.partition}] within {ADMIN_TIMEOUT_S} s")
                committed[tp.partition] = tp.offset
                lag += max(0, marks[1] - tp.offset)
            figures.append((committed, lag))
        return figures
