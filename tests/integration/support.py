"""Helpers shared by the integration tests: waiting, producing raw messages, service processes."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from pymongo import AsyncMongoClient, monitoring

from contracts import TOPICS
from contracts.envelope import to_kafka
from contracts.routing import AgentRegistered
from services.kernel.eventstore import Cause
from services.kernel.kafka import client_config
from services.kernel.settings import KernelSettings
from services.kernel.staff import StaffDirectory

ROOT = Path(__file__).resolve().parents[2]


async def wait_for(predicate, timeout: float = 30.0, every: float = 0.05):
    """Call ``predicate()`` (a plain or an async function) until it returns something truthy;
    fail with its last result."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: last result {result!r}")
        await asyncio.sleep(every)


#: The broker's own limit, the largest message a topic of ours holds (KAFKA_MAX_MESSAGE_BYTES):
#: tests put what any producer could on a topic, not only what ours would.
BROKER_MAX_MESSAGE_BYTES = 1_048_588


def kafka_config(bootstrap: str, **extra) -> dict:
    """How every Kafka client a test makes itself connects: to ``bootstrap``, secured as the
    environment says (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*: on a stack started with ``--auth``,
    the admin's credentials), through the services' own function, so no test client is forgotten
    when the broker asks for credentials."""
    return {**client_config(KernelSettings(kafka_bootstrap_servers=bootstrap)), **extra}


#: On a stack with Kafka users (``stack.sh --auth``, the default of ``make test``) the file of their
#: passwords, as ``stack.sh env`` exports it; unset on a stack without users.
KAFKA_CREDENTIALS_FILE = os.environ.get("KAFKA_CREDENTIALS_FILE")


def service_credentials(service: str) -> dict[str, str]:
    """The Kafka settings of ``service``'s own user (``complaints-<service>``, with the ACLs of its
    Strimzi KafkaUser), as its Deployment has them: a service started by a test then meets the
    refusals a cluster would give it. Empty on a stack without users."""
    if not KAFKA_CREDENTIALS_FILE:
        return {}
    return {
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_username": f"complaints-{service}",
        "kafka_sasl_password": kafka_passwords()[f"{service.upper()}_PASSWORD"],
    }


def kafka_passwords() -> dict[str, str]:
    """The stack's Kafka passwords by name (ADMIN_PASSWORD, INTAKE_PASSWORD, …); none without users."""
    if not KAFKA_CREDENTIALS_FILE:
        return {}
    return dict(line.split("=", 1) for line in Path(KAFKA_CREDENTIALS_FILE).read_text().split() if "=" in line)


def service_credentials_env(service: str) -> dict[str, str]:
    """:func:`service_credentials` as the environment of a service process."""
    return {key.upper(): value for key, value in service_credentials(service).items()}


def own_stack_options(env: dict[str, str]) -> list[str]:
    """What a test's own stack (``stack.sh start``) needs to ask for the same users and passwords as
    the shared stack: ``--auth`` with the shared stack's passwords (added to ``env``), so every
    client of the test, configured from the environment, connects to both. None without users."""
    if not KAFKA_CREDENTIALS_FILE:
        return []
    env["STACK_KAFKA_CREDENTIALS"] = KAFKA_CREDENTIALS_FILE
    return ["--auth"]


def consumer_lag(bootstrap: str, group_id: str, topics: list[str]) -> int:
    """Messages on ``topics`` that ``group_id`` has not committed yet. Reading a group's committed
    offsets does not join the group: the service's consumers are not disturbed."""
    consumer = Consumer(kafka_config(bootstrap, **{"group.id": group_id, "enable.auto.commit": False}))
    try:
        lag = 0
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is None or meta.error is not None:
                continue
            partitions = [TopicPartition(topic, p) for p in meta.partitions]
            for committed in consumer.committed(partitions, timeout=10):
                low, high = consumer.get_watermark_offsets(committed, timeout=10)
                lag += high - (committed.offset if committed.offset >= 0 else low)
        return lag
    finally:
        consumer.close()


async def quiescent(runtime, *also, timeout: float = 30.0) -> None:
    """Wait until the service has nothing left to do: every message of the topics it consumes
    committed by its groups, no log entry pending, and each of ``also`` (predicates, plain or async)
    true. What a test asserts after this cannot change any more: the place of a blind sleep that
    "proves nothing else happens"."""

    async def idle() -> bool:
        lag = await asyncio.to_thread(
            lambda: sum(
                consumer_lag(runtime.settings.kafka_bootstrap_servers, group, topics)
                for group, topics in runtime.consumer.subscriptions
            )
        )
        if lag or await runtime.store.pending.count_documents({}):
            return False
        for predicate in also:
            result = predicate()
            if not (await result if inspect.isawaitable(result) else result):
                return False
        return True

    await wait_for(idle, timeout=timeout, every=0.1)


def produce_raw(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes, list]]) -> None:
    """Put messages on a topic exactly as given (for poison-message tests)."""
    producer = Producer(kafka_config(bootstrap, **{"message.max.bytes": BROKER_MAX_MESSAGE_BYTES}))
    for key, value, headers in messages:
        producer.produce(topic, key=key, value=value, headers=headers)
    assert producer.flush(10) == 0


def events_on(
    bootstrap: str,
    topic: str,
    key: str,
    count: int,
    timeout: float = 60,
    settle: float = 0.0,
    source: str | None = None,
    ce_type: str | None = None,
) -> list:
    """The CloudEvents on ``topic`` keyed ``key`` (from ``source``, of ``ce_type``, if given), read
    from the start by a reader of its own: at least ``count`` of them within ``timeout``; with
    ``settle``, reading goes on that long after the count is reached (to see that no more come)."""
    from contracts.envelope import from_kafka

    consumer = Consumer(
        kafka_config(
            bootstrap,
            **{"group.id": f"reader-{uuid.uuid4()}", "auto.offset.reset": "earliest", "enable.auto.commit": False},
        )
    )
    consumer.subscribe([topic])
    found, deadline, settled = [], time.monotonic() + timeout, None
    try:
        while time.monotonic() < deadline:
            if len(found) >= count:
                settled = settled or time.monotonic() + settle
                if time.monotonic() >= settled:
                    break
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error() and msg.key() == key.encode():
                envelope = from_kafka(msg.value(), msg.headers())
                if (source is None or envelope.source == source) and (ce_type is None or envelope.type == ce_type):
                    found.append(envelope)
    finally:
        consumer.close()
    assert len(found) >= count, f"{[e.type for e in found]} on {topic} about {key} within {timeout}s"
    return found


async def count_at_least(collection, expected: int) -> bool:
    return await collection.count_documents({}) >= expected


class ServiceProcess:
    """A crashable service (tests/integration/processes/crashable.py) as a real OS process."""

    def __init__(self, role: str, settings, topic: str, tmp_path: Path, log: Path | None = None, **env: str) -> None:
        self.marker = tmp_path / f"{role}-{os.urandom(4).hex()}.marker"
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TEST_TOPIC": topic,
            "TEST_MARKER": str(self.marker),
            "SERVICE_NAME": settings.service_name,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "MONGODB_URL": settings.mongodb_url,
            "MONGODB_DATABASE": settings.database_name,
            "LEASE_TTL_S": "2",
            "OUTBOX_POLL_INTERVAL_S": "0.2",
            **env,
        }
        out = log.open("ab") if log is not None else None  # its JSON log lines, to read them
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.processes.crashable", role],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=out,
        )

    async def hung(self, timeout: float = 60) -> None:
        """Wait until the process reached its hang point."""
        await wait_for(lambda: self.marker.exists() or self.proc.poll() is not None, timeout)
        assert self.proc.poll() is None, f"process exited with {self.proc.returncode} before the hang point"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def group_state(settings, group: str) -> str:
    """The consumer group as the broker sees it (members, assignment, committed offsets): for failures."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(kafka_config(settings.kafka_bootstrap_servers))
    try:
        described = admin.describe_consumer_groups([group])[group].result(timeout=10)
        offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=10)
        members = [(m.client_id, [p.partition for p in m.assignment.topic_partitions]) for m in described.members]
        committed = {tp.partition: tp.offset for tp in offsets.topic_partitions if tp.offset >= 0}
        return f"state={described.state} members={members} committed={committed}"
    except Exception as exc:  # diagnostics must not hide the real failure
        return f"(could not describe the group: {exc})"


def skip_history(bootstrap: str, group_id: str, topic: str, attempts: int = 20) -> None:
    """Commit the group's offsets at the topic's end: the shared intake topic holds every earlier
    test's complaints and callbacks, which would otherwise fill this test's queue and agents.

    A topic created a moment ago may not have its partition leaders yet (NOT_LEADER_FOR_PARTITION
    on a fresh stack): asked again, half a second apart."""
    for attempt in range(attempts):
        try:
            return _commit_at_the_end(bootstrap, group_id, topic)
        except KafkaException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def commit_offsets(bootstrap: str, group_id: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit ``group_id``'s offsets on ``topic`` (partition -> offset), as its consumer would,
    without joining the group: a group made to lag or to catch up."""
    consumer = Consumer(kafka_config(bootstrap, **{"group.id": group_id, "enable.auto.commit": False}))
    try:
        _commit(consumer, group_id, [TopicPartition(topic, p, o) for p, o in offsets.items()])
    finally:
        consumer.close()


def _commit_at_the_end(bootstrap: str, group_id: str, topic: str) -> None:
    consumer = Consumer(kafka_config(bootstrap, **{"group.id": group_id, "enable.auto.commit": False}))
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return  # a new topic has no history; the service creates it
        ends = [
            TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
            for p in meta.partitions
        ]
        _commit(consumer, group_id, ends)
    finally:
        consumer.close()


def _commit(consumer: Consumer, group_id: str, offsets: list[TopicPartition]) -> None:
    """Commit ``offsets`` and check the group kept them."""
    # A partition's error comes back in the answer, not as an exception: unchecked, that
    # partition would keep no offset (a service would read its whole history, a lag stay put).
    failed = [tp for tp in consumer.commit(offsets=offsets, asynchronous=False) if tp.error is not None]
    if failed:
        raise KafkaException(failed[0].error)
    committed = {tp.partition: tp.offset for tp in consumer.committed(offsets, timeout=10)}
    if any(committed.get(tp.partition) != tp.offset for tp in offsets):
        raise KafkaException(KafkaError(KafkaError._STATE, f"offsets of {group_id} on {offsets[0].topic} not kept"))


async def on_the_roster(app, agent_id: str, teams: tuple[str, ...] = ()) -> None:
    """Put ``agent_id`` on routing's roster as the other services learn it: routing's
    ``AgentRegistered`` on its real topic, then wait until ``app``'s staff directory has it."""
    runtime, now = app.state.services.runtime, datetime.now(UTC)
    registered = AgentRegistered(
        agent_id=agent_id,
        name=agent_id,
        skills=["other"],
        languages=["en"],
        capacity=1,
        teams=list(teams),
        registered_at=now,
    )
    envelope = runtime.store.envelope(registered, str(uuid.uuid4()), Cause.of_request(str(uuid.uuid4()), "roster"), now)
    produce_raw(
        runtime.settings.kafka_bootstrap_servers,
        TOPICS["routing"],
        [to_kafka(envelope.model_copy(update={"source": "/services/routing"}))],
    )
    await wait_for(lambda: StaffDirectory(runtime.store.db).on_roster(agent_id), timeout=30)


def wait_until_ready(name: str, url: str, process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    """Wait for a service process started by a test to answer ``/health/ready`` with 200; fail
    with the end of its log if it exits or does not get there in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{name} exited with {process.returncode}:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{name} not ready within {timeout_s}s:\n{log.read_text()[-3000:]}")


def stop_processes(processes) -> None:
    """SIGTERM every process (graceful stop), then kill those not gone within 30 s."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def code_as_notify_reads_it(verification_id: str, code_sealed: str) -> str:
    """The one-time code a person reads in their email or text: notify opens the sealed code with
    its private key (the local stack's; docs/adr/0025). Tests that run no notify read it so."""
    from services.kernel.sealed_codes import DEV_PRIVATE_KEY, open_sealed

    return open_sealed(code_sealed, verification_id, [DEV_PRIVATE_KEY])


async def documents_holding(db, text: str) -> list[str]:
    """Every document of the database whose JSON form contains ``text`` (as collection/_id)."""
    from bson import json_util

    found = []
    for name in await db.list_collection_names():
        async for doc in db[name].find({}):
            if text in json_util.dumps(doc):
                found.append(f"{name}/{doc.get('_id')}")
    return found


@asynccontextmanager
async def intake_beside(settings: KernelSettings, order_system_url: str):
    """The real intake app beside the service a test is about (its settings: same broker and
    store), in its own group and database, reading every topic from now on; yields the app, whose
    ``state.services.settings`` are intake's. Its database goes at the end."""
    from services.intake.app import create_app
    from services.intake.settings import IntakeSettings

    config = IntakeSettings(
        **{
            **settings.model_dump(),
            "service_name": f"intake-{settings.service_name}",
            "mongodb_database": f"{settings.database_name}_intake",
            "order_system_url": order_system_url,
        }
    )
    for topic in TOPICS.values():
        await asyncio.to_thread(skip_history, config.kafka_bootstrap_servers, config.consumer_group, topic)
    app = create_app(config)
    try:
        async with app.router.lifespan_context(app):
            yield app
    finally:
        client = AsyncMongoClient(config.mongodb_url)
        await client.drop_database(config.database_name)
        await client.close()


class CommandNames(monitoring.CommandListener):
    """The names of the commands a client sent, in order (PyMongo command monitoring)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def count(self, name: str) -> int:
        return self.names.count(name)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
