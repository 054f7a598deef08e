"""A service's running parts wired once: store, inbox, relay, projector, consumer, and their lifecycle.

Start-up checks the broker and the store first and names the one that is missing; stop finishes
in-flight messages, drains the outbox, flushes the broker's producer and closes everything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient
from confluent_kafka import KafkaException
from faststream.confluent import KafkaBroker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from contracts.envelope import Registry
from services.kernel.consumer import Consumer, Inbox
from services.kernel.eventstore import EventStore
from services.kernel.follower import LogFollower
from services.kernel.kafka import LIBRDKAFKA_LOG, client_config, ensure_topics, make_broker
from services.kernel.outbox import Lease, OutboxRelay
from services.kernel.projections import Projection, Projector
from services.kernel.settings import KernelSettings
from services.kernel.storecount import listeners as store_listeners

log = logging.getLogger(__name__)


class DependencyUnavailable(RuntimeError):
    """The broker or the store did not answer at start-up."""

    def __init__(self, what: str, where: str, why: str) -> None:
        super().__init__(f"cannot reach the {what} at {where}: {why}")
        self.what, self.where, self.why = what, where, why


async def check_store(settings: KernelSettings) -> None:
    client = AsyncMongoClient(settings.mongodb_url,
                              serverSelectionTimeoutMS=int(settings.startup_timeout_s * 1000))
    try:
        await client.admin.command("ping")
    except PyMongoError as exc:
        raise DependencyUnavailable("document store (MONGODB_URL)", settings.mongodb_url,
                                    str(exc).split(" (configured timeouts")[0]) from None
    finally:
        await client.close()


def check_broker(settings: KernelSettings) -> None:
    # librdkafka's own logger would print a line to stderr per failed connection attempt.
    admin = AdminClient({**client_config(settings), "socket.connection.setup.timeout.ms": 3000},
                        logger=LIBRDKAFKA_LOG)
    try:
        admin.list_topics(timeout=settings.startup_timeout_s)
    except KafkaException as exc:
        raise DependencyUnavailable("Kafka broker (KAFKA_BOOTSTRAP_SERVERS)",
                                    settings.kafka_bootstrap_servers, str(exc.args[0])) from None


async def check_dependencies(settings: KernelSettings) -> None:
    """Raise ``DependencyUnavailable`` naming the store or the broker if one does not answer."""
    await check_store(settings)
    await asyncio.to_thread(check_broker, settings)


@dataclass
class Runtime:
    """Everything one service runs besides its HTTP routes; build with ``Runtime.create``."""

    settings: KernelSettings
    client: AsyncMongoClient
    store: EventStore
    inbox: Inbox
    projector: Projector
    consumer: Consumer
    topic: str
    follower: LogFollower | None = None

    @classmethod
    def create(cls, settings: KernelSettings, registry: Registry, topic: str,
               projections: Iterable[Callable[[AsyncDatabase], Projection]] = ()) -> Runtime:
        """Wire a service; ``projections`` are factories called with the service's database."""
        client = AsyncMongoClient(settings.mongodb_url, tz_aware=True,
                                  event_listeners=store_listeners(settings.service_name))  # bench only
        db = client[settings.database_name]
        store = EventStore(db, f"/services/{settings.service_name}", registry)
        projections = [factory(db) for factory in projections]
        inbox = Inbox(db, store, projected=bool(projections))
        return cls(settings, client, store, inbox, Projector(store, list(projections)),
                   Consumer(settings, make_broker(settings), store, inbox), topic)

    @property
    def broker(self) -> KafkaBroker:
        """FastStream's broker: it consumes, and its producer publishes everything we send."""
        return self.consumer.broker

    async def start(self, topics: list[str] = ()) -> None:
        """Check dependencies, create indexes and topics, then start relaying and consuming."""
        await check_dependencies(self.settings)
        await self.store.setup()
        await self.inbox.setup()
        await self.store.pending.create_index("position", name="position")
        if self.settings.create_topics:  # a cluster's topics are resources of their own (infra/k8s/topics)
            await asyncio.to_thread(ensure_topics, self.settings, [self.topic, *topics])
        lease = Lease(self.store.db, "log-follower", self.settings.lease_ttl_s)
        types = self.store.registry.types()
        relay = OutboxRelay(self.broker, self.topic, lambda t: t in types and types[t].public)
        self.follower = LogFollower(self.store, relay, self.projector, lease,
                                    self.settings.outbox_poll_interval_s, self.settings.outbox_batch_size)
        await self.broker.connect()  # its producer first: the relay publishes through it
        self._tasks = [asyncio.create_task(self.follower.run(), name="log-follower")]
        await self.broker.start()
        log.info("service started", extra={"fields": {"service": self.settings.service_name}})

    async def ready(self) -> dict[str, bool]:
        """Readiness: whether the store answers now, and Kafka to the producer that publishes."""
        try:
            await self.client.admin.command("ping")
            store = True
        except PyMongoError:
            store = False
        broker = await self.broker.ping(timeout=2.0)  # the broker's producer asks for metadata
        return {"store": store, "broker": bool(broker)}

    async def stop(self) -> None:
        """Graceful: stop consuming (in-flight handlers finish), drain the outbox, close."""
        # The subscribers alone first: the broker's producer must outlive them (a handler in
        # flight may still dead-letter) and the outbox drain; ``broker.stop()`` then flushes it.
        await self.consumer.drain(self.settings.drain_timeout_s)
        await asyncio.gather(*(subscriber.stop() for subscriber in self.broker.subscribers))
        if self.follower is not None:
            self.follower.halt()
        await asyncio.gather(*getattr(self, "_tasks", []), return_exceptions=True)
        if self.follower is not None:
            await self.follower.drain()
        await self.broker.stop()
        await self.client.close()
