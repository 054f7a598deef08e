"""The carrier service under test: its real app on the real broker and store, the order and carrier simulators."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from contracts import TOPICS
from contracts.envelope import Envelope, Event, to_kafka
from services.carrier.app import create_app
from services.carrier.settings import CarrierSettings
from services.kernel import auth
from tests.integration.simulators import carrier_simulator_url  # noqa: F401  (session fixture)
from tests.integration.support import intake_beside, on_the_roster, produce_raw, skip_history


class Clock:
    """The carrier gateway's monotonic clock, moved on by the test (breaker, cache)."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def carrier(settings, db, order_system_url, carrier_simulator_url):  # db: dropped after the test
    urls = {f"{c}_url": carrier_simulator_url for c in ("fedex", "ups", "usps", "auspost")}
    config = CarrierSettings(
        **{
            **settings.model_dump(),
            "service_name": f"carrier-{settings.service_name}",
            "order_system_url": order_system_url,
            **urls,
            "carrier_timeout_s": 0.5,
            "carrier_backoff_s": 0.01,
            "carrier_backoff_max_s": 0.05,
            "breaker_failures": 3,
            "breaker_reset_s": 30.0,
            "carrier_max_answer_bytes": 200_000,
            "recheck_interval_s": 0,
        }
    )
    for topic in (TOPICS["intake"], TOPICS["routing"]):
        await asyncio.to_thread(skip_history, config.kafka_bootstrap_servers, config.consumer_group, topic)
    app = create_app(config)
    services = app.state.services
    services.gateway.clock = Clock()
    async with app.router.lifespan_context(app):
        await on_the_roster(app, "agt-0042")  # the agent of ``agent()``'s tokens
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://carrier") as client:
            client.app, client.config, client.services = app, config, services
            client.simulator = httpx.AsyncClient(base_url=carrier_simulator_url)
            try:
                yield client
            finally:
                await client.simulator.delete("/faults")
                await client.simulator.aclose()


@pytest.fixture
async def intake(settings, order_system_url):
    """Intake beside the carrier service, reading the carrier topic from now on (its own database)."""
    async with intake_beside(settings, order_system_url) as app:
        yield app


def agent(config, role: str = "agent") -> dict:
    signed = auth.sign({"sub": "agt-0042", "role": role}, config.signing_key, timedelta(minutes=5))
    return {"Authorization": f"Bearer {signed}"}


def on_intake_topic(config, *events: Event, ids: list[str] | None = None) -> list[Envelope]:
    """Produce events as intake publishes them (CloudEvents keyed by subject); returns their envelopes."""
    now = datetime.now(UTC)
    envelopes = []
    for i, event in enumerate(events):
        event_id = ids[i] if ids else str(uuid.uuid4())
        envelopes.append(
            Envelope(
                id=event_id,
                type=event.ce_type(),
                source="/services/intake",
                subject=event.subject(),
                time=now,
                correlationid=str(uuid.uuid4()),
                data=event.model_dump(mode="json"),
            )
        )
    produce_raw(config.kafka_bootstrap_servers, TOPICS["intake"], [to_kafka(e) for e in envelopes])
    return envelopes


def signed(payload: dict, secret: str) -> tuple[bytes, dict[str, str]]:
    """A webhook body and its headers, signed as a carrier or aggregator signs them."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Tracking-Signature": f"sha256={mac}", "Content-Type": "application/json"}
