"""Issue 16, item 4: on a stack with SASL/SCRAM and ACLs (``stack.sh --auth``), a service's
credentials reach its own topic and group only, and a client without credentials reaches nothing.

Runs on ``make test``'s stack, which has users by default; skipped on a stack without them
(``make test KAFKA_AUTH=0``): KAFKA_CREDENTIALS_FILE is what ``stack.sh env`` exports for an
``--auth`` stack, with each service's password.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from contracts import TOPICS
from services.kernel.kafka import client_config, make_broker, publish
from services.kernel.lag import DownstreamLag
from services.kernel.settings import KernelSettings
from tests.integration.support import KAFKA_CREDENTIALS_FILE, service_credentials

pytestmark = pytest.mark.skipif(
    not KAFKA_CREDENTIALS_FILE, reason="the broker has no users (start the stack with --auth)"
)
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")


def as_service(service: str) -> KernelSettings:
    """A service's settings with its own Kafka user, as its Deployment has them."""
    return KernelSettings(service_name=service, kafka_bootstrap_servers=BOOTSTRAP, **service_credentials(service))


async def sent(settings: KernelSettings, topic: str) -> KafkaError | None:
    """Publish one message through the kernel's broker with these credentials; the refusal, if any."""
    broker = make_broker(settings)
    await broker.connect()
    try:
        await asyncio.wait_for(publish(broker, topic, b"acl-check", b"{}", []), 20)
        return None
    except KafkaException as exc:
        return exc.args[0]
    finally:
        await broker.stop()


@pytest.mark.parametrize(
    ("service", "foreign"), [("intake", "routing"), ("routing", "intake"), ("carrier", "intake"), ("notify", "intake")]
)
async def test_a_service_writes_its_own_topic_and_no_other_s(service, foreign):
    """Nobody but intake can put a forged ComplaintFiled on intake's topic (routing would open a
    case intake never had), and intake cannot speak for routing."""
    settings = as_service(service)

    assert await sent(settings, TOPICS[service]) is None
    refused = await sent(settings, TOPICS[foreign])
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_intake_cannot_join_routing_s_consumer_group():
    consumer = Consumer(
        {**client_config(as_service("intake")), "group.id": "complaints.routing", "auto.offset.reset": "earliest"}
    )
    try:
        consumer.subscribe([TOPICS["intake"]])
        assert first_refusal(consumer).code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    finally:
        consumer.close()


async def test_intake_may_read_how_far_behind_routing_and_notify_are_for_its_call_me_admission():
    """Describe on those two groups, nothing more (ADR 0051): without it the admission would
    never refuse, and only a warning in the log would say so."""
    behind = DownstreamLag(
        client_config(as_service("intake")),
        [("complaints.routing", TOPICS["intake"]), ("complaints.notify", TOPICS["routing"])],
    )
    carrier = DownstreamLag(client_config(as_service("intake")), [("complaints.carrier", TOPICS["intake"])])
    try:
        await behind.poll()  # a refusal raises (GROUP_AUTHORIZATION_FAILED)
        with pytest.raises(KafkaException):
            await carrier.poll()
    finally:
        await behind.close()
        await carrier.close()


def test_a_client_without_credentials_can_neither_produce_nor_consume():
    anonymous = {
        **client_config(KernelSettings(kafka_bootstrap_servers=BOOTSTRAP, kafka_security_protocol="PLAINTEXT")),
        "socket.connection.setup.timeout.ms": 3000,
    }
    producer, outcomes = Producer({**anonymous, "message.timeout.ms": 4000}), []
    producer.produce(TOPICS["intake"], b"forged", key=b"c-1", on_delivery=lambda err, _: outcomes.append(err))
    producer.flush(10)
    assert outcomes and outcomes[0] is not None, "a message without credentials was accepted"
    with pytest.raises(KafkaException):
        AdminClient(anonymous).list_topics(timeout=4)


def first_refusal(consumer: Consumer, timeout_s: float = 20) -> KafkaError:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            msg = consumer.poll(0.5)
        except KafkaException as exc:
            return exc.args[0]
        if msg is not None and msg.error():
            return msg.error()
    raise AssertionError(f"no refusal within {timeout_s} s")
