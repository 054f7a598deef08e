"""The routing service on the real broker and store: intake's callbacks become dispatches or a queue."""

from __future__ import annotations

import asyncio

from tests.integration.routing.conftest import token
from tests.integration.routing.story import (
    PHONE,
    a_callback_on_a_driver_complaint,
    make_available,
    published_for,
    register,
)
from tests.integration.support import wait_for


async def test_a_callback_is_dispatched_to_the_longest_idle_agent_with_the_skill(routing):
    for agent_id, skills in (
        ("agt-bo", ["refund"]),
        ("agt-cy", ["delivery_driver_conduct"]),
        ("agt-ana", ["delivery_driver_conduct"]),
    ):
        await register(routing, agent_id, skills)
        await make_available(routing, agent_id)  # in this order: bo idle longest, but without the skill
    complaint_id, callback_id = a_callback_on_a_driver_complaint(routing)

    assigned, dispatched = await asyncio.to_thread(
        published_for, routing.config.kafka_bootstrap_servers, complaint_id, 2
    )

    assert assigned.type == "complaints.routing.AgentAssigned.v1" and assigned.data["agent_id"] == "agt-cy"
    assert dispatched.type == "complaints.routing.CallbackDispatched.v1"
    assert dispatched.data | {"dispatched_at": None} == {
        "complaint_id": complaint_id,
        "callback_id": callback_id,
        "agent_id": "agt-cy",
        "phone": PHONE,
        "dispatched_at": None,
    }

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
    assert customer.status_code == 403 and "for agent, supervisor only" in customer.json()["message"]
    unknown = await routing.get(path, headers=token(routing, "agent", "agt-nobody"))
    assert unknown.status_code == 403 and "'agt-nobody' is not on the roster" in unknown.json()["message"]
    supervised = await routing.get(path, headers=token(routing, "supervisor"))
    assert supervised.status_code == 404 and "agt-nobody" in supervised.json()["message"]


async def test_changing_the_availability_of_an_unknown_agent_is_a_404_naming_it(routing):
    answer = await routing.put(
        "/api/agents/agt-ghost/availability", json={"availability": "available"}, headers=token(routing, "supervisor")
    )
    assert answer.status_code == 404 and "agt-ghost" in answer.json()["message"]
