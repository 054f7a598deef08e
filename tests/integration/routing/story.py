"""The story steps the routing tests share: intake's and notify's events put on their topics,
agents registered and made available, and what routing published, read back from Kafka."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts import TOPICS
from contracts.envelope import Event, to_kafka
from contracts.intake import CallbackRequested, Category, Channel, Complainant, ComplaintFiled
from services.kernel.eventstore import Cause
from tests.integration.routing.conftest import token
from tests.integration.support import events_on, produce_raw

PHONE = "+447700900123"


def put_on_topic(routing, service: str, *events: Event) -> None:
    """Produce events as ``service`` publishes them (CloudEvents keyed by their subject)."""
    store, now = routing.app.state.services.runtime.store, datetime.now(UTC)
    produce_raw(
        routing.config.kafka_bootstrap_servers,
        TOPICS[service],
        [
            to_kafka(
                store.envelope(e, str(uuid.uuid4()), Cause.of_request(str(uuid.uuid4()), service), now).model_copy(
                    update={"source": f"/services/{service}"}
                )
            )
            for e in events
        ],
    )


def put_on_intake_topic(routing, *events: Event) -> None:
    put_on_topic(routing, "intake", *events)


def filed(category: Category = Category.DELIVERY_DRIVER_CONDUCT, **fields) -> ComplaintFiled:
    """A complaint as intake files it, with a fresh id."""
    return ComplaintFiled(
        **{
            "complaint_id": f"c-{uuid.uuid4().hex[:12]}",
            "category": category,
            "description": "The driver threw the parcel over the fence.",
            "channel": Channel.WEB,
            "complainant": Complainant(phone=PHONE),
            "filed_at": datetime.now(UTC),
            **fields,
        }
    )


def callback_on(complaint: ComplaintFiled) -> CallbackRequested:
    return CallbackRequested(
        complaint_id=complaint.complaint_id,
        callback_id=f"cb-{uuid.uuid4().hex[:12]}",
        phone=PHONE,
        requested_at=datetime.now(UTC),
    )


def a_callback_on_a_driver_complaint(routing) -> tuple[str, str]:
    complaint_id, callback_id = f"c-{uuid.uuid4().hex[:12]}", f"cb-{uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC)
    put_on_intake_topic(
        routing,
        ComplaintFiled(
            complaint_id=complaint_id,
            category=Category.DELIVERY_DRIVER_CONDUCT,
            description="The driver threw the parcel over the fence.",
            channel=Channel.WEB,
            complainant=Complainant(phone=PHONE),
            filed_at=now,
        ),
        CallbackRequested(complaint_id=complaint_id, callback_id=callback_id, phone=PHONE, requested_at=now),
    )
    return complaint_id, callback_id


def published_for(bootstrap: str, complaint_id: str, count: int, timeout: float = 60) -> list:
    """The first ``count`` events routing published on its topic about ``complaint_id``."""
    return events_on(bootstrap, TOPICS["routing"], complaint_id, count, timeout)


async def register(routing, agent_id: str, skills: list[str], capacity: int = 1, teams=()) -> None:
    answer = await routing.post(
        "/api/agents",
        headers=token(routing, "admin", "adm-1"),
        json={
            "agent_id": agent_id,
            "name": agent_id,
            "skills": skills,
            "languages": ["en-GB"],
            "capacity": capacity,
            "teams": list(teams),
        },
    )
    assert answer.status_code == 201, answer.text


async def make_available(routing, agent_id: str) -> None:
    answer = await routing.put(
        f"/api/agents/{agent_id}/availability",
        json={"availability": "available"},
        headers=token(routing, "agent", agent_id),
    )
    assert answer.status_code == 200 and answer.json()["availability"] == "available", answer.text


async def logged(routing, stream: str) -> list[Event]:
    """What routing appended to one of its streams (the roster, case-<id>), in order."""
    events, _ = await routing.app.state.services.runtime.store.load(stream)
    return events
