"""Issue 16, item 4: on a stack with SASL/SCRAM and ACLs (``stack.sh --auth``), a service's
credentials reach its own topic and group only, and a client without credentials reaches nothing.

Skipped on a stack without users (the default): KAFKA_CREDENTIALS_FILE is what ``stack.sh env``
exports for an ``--auth`` stack, with each service's password.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from contracts import TOPICS
from services.kernel.kafka import client_config, make_broker, publish
from services.kernel.settings import KernelSettings

CREDENTIALS = os.environ.get("KAFKA_CREDENTIALS_FILE")
pytestmark = pytest.mark.skipif(not CREDENTIALS, reason="the broker has no users (start the stack with --auth)")
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")


def as_service(service: str) -> KernelSettings:
    """A service's settings with its own Kafka user, as its Deployment has them."""
    secrets = dict(line.split("=", 1) for line in Path(CREDENTIALS).read_text().split())
    return KernelSettings(service_name=service, kafka_bootstrap_servers=BOOTSTRAP,
                          kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username=f"complaints-{service}",
                          kafka_sasl_password=secrets[f"{service.upper()}_PASSWORD"])


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


async def test_intake_writes_its_own_topic_but_not_routing_s():
    intake = as_service("intake")

    assert await sent(intake, TOPICS["intake"]) is None
    refused = await sent(intake, TOPICS["routing"])
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_intake_cannot_join_routing_s_consumer_group():
    consumer = Consumer({**client_config(as_service("intake")), "group.id": "complaints.routing",
                         "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([TOPICS["intake"]])
        assert first_refusal(consumer).code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    finally:
        consumer.close()


def test_a_client_without_credentials_can_neither_produce_nor_consume():
    anonymous = {**client_config(KernelSettings(kafka_bootstrap_servers=BOOTSTRAP, kafka_security_protocol="PLAINTEXT")),
                 "socket.connection.setup.timeout.ms": 3000}
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
