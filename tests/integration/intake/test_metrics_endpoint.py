"""The operator's view: /metrics shows what the service did, for Prometheus to scrape.

Intake on the real broker and store files a complaint (HTTP in, events appended, the relay
publishes) and consumes routing's news about it (a handler), and a message nobody can read goes to
the DLQ; each shows in its metric. A request that came through an ingress does not see them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from contracts import TOPICS
from contracts.envelope import to_kafka
from contracts.notify import CustomerConfirmedClosed
from services.kernel.eventstore import Cause
from tests.integration.intake.test_intake_api import bearer, driver_complaint
from tests.integration.support import produce_raw, wait_for


async def scrape(intake) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics: (name, labels) -> value."""
    answer = await intake.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, have), v in samples.items() if n == name and set(labels.items()) <= have)


async def test_what_the_service_did_shows_on_its_metrics(intake):
    before = await scrape(intake)
    filed = (await intake.post("/api/complaints", json=driver_complaint())).json()
    await intake.post(
        f"/api/complaints/{filed['complaint_id']}/callback", json={"phone": "+447700900123"}, headers=bearer(filed)
    )
    store = intake.app.state.services.runtime.store
    confirmed = CustomerConfirmedClosed(complaint_id=filed["complaint_id"], via="link", confirmed_at=datetime.now(UTC))
    produce_raw(
        intake.config.kafka_bootstrap_servers,
        TOPICS["notify"],
        [
            to_kafka(
                store.envelope(
                    confirmed, f"notify-{uuid.uuid4()}", Cause.of_request("n", "notify"), confirmed.confirmed_at
                ).model_copy(update={"source": "/services/notify"})
            ),
            (b"poison", b"{not json", []),
        ],
    )

    async def grown():
        now = await scrape(intake)
        wanted = {
            "http_server_request_duration_seconds_count": {"http_route": "/api/complaints/{complaint_id}/callback"},
            "complaints_events_appended_total": {"type": "complaints.intake.ComplaintFiled.v1"},
            "complaints_relay_publish_duration_seconds_count": {},
            "complaints_consumer_handling_duration_seconds_count": {
                "type": "complaints.notify.CustomerConfirmedClosed.v1",
                "outcome": "ok",
            },
            "complaints_dead_letters_total": {"topic": TOPICS["notify"]},
        }
        return (
            now
            if all(total(now, name, **labels) > total(before, name, **labels) for name, labels in wanted.items())
            else None
        )

    assert await wait_for(grown, timeout=30)


async def test_metrics_are_not_served_through_an_ingress(intake):
    answer = await intake.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert answer.status_code == 404
