"""The consuming side, on FastStream: every message is decoded, deduplicated, handled, recorded,
then acknowledged.

A subscription is one FastStream subscriber with a typed call per event type it handles (chosen
by FastStream from the ``ce_type`` header) and a last call, without a filter, for every other
message. Around the call run the broker's middlewares: FastStream's ``KafkaTelemetryMiddleware``
(the consumer span, continuing the producer's trace from the ``traceparent`` header) and ours,
``ConsumePolicy``, which decides what happens to a message, once, for every service:

- not a CloudEvent of ours, an invalid payload, an unknown type, anything else that fails while
  decoding it, or a handler that rejects it → ``<topic>.dlq`` with the reason in headers, then
  acknowledged (the partition keeps flowing); a letter too large for the DLQ goes there cut;
- the store or the broker unavailable → not acknowledged: the consumer seeks back and the
  message is redelivered after a backoff; a failure of the same message that comes back
  ``CONSUMER_MAX_ATTEMPTS`` times and is no outage is not transient: a dead letter too;
- seen before (its id is in the inbox) → acknowledged without running the handler again.

Offsets are committed only after the handler's effect is recorded, and only the message's own
partition's (FastStream's ack would commit every polled partition's position), behind the
partition's worker (``Commits``).
FastStream's subscriber handles one message at a time; ours hand each polled message to its
partition's worker (``PartitionWorkers``), which runs FastStream's consume path for it: the
partitions side by side, each one in order.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import traceback
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar, cast

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from faststream import BaseMiddleware, ContextRepo
from faststream.confluent import KafkaBroker
from faststream.confluent.annotations import KafkaMessage
from faststream.confluent.helpers import AsyncConfluentConsumer
from faststream.confluent.schemas import Topic
from faststream.confluent.subscriber.usecase import DefaultSubscriber
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from opentelemetry import trace
from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)

from contracts.envelope import H_TYPE, Envelope, Event, MalformedMessage, UnknownEventType, from_kafka
from services.kernel import meters
from services.kernel.deadletters import DeadLetter
from services.kernel.eventstore import ConcurrencyConflict, EventStore
from services.kernel.indexes import ensure_collections, ensure_indexes
from services.kernel.kafka import position, publish, received_headers, subscriber_options
from services.kernel.liveness import Progress
from services.kernel.resilience import backoff_s
from services.kernel.settings import KernelSettings

log = logging.getLogger(__name__)

#: Failures of the outside world: the message is fine, try it again later. A store that refuses
#: an operation (OperationFailure: e.g. FerretDB's "database is locked") counts too; a duplicate
#: key escaping the event store does not (that is a bug: dead-letter it and look).
TRANSIENT = (ConnectionFailure, OperationFailure, KafkaException, ConcurrencyConflict, TimeoutError)

Handler = Callable[[Event, Envelope], Awaitable[None]]

T = TypeVar("T")

#: librdkafka's answers that mean "the broker is away or busy", not "this message is wrong".
BROKER_AWAY = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._RESOLVE,
        KafkaError._WAIT_COORD,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.NOT_ENOUGH_REPLICAS,
    }
)


def is_outage(exc: BaseException) -> bool:
    """Whether a transient failure is a dependency away (retried however long it lasts; liveness
    watches the wait) rather than something about the message, which repeats for ever."""
    if isinstance(exc, (ConnectionFailure, TimeoutError, ExecutionTimeout, WTimeoutError)):
        return True  # away, or too slow to answer in time: nothing about this message
    if isinstance(exc, PyMongoError) and exc.has_error_label("RetryableWriteError"):
        return True
    if isinstance(exc, KafkaException) and exc.args and isinstance(error := exc.args[0], KafkaError):
        return error.retriable() or error.code() in BROKER_AWAY
    return False


class RepeatedFailure(Exception):
    """A message failed the same way too many times, no outage meanwhile: not transient any more."""

    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"failed {attempts} times in a row without an outage; last: {last!r}")
        self.__cause__ = last


#: The inbox's collection (the event store's group commit and the log's readers name it too).
INBOX = "inbox"
#: Marks of the handled messages this service dead-lettered (by event id): they have no inbox
#: record, and a partition's next owner must know they were dealt with (``Ownership``).
DEAD_LETTERED = "dead_lettered"


class Inbox:
    """The consumed events, kept in the service's own log so its state rebuilds from the store.

    An entry's ``_id`` is the event id: recording it twice is a no-op, and its presence marks a
    message as already handled.
    """

    def __init__(self, db: AsyncDatabase[dict[str, Any]], store: EventStore) -> None:
        self.entries, self.store = db[INBOX], store
        self.dead_lettered = db[DEAD_LETTERED]

    async def setup(self) -> None:
        await ensure_indexes(self.entries, for_queries=[IndexModel("position", name="position")])  # rebuilds
        await ensure_collections(self.entries.database, [DEAD_LETTERED])

    async def seen(self, event_id: str) -> bool:
        """Whether the event was dealt with: handled (its inbox record) or dead-lettered (a mark)."""
        if await self.entries.find_one({"_id": event_id}, {"_id": 1}) is not None:
            return True
        return await self.dead_lettered.find_one({"_id": event_id}, {"_id": 1}) is not None

    async def mark_dead_lettered(self, event_id: str, msg: Message) -> None:
        topic, partition, offset = position(msg)
        mark = {"_id": event_id, "topic": topic, "partition": partition, "offset": offset, "at": datetime.now(UTC)}
        try:
            await self.dead_lettered.insert_one(mark)
        except DuplicateKeyError:
            pass  # marked before (dead-lettered again after a crash)

    async def record(self, envelope: Envelope, msg: Message, handled: bool) -> None:
        now, position = datetime.now(UTC), self.store.next_position()
        doc = {
            "_id": envelope.id,
            "envelope": envelope.model_dump(mode="json"),
            "position": position,
            "handled": handled,
            "topic": msg.topic(),
            "partition": msg.partition(),
            "offset": msg.offset(),
            "received_at": now,
        }
        # Pending first, as for commits: projections must see every recorded entry (that one of
        # them acts on: the others are no work for the log follower).
        projected = self.store.projected(envelope.type)
        writes = [(self.store.inserts["inbox"], doc)]
        if projected:
            writes.insert(
                0,
                (
                    self.store.inserts["pending"],
                    {
                        "_id": f"inbox:{envelope.id}",
                        "kind": "inbox",
                        "ref": envelope.id,
                        "position": position,
                        "created_at": now,
                        "published": True,
                    },
                ),
            )
        with self.store.writing(f"inbox:{envelope.id}"):
            for collection, document in writes:
                try:
                    await collection.insert_one(document)
                except DuplicateKeyError:
                    pass  # recorded before (a redelivery after a crash)
        if projected:
            self.store.wrote(f"inbox:{envelope.id}", [envelope])
            self.store.notify()


@dataclass
class Subscription:
    """What one ``Consumer.subscribe`` asked for: read by the policy for each of its messages."""

    group_id: str
    topics: list[str]
    #: The CloudEvents types with a typed call; any other message takes the call without a filter.
    handled: frozenset[str]
    record_all: bool
    workers: PartitionWorkers
    commits: Commits
    ownership: Ownership


class Consumer:
    """Subscribes handlers to topics through FastStream, with the rules of this module."""

    def __init__(self, settings: KernelSettings, broker: KafkaBroker, store: EventStore, inbox: Inbox) -> None:
        self.settings, self.broker, self.store, self.inbox = settings, broker, store, inbox
        self._failures = 0
        #: (topic, partition, offset) -> failed deliveries of that message (cleared by its commit)
        self._attempts: dict[tuple[str, int, int], int] = {}
        #: id(FastStream subscriber) -> its subscription: how the policy finds a message's rules
        self._by_subscriber: dict[int, Subscription] = {}
        #: (group, topics) of each subscription: what "all consumed" means for this process
        self.subscriptions: list[tuple[str, list[str]]] = []
        self.progress = Progress(settings.liveness_stall_s, settings.partition_stuck_s)  # read by the probes
        meters.watch_waiting(self.progress.waiting)
        # After the broker's telemetry middleware (make_broker): the policy runs inside its span.
        broker.add_middleware(partial(ConsumePolicy, consumer=self))

    def subscribe(
        self, topics: str | Sequence[str], group_id: str, handlers: dict[type[Event], Handler], record_all: bool = False
    ) -> None:
        """Handle ``handlers``' event types from ``topics``; ``record_all`` keeps the others too.

        One call = one Kafka consumer: give every topic of a group in one call, since several
        consumers of one group on different topics rebalance each other at every join.
        """
        topics = [topics] if isinstance(topics, str) else list(topics)
        self.subscriptions.append((group_id, topics))
        # The kernel declares its topics itself (ensure_topics, with their size limit) or a cluster
        # does (Strimzi): FastStream's own attempt, with defaults, is refused under ACLs with a
        # warning at every start.
        ownership = Ownership()
        subscriber = self.broker.subscriber(
            *(Topic(t, declare=False) for t in topics),
            group_id=group_id,
            ack_policy=AckPolicy.MANUAL,
            decoder=_undecoded,
            title=f"{group_id}:{','.join(topics)}",
            # librdkafka assigns as usual after these (they call no assign() of their own)
            on_assign=ownership.moved,
            on_revoke=ownership.moved,
            **subscriber_options(self.settings),
        )
        for cls, handler in handlers.items():
            subscriber(_typed(handler), filter=_of_type(cls.ce_type()))
        subscriber(_not_handled)  # last, without a filter: every other message, well-formed or not

        commits = Commits(
            self.settings.kafka_commit_timeout_s,
            self.settings.retry_backoff_max_s,
            self._committed,
            self.settings.kafka_commit_interval_s,
        )
        workers = PartitionWorkers(
            subscriber.consume, self.settings.consumer_partition_queue, partial(_committed_offset, subscriber)
        )
        self._by_subscriber[id(subscriber)] = Subscription(
            group_id, topics, frozenset(cls.ce_type() for cls in handlers), record_all, workers, commits, ownership
        )

        async def received(msg: Message) -> None:
            self.progress.received(subscriber.consumer, group_id, msg)
            await workers.submit(msg, ownership.epoch(msg))

        # FastStream's subscriber consumes its messages one at a time; ours hand each to its
        # partition's worker, which runs FastStream's whole consume path for it (its own concurrent
        # mode acknowledges first). The one attribute of FastStream's we replace.
        setattr(subscriber, "consume_one", received)  # noqa: B010 - an instance's method, on purpose

    def subscription_of(self, subscriber: object) -> Subscription | None:
        return self._by_subscriber.get(id(subscriber))

    async def drain(self, timeout_s: float) -> None:
        """At stop, before the subscribers close: take no more messages, finish those taken."""
        subscriptions = self._by_subscriber.values()
        await asyncio.gather(*(s.workers.drain(timeout_s) for s in subscriptions))
        await asyncio.gather(*(s.commits.flush(timeout_s) for s in subscriptions))

    async def process(
        self, message: KafkaMessage, subscription: Subscription, handle: Callable[[Event, Envelope], Awaitable[None]]
    ) -> None:
        """The policy for one message; ``handle`` runs the typed call FastStream chose for it."""
        msg = _record(message)
        try:
            envelope = from_kafka(msg.value(), received_headers(msg))
            event = self.store.registry.decode(envelope.type, envelope.data)
        except Exception as exc:  # whatever fails while decoding is the message's fault: retrying cannot help
            return await self._dead_letter(message, subscription, exc)
        handled = envelope.type in subscription.handled
        marked = envelope.id if handled else None  # a handled message dead-lettered leaves a mark
        try:
            if not handled and not subscription.record_all:
                return await self._commit(message, subscription)  # a type this service ignores: no store round trip
            # Only a handler's effects need the look first. An event only recorded is recorded
            # again as a no-op (its inbox _id), and the projections, which must take an entry
            # twice anyway (after a crash), skip what they applied: one round trip fewer each.
            if handled and await self._dealt_with_before(envelope.id, msg, subscription):
                return await self._commit(message, subscription)
            if handled:
                # FastStream's consumer span (KafkaTelemetryMiddleware) names the topic; the event, here.
                trace.get_current_span().set_attributes(
                    {"cloudevents.event_type": envelope.type, "cloudevents.event_id": envelope.id}
                )
                with meters.timed(meters.handling_duration, {"type": envelope.type}):
                    await handle(event, envelope)
            await self.inbox.record(envelope, msg, handled=handled)
            if handled:
                subscription.ownership.remember(envelope.id)
        except TRANSIENT as exc:
            if isinstance(exc, DuplicateKeyError):
                return await self._dead_letter(message, subscription, exc, marked)
            return await self._retry_later(message, subscription, exc, marked=marked)
        except Exception as exc:  # a handler that cannot take this message: never block the partition
            log.exception("handler failed; message goes to the DLQ")
            return await self._dead_letter(message, subscription, exc, marked)
        self._failures = 0
        await self._commit(message, subscription)

    async def _dealt_with_before(self, event_id: str, msg: Message, subscription: Subscription) -> bool:
        """Whether a handled message was dealt with before (a redelivery): looked up in the inbox
        only until the first one of its partition that was not (``Ownership``)."""
        ownership, epoch = subscription.ownership, _EPOCH.get()
        if ownership.recalls(event_id):
            return True  # a repeat of one this process dealt with (a publisher's retry)
        if epoch is not None and ownership.settled(msg, epoch):
            return False
        if await self.inbox.seen(event_id):
            return True
        if epoch is not None:
            ownership.settle(msg, epoch)
        return False

    async def _commit(self, message: KafkaMessage, subscription: Subscription) -> None:
        """Its effect is recorded (or it needs none): its offset is due (``Commits``)."""
        await subscription.commits.due(message)

    def _committed(self, message: KafkaMessage) -> None:
        """Its offset is committed: progress, and its partition's earlier failures are forgotten."""
        msg = _record(message)
        topic, partition, offset = position(msg)
        for attempted in [p for p in self._attempts if p[:2] == (topic, partition) and p[2] <= offset]:
            del self._attempts[attempted]
        self.progress.committed(message.consumer, msg)

    async def _retry_later(
        self,
        message: KafkaMessage,
        subscription: Subscription,
        exc: Exception,
        count: bool = True,
        marked: str | None = None,
    ) -> None:
        """Redeliver after a backoff; ``count``: the failure may be the message's (it counts
        towards CONSUMER_MAX_ATTEMPTS unless it is an outage); ``marked``: see ``_dead_letter``."""
        msg = _record(message)
        if count and not is_outage(exc):
            key = position(msg)
            attempts = self._attempts[key] = self._attempts.get(key, 0) + 1
            if attempts >= self.settings.consumer_max_attempts:
                return await self._dead_letter(message, subscription, RepeatedFailure(attempts, exc), marked)
        self._failures += 1
        meters.redeliveries.add(1, {"topic": msg.topic()})
        pause = backoff_s(self._failures, self.settings.retry_backoff_max_s)
        log.warning(
            "transient failure; message will be redelivered",
            extra={"fields": {"error": repr(exc), "retry_in_s": pause}},
        )
        await asyncio.sleep(pause)
        subscription.workers.rewound(msg)
        try:
            await message.nack()
        except KafkaException as seek_error:
            # The partition was taken away meanwhile (a rebalance while the broker was away:
            # "Erroneous state"); its next owner reads the message from the committed offset. Still
            # marked as not acknowledged, so nothing after it on this partition is committed here.
            log.info("message not sought back: its partition moved", extra={"fields": {"error": repr(seek_error)}})
            await StreamMessage.nack(message)

    async def _dead_letter(
        self, message: KafkaMessage, subscription: Subscription, exc: Exception, marked: str | None = None
    ) -> None:
        """To ``<topic>.dlq`` with the reason; then, for a message of a handled type (``marked``:
        its event id), a mark in the store, written after the letter is sent (a mark without its
        letter would lose the letter; a letter without its mark, the store away, is sent again)."""
        msg = _record(message)
        letter = DeadLetter(f"{exc}", type(exc).__name__)
        if not isinstance(exc, (MalformedMessage, UnknownEventType)):
            trace_text = "".join(traceback.format_exception(exc.__cause__ or exc, limit=5))
            letter = DeadLetter(f"{exc}\n{trace_text}", type(exc).__name__)
        value, headers = letter.copy(msg, self.settings.kafka_max_message_bytes)
        try:
            await publish(self.broker, f"{msg.topic()}.dlq", msg.key(), value, headers)
        except TRANSIENT as send_error:
            # Not counted: a letter that cannot be sent has nowhere else to go.
            return await self._retry_later(message, subscription, send_error, count=False, marked=marked)
        if marked is not None:
            try:
                await self.inbox.mark_dead_lettered(marked, msg)
            except TRANSIENT as store_error:
                return await self._retry_later(message, subscription, store_error, count=False, marked=marked)
            subscription.ownership.remember(marked)
        meters.dead_letters.add(1, {"topic": msg.topic(), "error_class": letter.error_class})
        log.warning(
            "message dead-lettered",
            extra={
                "fields": {
                    "topic": msg.topic(),
                    "partition": msg.partition(),
                    "offset": msg.offset(),
                    "reason": letter.reason.splitlines()[0][:500],
                    "error_class": letter.error_class,
                    "size": len(msg.value() or b""),
                    "truncated": len(value) < len(msg.value() or b""),
                }
            },
        )
        await self._commit(message, subscription)


class ConsumePolicy(BaseMiddleware[Any, Any]):
    """This module's rules as a FastStream middleware, around the call FastStream chose: the typed
    call gets the decoded event and envelope from the message's context (``_typed``)."""

    __slots__ = ("consumer",)

    def __init__(self, msg: Any, /, *, context: ContextRepo, consumer: Consumer) -> None:
        super().__init__(msg, context=context)
        self.consumer = consumer

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]) -> Any:
        subscription = self.consumer.subscription_of(self.context.get_local("handler_"))
        if subscription is None:  # a subscriber the kernel did not make: FastStream's own way
            return await call_next(msg)

        async def handle(event: Event, envelope: Envelope) -> None:
            token = _MESSAGE.set((event, envelope))
            try:
                await call_next(msg)
            finally:
                _MESSAGE.reset(token)

        message = cast(KafkaMessage, msg)
        try:
            await self.consumer.process(message, subscription, handle)
        except Exception:  # a fault of ours: never acknowledge, never skip (FastStream would swallow it)
            log.exception("the consumer failed on a message; it is redelivered")
            subscription.workers.rewound(_record(message))
            await message.nack()
        return None


#: The message's decoded event and envelope, set by ``ConsumePolicy`` around the typed call.
_MESSAGE: ContextVar[tuple[Event, Envelope]] = ContextVar("complaints_message")
#: The epoch of its partition's ownership the message was polled in (``Ownership``), set by its
#: partition's worker around FastStream's consume path; unset (None), the inbox is always asked.
_EPOCH: ContextVar[int | None] = ContextVar("complaints_partition_epoch", default=None)


def _typed(handler: Handler) -> Callable[..., Awaitable[None]]:
    """``handler`` as a FastStream call: its event and envelope come from ``_MESSAGE``.

    Not from FastStream's ``Context()`` parameters: fast_depends resolves each of those with a
    synchronous call it runs in a worker thread (anyio's ``to_thread``), under a task group: two
    thread hand-offs a message, about a sixth of routing's CPU in a burst (py-spy, GIL samples).
    A call without parameters is awaited as it is.
    """

    async def call() -> None:
        await handler(*_MESSAGE.get())

    call.__name__ = call.__qualname__ = getattr(handler, "__name__", "handle")  # its name in AsyncAPI
    call.__doc__ = handler.__doc__
    return call


def _of_type(ce_type: str) -> Callable[[StreamMessage[Any]], bool]:
    """FastStream's filter for the messages of one CloudEvents type (binary mode: its header)."""

    def is_of_type(message: StreamMessage[Any]) -> bool:
        return bool(message.headers.get(H_TYPE) == ce_type)

    return is_of_type


async def _not_handled() -> None:
    """Every message no typed call takes (a type kept or ignored, or not one of ours at all):
    ``ConsumePolicy`` decides on it without calling this."""


#: Event ids a subscription remembers having dealt with (``Ownership``): minutes of a busy
#: consumer's messages (a relay publishes its second copy within seconds), about 1.5 MB.
RECENT_IDS = 10_000


class Ownership:
    """Where a message of a partition this consumer owns may have been handled before.

    A partition's messages are handled in order, one at a time (``PartitionWorkers``), and each
    one's inbox record (or, dead-lettered, its mark) is written before its offset is committed.
    So the messages from the committed offset on that a partition's previous owner handled are a
    prefix of what its next owner reads: once one of them is found not dealt with, none after it
    can have been, and the inbox is asked no more (one store read a message, saved; it was
    about 5 of a complaint's 46 commands). A redelivery to the same owner (a retry) finds its
    partition past its prefix: it is handled again, its effects idempotent as after any crash.

    One more kind of repeat comes later in a partition: a publisher's second copy of an event
    (the outbox relay publishes again what it could not mark as published, ADR 0003). The event
    ids this consumer dealt with lately are remembered (``RECENT_IDS``): a copy of one of them is
    dropped without a look. A copy whose first was handled by the partition's previous owner,
    arriving past the look, is handled again; its effects are idempotent by cause (ADR 0047).

    librdkafka's rebalance callbacks (in the poll thread) start a new *epoch* of a partition at
    each assignment and revocation; a message carries the epoch it was polled in, and one polled
    before a revocation never ends the look for the epoch after it.
    """

    def __init__(self) -> None:
        self._epochs: dict[tuple[str, int], int] = {}
        #: (topic, partition) -> the epoch in which the look ended
        self._settled: dict[tuple[str, int], int] = {}
        self._recent: dict[str, None] = {}  # insertion-ordered: the oldest goes first

    def remember(self, event_id: str) -> None:
        """``event_id`` was dealt with here (handled, or dead-lettered)."""
        self._recent[event_id] = None
        if len(self._recent) > RECENT_IDS:
            del self._recent[next(iter(self._recent))]

    def recalls(self, event_id: str) -> bool:
        return event_id in self._recent

    def moved(self, _consumer: object, partitions: list[TopicPartition]) -> None:
        """A rebalance callback (assigned or revoked): these partitions start a new epoch."""
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self._epochs[key] = self._epochs.get(key, 0) + 1

    def epoch(self, msg: Message) -> int:
        return self._epochs.get(position(msg)[:2], 0)

    def settled(self, msg: Message, epoch: int) -> bool:
        """Whether the look ended for ``msg``'s partition in ``epoch``."""
        return self._settled.get(position(msg)[:2]) == epoch

    def settle(self, msg: Message, epoch: int) -> None:
        """``msg`` was not dealt with before: nothing after it in its partition was (if ``epoch``
        is still the partition's: a message polled before a rebalance says nothing after it)."""
        key = position(msg)[:2]
        if self._epochs.get(key, 0) == epoch:
            self._settled[key] = epoch


class Commits:
    """The offsets of one Kafka consumer, committed behind its partitions' workers.

    A partition's worker hands over each message whose effect is recorded (``due``) and goes on
    with the next one; a task commits the latest due message of every partition in one commit,
    then counts it as progress. Waited for by the worker, the synchronous commit held the
    partition's next message for up to a poll of the consumer (CONSUMER_POLL_S: librdkafka
    answers it after the poll in progress, measured) — hops of 0.5-1 s one time in ten. Committed
    this way, an offset still follows its message's effect and every earlier message of its
    partition (a worker hands them over in order), so a crash loses nothing: what was recorded
    but not committed yet comes again, and the inbox knows it (ADR 0034).

    A commit that fails or outlasts KAFKA_COMMIT_TIMEOUT_S is tried again after a backoff, with
    whatever became due meanwhile; liveness sees no progress until one lands.
    """

    def __init__(
        self,
        timeout_s: float,
        backoff_max_s: float,
        committed: Callable[[KafkaMessage], None],
        interval_s: float = 0.0,
    ) -> None:
        self.timeout_s, self.backoff_max_s, self.committed = timeout_s, backoff_max_s, committed
        #: Least time from one commit to the next (KAFKA_COMMIT_INTERVAL_S): what becomes due
        #: meanwhile goes in the next one.
        self.interval_s = interval_s
        #: (topic, partition) -> the latest message of that partition whose offset is due
        self._due: dict[tuple[str, int], KafkaMessage] = {}
        self._wake, self._idle = asyncio.Event(), asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        #: Where the blocking commits run, one after another (a new one after a commit that hung).
        self._thread = DaemonThread("kafka-commit")

    async def due(self, message: KafkaMessage) -> None:
        if not isinstance(message.consumer, AsyncConfluentConsumer):
            await message.ack()  # FastStream's in-process broker (TestKafkaBroker): no offsets
            return self.committed(message)
        await StreamMessage.ack(message)  # handled, for FastStream; not its commit of every partition
        self._due[position(_record(message))[:2]] = message
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="offset commits")

    async def flush(self, timeout_s: float) -> None:
        """At stop: commit what is due (at most ``timeout_s``), then end the task."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            log.warning("offsets still due at stop: their messages come again (the inbox knows them)")
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._due = self._due, {}
            if not batch:
                self._idle.set()
                continue
            try:
                await _commit_offsets(list(batch.values()), self.timeout_s, self._thread)
            except (KafkaException, TimeoutError) as exc:
                if isinstance(exc, TimeoutError):  # the thread may wait for good: leave it to it
                    self._thread = DaemonThread("kafka-commit")
                failures += 1
                for key, message in batch.items():
                    self._due.setdefault(key, message)  # unless a later one of its partition is due
                pause = backoff_s(failures, self.backoff_max_s)
                log.warning(
                    "offset commit failed; tried again",
                    extra={"fields": {"error": repr(exc), "retry_in_s": pause}},
                )
                await asyncio.sleep(pause)
                self._wake.set()
                continue
            failures = 0
            for message in batch.values():
                self.committed(message)
            if not self._due:
                self._idle.set()
            # Back to back, a busy consumer committed about once per message handled (each a
            # write to the broker's offsets log and a thread hand-off here). A pause between
            # commits lets those due meanwhile go in one; a crash redelivers at most this much
            # more, which the inbox recognises.
            await asyncio.sleep(self.interval_s)


class PartitionWorkers:
    """The messages of each partition handled in order, the partitions side by side.

    FastStream delivers a consumer's messages one at a time, and its own concurrent mode acks
    first (its ``max_workers`` refuses manual commits). Here the subscriber only hands each
    message to its partition's worker, through a short queue that holds the poll back when the
    worker is behind. A partition's offsets are still committed one by one, in order, after each
    message's effect is recorded, so a crash loses nothing and skips nothing.

    A message to be redelivered has had its partition sought back (``rewound``): the messages
    after it already queued, or polled before the seek took effect, are dropped until it comes
    again. It may never come again: its partition moved meanwhile (the seek failed) and came back
    from a committed offset past it, or its commit was late rather than lost. So a later message
    is dropped only while the group's committed offset says the rewound one is still to come.
    """

    def __init__(
        self,
        handle: Callable[[Message], Awaitable[object]],
        depth: int,
        committed: Callable[[Message], Awaitable[int]],
    ) -> None:
        self.handle, self.depth = handle, depth
        #: The group's committed offset of a message's partition (-1: none).
        self.committed = committed
        self._queues: dict[tuple[str, int], asyncio.Queue[tuple[Message, int | None]]] = {}
        #: (topic, partition) -> offset of the message that comes again; later ones are stale.
        self._rewound: dict[tuple[str, int], int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    async def submit(self, msg: Message, epoch: int | None = None) -> None:
        """Queue ``msg`` for its partition's worker; ``epoch``: its partition's (``Ownership``)."""
        if self._closed:
            return  # stopping: not acknowledged, so the group's next owner gets it
        key = position(msg)[:2]
        if (queue := self._queues.get(key)) is None:
            queue = self._queues[key] = asyncio.Queue(self.depth)
            self._tasks.append(asyncio.create_task(self._work(key, queue), name=f"partition {key}"))
        await queue.put((msg, epoch))

    def rewound(self, msg: Message) -> None:
        """``msg`` is sought back: it comes again, and the messages after it polled meanwhile are stale."""
        topic, partition, offset = position(msg)
        self._rewound[topic, partition] = offset

    async def _work(self, key: tuple[str, int], queue: asyncio.Queue[tuple[Message, int | None]]) -> None:
        while True:
            msg, epoch = await queue.get()
            _EPOCH.set(epoch)  # this task's own context: read by the policy for this message
            try:
                rewound = self._rewound.get(key)
                if rewound is not None and position(msg)[2] > rewound:
                    if await self.committed(msg) <= rewound:
                        continue  # polled before the seek back: it comes again after the rewound one
                    log.info(
                        "a rewound message was committed meanwhile: its partition goes on",
                        extra={"fields": {"topic": key[0], "partition": key[1], "rewound_offset": rewound}},
                    )
                self._rewound.pop(key, None)
                await self.handle(msg)
            except Exception:  # never let a partition's worker die (FastStream's consume logs and
                log.exception("partition worker failed on a message")  # swallows a handler's errors)
            finally:
                queue.task_done()

    async def drain(self, timeout_s: float) -> None:
        """Take no more messages; wait (at most ``timeout_s``) for the queued ones, then stop."""
        self._closed = True
        try:
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._queues.values())), timeout_s)
        except TimeoutError:
            log.warning("messages still queued at stop: not committed, they are redelivered")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _commit_offsets(messages: list[KafkaMessage], timeout_s: float, thread: DaemonThread) -> None:
    """Commit these messages' offsets (one per partition, of one consumer), and only their
    partitions', within ``timeout_s``.

    FastStream's ``ack`` commits the consumer's whole position: every partition's last polled
    message. A message of another partition that failed and waits for its retry (seeked back)
    was polled too, so a crash after that commit would skip it for good (seen in notify's restart
    test; tests/integration/test_retry_offsets.py).

    librdkafka's synchronous commit waits without a deadline, and once waited for good after a
    broker restart (issue 21): it runs in ``thread``, a daemon thread, which a commit that never
    returns may keep (a daemon thread does not hold the process at exit), and the wait for it is
    bounded. A late, refused or failed commit raises ``TimeoutError`` or ``KafkaException``.
    """
    consumer = cast(AsyncConfluentConsumer, messages[0].consumer).consumer
    offsets = [
        TopicPartition(topic, partition, offset + 1)
        for topic, partition, offset in map(position, map(_record, messages))
    ]
    done: list[TopicPartition] = await asyncio.wait_for(
        thread.run(consumer.commit, offsets=offsets, asynchronous=False), timeout_s
    )
    failed = [tp.error for tp in done or () if tp.error is not None]
    if failed:  # a partition's error comes back in the answer, not as an exception
        raise KafkaException(failed[0])


async def _committed_offset(subscriber: DefaultSubscriber, msg: Message) -> int:
    """The group's committed offset of ``msg``'s partition, as the broker has it; -1 when it
    cannot say (then the message is taken for stale: it comes again after the rewound one)."""
    topic, partition, _ = position(msg)
    if subscriber.consumer is None:
        return -1
    try:
        answer = await asyncio.wait_for(
            _in_daemon_thread(
                subscriber.consumer.consumer.committed,
                partitions=[TopicPartition(topic, partition)],
                timeout=2,
            ),
            3,
        )  # a broker away: the answer "cannot say" in 2 s, not librdkafka's wait
    except (KafkaException, TimeoutError):
        return -1
    return answer[0].offset if answer and answer[0].error is None else -1


def _in_daemon_thread(call: Callable[..., T], /, **kwargs: object) -> asyncio.Future[T]:
    """Run a blocking call in a new daemon thread; its result (or error) as an asyncio future."""
    return DaemonThread("kafka-call", calls=1).run(call, **kwargs)


class DaemonThread:
    """A daemon thread that runs blocking calls one after another, each answered as an asyncio
    future. Started with the first call and kept: a thread started per offset commit cost 4 % of
    notify's event loop under the burst (py-spy). A call that never returns keeps the thread (a
    daemon does not hold the process at exit); the caller's bounded wait gives up on it, and the
    caller moves to a new thread. ``calls``: how many it runs before it ends (None: no end)."""

    def __init__(self, name: str, calls: int | None = None) -> None:
        self.name, self.calls = name, calls
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, call: Callable[..., T], /, **kwargs: object) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(result: T | None = None, error: BaseException | None = None) -> None:
            if not future.done():  # the waiter may have given up (timeout)
                # (``result`` is None only alongside an error)
                future.set_exception(error) if error is not None else future.set_result(cast(T, result))

        def work() -> None:
            result: T | None
            error: BaseException | None
            try:
                result, error = call(**kwargs), None
            except BaseException as exc:  # noqa: BLE001 - handed to the waiter
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(settle, result, error)
            except RuntimeError:
                pass  # the loop is closed: nobody waits any more

        self._queue.put(work)
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, daemon=True, name=self.name)
            self._thread.start()
        return future

    def _serve(self) -> None:
        served = 0
        while self.calls is None or served < self.calls:
            self._queue.get()()
            served += 1


async def _undecoded(message: KafkaMessage) -> bytes:
    """Leave the body as bytes: ``process`` decodes it, so a bad body is a dead letter, not a crash."""
    return message.body


def _record(message: KafkaMessage) -> Message:
    """The confluent message a subscriber of ours received: always one (FastStream's type also allows
    the tuple of a batch subscriber, and none of ours is one)."""
    return cast(Message, message.raw_message)
