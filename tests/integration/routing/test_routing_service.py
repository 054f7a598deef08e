"""The routing service on the real broker and store: intake's callbacks become dispatches or a queue."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from confluent_kafka import Consumer

from contracts import TOPICS
from contracts.envelope import Event, from_kafka, to_kafka
from contracts.intake import CallbackRequested, Category, Channel, Complainant, ComplaintFiled
from services.kernel.eventstore import Cause
from tests.integration.routing.conftest import token
from tests.integration.support import produce_raw, wait_for

PHONE = "+447700900123"


def put_on_intake_topic(routing, *events: Event) -> None:
    """Produce events as intake publishes them (CloudEvents keyed by complaint id)."""
    store, now = routing.app.state.services.runtime.store, datetime.now(UTC)
    produce_raw(routing.config.kafka_bootstrap_servers, TOPICS["intake"], [
        to_kafka(store.envelope(e, str(uuid.uuid4()), Cause.of_request(str(uuid.uuid4()), "intake"), now)
                 .model_copy(update={"source": "/services/intake"})) for e in events])


def a_callback_on_a_driver_complaint(routing) -> tuple[str, str]:
    complaint_id, callback_id = f"c-{uuid.uuid4().hex[:12]}", f"cb-{uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC)
    put_on_intake_topic(
        routing,
        ComplaintFiled(complaint_id=complaint_id, category=Category.DELIVERY_DRIVER_CONDUCT,
                       description="The driver threw the parcel over the fence.", channel=Channel.WEB,
                       complainant=Complainant(phone=PHONE), filed_at=now),
        CallbackRequested(complaint_id=complaint_id, callback_id=callback_id, phone=PHONE, requested_at=now))
    return complaint_id, callback_id


def published_for(bootstrap: str, complaint_id: str, count: int, timeout: float = 60) -> list:
    """The first ``count`` events routing published on its topic about ``complaint_id``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([TOPICS["routing"]])
    found, deadline = [], time.monotonic() + timeout
    try:
        while len(found) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error() and msg.key() == complaint_id.encode():
                found.append(from_kafka(msg.value(), msg.headers()))
    finally:
        consumer.close()
    assert len(found) >= count, f"routing published {found} about {complaint_id} within {timeout}s"
    return found


async def register(routing, agent_id: str, skills: list[str]) -> None:
    answer = await routing.post("/api/agents", headers=token(routing, "supervisor"), json={
        "agent_id": agent_id, "name": agent_id, "skills": skills, "languages": ["en-GB"], "capacity": 1})
    assert answer.status_code == 201, answer.text


async def make_available(routing, agent_id: str) -> None:
    answer = await routing.put(f"/api/agents/{agent_id}/availability", json={"availability": "available"},
                               headers=token(routing, "agent", agent_id))
    assert answer.status_code == 200 and answer.json()["availability"] == "available", answer.text


async def test_a_callback_is_dispatched_to_the_longest_idle_agent_with_the_skill(routing):
    for agent_id, skills in (("agt-bo", ["refund"]), ("agt-cy", ["delivery_driver_conduct"]),
                             ("agt-ana", ["delivery_driver_conduct"])):
        await register(routing, agent_id, skills)
        await make_available(routing, agent_id)  # in this order: bo idle longest, but without the skill
    complaint_id, callback_id = a_callback_on_a_driver_complaint(routing)

    assigned, dispatched = await asyncio.to_thread(
        published_for, routing.config.kafka_bootstrap_servers, complaint_id, 2)

    assert assigned.type == "complaints.routing.AgentAssigned.v1" and assigned.data["agent_id"] == "agt-cy"
    assert dispatched.type == "complaints.routing.CallbackDispatched.v1"
    assert dispatched.data | {"dispatched_at": None} == {"complaint_id": complaint_id, "callback_id": callback_id,
                                                         "agent_id": "agt-cy", "phone": PHONE, "dispatched_at": None}

    async def in_queue_of_cy():
        answer = await routing.get("/api/agents/agt-cy/queue", headers=token(routing, "agent", "agt-cy"))
        return [c["complaint_id"] for c in answer.json()["cases"]] == [complaint_id]
    await wait_for(in_queue_of_cy, timeout=60)


async def test_with_no_agent_available_the_callback_is_queued_with_its_position(routing):
    await register(routing, "agt-off", ["delivery_driver_conduct"])  # registered, but offline
    complaint_id, callback_id = a_callback_on_a_driver_complaint(routing)

    [queued] = await asyncio.to_thread(published_for, routing.config.kafka_bootstrap_servers, complaint_id, 1)

    assert queued.type == "complaints.routing.CallbackQueued.v1"
    assert queued.data["callback_id"] == callback_id and queued.data["position"] == 1
    assert queued.data["estimated_wait_s"] > 0


async def test_agent_endpoints_refuse_a_missing_or_wrong_token_and_a_customers(routing):
    path = "/api/agents/agt-nobody/queue"
    assert (await routing.get(path)).status_code == 401
    wrong = await routing.get(path, headers=token(routing, "agent", key="another-key-of-at-least-32-characters"))
    assert wrong.status_code == 401 and wrong.json()["message"].startswith("Authorization")
    customer = await routing.get(path, headers=token(routing, "customer", "cust-1"))
    assert customer.status_code == 403 and "agents" in customer.json()["message"]
    unknown = await routing.get(path, headers=token(routing, "agent", "agt-nobody"))
    assert unknown.status_code == 404 and "agt-nobody" in unknown.json()["message"]


async def test_changing_the_availability_of_an_unknown_agent_is_a_404_naming_it(routing):
    answer = await routing.put("/api/agents/agt-ghost/availability", json={"availability": "available"},
                               headers=token(routing, "supervisor"))
    assert answer.status_code == 404 and "agt-ghost" in answer.json()["message"]
