"""A service's running parts wired once: store, inbox, relay, projector, consumer, and their lifecycle.

Start-up checks the broker and the store first and names the one that is missing; stop finishes
in-flight messages, drains the outbox, flushes the broker's producer and closes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypedDict

import pymongo
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from faststream.confluent import KafkaBroker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from contracts.envelope import Registry
from services.kernel import idempotency, lease, ratelimit
from services.kernel.consumer import INBOX, Consumer, Inbox
from services.kernel.eventstore import EventStore
from services.kernel.follower import LogFollower
from services.kernel.indexes import ensure_collections, ensure_indexes
from services.kernel.kafka import LIBRDKAFKA_LOG, client_config, ensure_topics, make_broker
from services.kernel.outage import Dependency, StoreHeartbeats, quiet_retry_loops, watch_broker
from services.kernel.outbox import OutboxRelay
from services.kernel.projections import Projection, Projector
from services.kernel.settings import KernelSettings
from services.kernel.storecount import listeners as store_listeners

log = logging.getLogger(__name__)


class DependencyUnavailable(RuntimeError):
    """The broker or the store did not answer at start-up."""

    def __init__(self, what: str, where: str, why: str) -> None:
        super().__init__(f"cannot reach the {what} at {where}: {why}")
        self.what, self.where, self.why = what, where, why


class StoreOptions(TypedDict, total=False):
    """PyMongo's timeout options, in milliseconds (``timeoutMS`` only when set), and its pool size."""

    serverSelectionTimeoutMS: int
    connectTimeoutMS: int
    socketTimeoutMS: int
    heartbeatFrequencyMS: int
    timeoutMS: int
    maxPoolSize: int


def store_options(settings: KernelSettings) -> StoreOptions:
    """PyMongo's deadlines: no store operation of ours waits without one (issue 21); and at most
    MONGODB_MAX_POOL_SIZE commands of this process at once (ADR 0038: 100 updates at once on one
    database deadlock FerretDB on SQLite for good)."""
    options: StoreOptions = {
        "serverSelectionTimeoutMS": settings.mongodb_server_selection_timeout_ms,
        "connectTimeoutMS": settings.mongodb_connect_timeout_ms,
        "socketTimeoutMS": settings.mongodb_socket_timeout_ms,
        "heartbeatFrequencyMS": settings.mongodb_heartbeat_ms,
        "maxPoolSize": settings.mongodb_max_pool_size,
    }
    if settings.mongodb_timeout_ms:
        options["timeoutMS"] = settings.mongodb_timeout_ms
    return options


def redact(url: str) -> str:
    """A connection string without its credentials (it goes into logs)."""
    return re.sub(r"//[^/@]*@", "//***@", url)


async def check_store(settings: KernelSettings) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_url, serverSelectionTimeoutMS=int(settings.startup_timeout_s * 1000)
    )
    try:
        await client.admin.command("ping")
    except PyMongoError as exc:
        raise DependencyUnavailable(
            "document store (MONGODB_URL)", settings.mongodb_url, str(exc).split(" (configured timeouts")[0]
        ) from None
    finally:
        await client.close()


def check_broker(settings: KernelSettings) -> None:
    # librdkafka's own logger would print a line to stderr per failed connection attempt.
    admin = AdminClient({**client_config(settings), "socket.connection.setup.timeout.ms": 3000}, logger=LIBRDKAFKA_LOG)
    try:
        admin.list_topics(timeout=settings.startup_timeout_s)
    except KafkaException as exc:
        raise DependencyUnavailable(
            "Kafka broker (KAFKA_BOOTSTRAP_SERVERS)", settings.kafka_bootstrap_servers, str(exc.args[0])
        ) from None


async def check_dependencies(settings: KernelSettings) -> None:
    """Raise ``DependencyUnavailable`` naming the store or the broker if one does not answer."""
    await check_store(settings)
    await asyncio.to_thread(check_broker, settings)


@dataclass
class Runtime:
    """Everything one service runs besides its HTTP routes; build with ``Runtime.create``."""

    settings: KernelSettings
    client: AsyncMongoClient[dict[str, Any]]
    store: EventStore
    inbox: Inbox
    projector: Projector
    consumer: Consumer
    topic: str
    follower: LogFollower | None = None
    store_watch: Dependency | None = None
    broker_watch: Dependency | None = None
    #: The service's own collections besides the kernel's and its projections' (created at start).
    collections: tuple[str, ...] = ()

    @classmethod
    def create(
        cls,
        settings: KernelSettings,
        registry: Registry,
        topic: str,
        projections: Iterable[Callable[[AsyncDatabase[dict[str, Any]]], Projection]] = (),
        collections: Iterable[str] = (),
    ) -> Runtime:
        """Wire a service; ``projections`` are factories called with the service's database;
        ``collections`` names the other collections it writes (kernel/indexes.py: created at start)."""
        store_watch = Dependency("document store", redact(settings.mongodb_url), settings.outage_reminder_s)
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            settings.mongodb_url,
            tz_aware=True,
            **store_options(settings),
            event_listeners=[StoreHeartbeats(store_watch), *store_listeners(settings.service_name)],
        )  # (the latter: bench only)
        db = client[settings.database_name]
        store = EventStore(db, f"/services/{settings.service_name}", registry)
        built = [factory(db) for factory in projections]
        inbox = Inbox(db, store)
        broker = make_broker(settings)
        broker_watch = watch_broker(
            settings.kafka_bootstrap_servers,
            settings.outage_reminder_s,
            logging.getLogger("faststream"),
            LIBRDKAFKA_LOG,
        )
        # A retry loop's line per round while the store or the broker is away says nothing new.
        quiet_retry_loops(
            settings.outage_reminder_s,
            "services.kernel.consumer",
            "services.kernel.follower",
            "services.kernel.outage.refusals",
        )
        return cls(
            settings,
            client,
            store,
            inbox,
            Projector(store, list(built)),
            Consumer(settings, broker, store, inbox),
            topic,
            store_watch=store_watch,
            broker_watch=broker_watch,
            collections=tuple(collections),
        )

    @property
    def broker(self) -> KafkaBroker:
        """FastStream's broker: it consumes, and its producer publishes everything we send."""
        return self.consumer.broker

    async def start(self, topics: Iterable[str] = ()) -> None:
        """Check dependencies, create indexes and topics, then start relaying and consuming."""
        await check_dependencies(self.settings)
        await self.store.setup()
        await self.inbox.setup()
        await ensure_indexes(self.store.pending, for_queries=[pymongo.IndexModel("position", name="position")])
        # the kernel's other collections, and the service's own: none is created under load
        await ensure_collections(self.store.db, [INBOX, lease.COLLECTION, idempotency.COLLECTION, *self.collections])
        await ratelimit.setup(self.store.db)  # every limit's, before the first request hits one
        await self.projector.setup()
        if self.settings.create_topics:  # a cluster's topics are resources of their own (infra/k8s/topics)
            await asyncio.to_thread(ensure_topics, self.settings, [self.topic, *topics])
        follower_lease = lease.Lease(self.store.db, "log-follower", self.settings.lease_ttl_s)
        types = self.store.registry.types()
        relay = OutboxRelay(self.broker, self.topic, lambda t: t in types and types[t].public)
        self.follower = LogFollower(
            self.store,
            relay,
            self.projector,
            follower_lease,
            self.settings.outbox_poll_interval_s,
            self.settings.outbox_batch_size,
        )
        await self.broker.connect()  # its producer first: the relay publishes through it
        self._tasks = [
            asyncio.create_task(self.follower.run(), name="log-follower"),
            asyncio.create_task(self._notice_the_broker_return(), name="broker-watch"),
            asyncio.create_task(self._watch_stuck_partitions(), name="stuck-partitions"),
        ]
        await self.broker.start()
        log.info("service started", extra={"fields": {"service": self.settings.service_name}})

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        """Readiness: whether the service can serve its HTTP traffic, i.e. its store answers.

        Kafka is reported, not required: what a request writes waits in the service's own log
        until the broker returns (issue 19); a consumer that cannot work shows as lag here and,
        if stuck, fails liveness. Each check has its deadline, within the probe's timeout.
        """

        async def store() -> bool:
            try:
                with pymongo.timeout(self.settings.probe_timeout_s):
                    await self.client.admin.command("ping")
                return True
            except PyMongoError:
                return False

        async def broker() -> bool:
            try:  # the broker's producer asks for metadata
                return bool(
                    await asyncio.wait_for(
                        self.broker.ping(timeout=self.settings.probe_timeout_s), self.settings.probe_timeout_s + 0.5
                    )
                )
            except (TimeoutError, KafkaException):
                return False

        store_ok, broker_ok = await asyncio.gather(store(), broker())
        return store_ok, {"store": store_ok, "broker": broker_ok, "consumers": self.consumer.progress.report()}

    def live(self) -> list[str]:
        """Why the process should be restarted (empty: it should not): a consumer stuck with lag."""
        return self.consumer.progress.stalled()

    async def _notice_the_broker_return(self) -> None:
        """While librdkafka reports the broker away, ask it each second whether it is back: the
        INFO that says so comes when it is, not with the next message that happens to flow."""
        while True:
            await asyncio.sleep(1.0)
            if self.broker_watch is not None and self.broker_watch.away:
                with contextlib.suppress(Exception):  # still away: librdkafka said so already
                    if await self.broker.ping(timeout=1.0):
                        self.broker_watch.returned()

    async def _watch_stuck_partitions(self) -> None:
        """A jammed partition is logged when it jams, whether or not a probe asks (issue 16)."""
        while True:
            await asyncio.sleep(min(5.0, self.settings.partition_stuck_s / 2))
            self.consumer.progress.stuck()

    async def stop(self) -> None:
        """Graceful: stop consuming (in-flight handlers finish), drain the outbox, close."""
        # The subscribers alone first: the broker's producer must outlive them (a handler in
        # flight may still dead-letter) and the outbox drain; ``broker.stop()`` then flushes it.
        await self.consumer.drain(self.settings.drain_timeout_s)
        await asyncio.gather(*(subscriber.stop() for subscriber in self.broker.subscribers))
        if self.follower is not None:
            self.follower.halt()
        for task in getattr(self, "_tasks", [])[1:]:
            task.cancel()  # the watches: they only report
        await asyncio.gather(*getattr(self, "_tasks", []), return_exceptions=True)
        if self.follower is not None:
            await self.follower.drain()
        await self.broker.stop()
        await self.client.close()
