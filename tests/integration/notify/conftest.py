"""The notify service under test: its real app on the real broker and store, a real SMTP server
(the mailbox simulator), the telephony simulator, and a clock the test moves by hand."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from contracts import TOPICS
from contracts.envelope import Envelope, Event, to_kafka
from services.kernel.clock import ManualClock
from services.kernel.kafka import ensure_topics
from services.notify.app import create_app
from services.notify.settings import NotifySettings
from tests.integration.simulators import mailbox, telephony_url  # noqa: F401  (session fixtures)
from tests.integration.support import kafka_config, produce_raw, quiescent, skip_history

SOURCES = {"intake": "/services/intake", "routing": "/services/routing"}


def notify_settings(settings, mailbox, telephony_url, orders_url="http://127.0.0.1:9", **overrides) -> NotifySettings:
    return NotifySettings(
        **{
            **settings.model_dump(),
            "service_name": f"notify-{settings.service_name}",
            "smtp_port": mailbox.smtp_port,
            "telephony_url": telephony_url,
            "order_system_url": orders_url,
            "public_url": "http://notify",
            "tick_interval_s": 3600,
            "send_backoff_s": 0.05,
            # These tests count the closure loop's, the calls' and the codes' messages: a
            # filing's receipt is tested on its own (test_receipt.py, tests/e2e).
            "send_attempts": 4,
            "filing_receipts": False,
            **overrides,
        }
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 14, 9, 0, tzinfo=UTC))


@pytest.fixture
async def notify(settings, db, mailbox, telephony_url, order_system_url, clock):  # db: dropped after the test
    async with running_notify(notify_settings(settings, mailbox, telephony_url, order_system_url), clock) as client:
        yield client


def topics_served(config: NotifySettings, topics: list[str], timeout_s: float = 20) -> None:
    """Create the topics and wait until the broker serves their metadata, as a cluster's topics
    exist before its services start. (A consumer that subscribes to a topic the broker does not
    list yet only looks again at librdkafka's next metadata refresh, minutes later; on a fresh
    stack the first test would wait for it.)"""
    ensure_topics(config, topics)
    admin, deadline = AdminClient(kafka_config(config.kafka_bootstrap_servers)), time.monotonic() + timeout_s
    while not all(
        (meta := admin.list_topics(t, timeout=5).topics.get(t)) is not None and meta.error is None for t in topics
    ):
        assert time.monotonic() < deadline, f"the broker does not serve {topics} after {timeout_s}s"
        time.sleep(0.1)


class running_notify:
    """The notify app, started and stopped like a process would (lifespan), with an HTTP client."""

    def __init__(self, config: NotifySettings, clock: ManualClock) -> None:
        self.config, self.clock = config, clock

    async def __aenter__(self) -> httpx.AsyncClient:
        await asyncio.to_thread(topics_served, self.config, [TOPICS["intake"], TOPICS["routing"], TOPICS["notify"]])
        for topic in (TOPICS["intake"], TOPICS["routing"]):
            await asyncio.to_thread(
                skip_history, self.config.kafka_bootstrap_servers, self.config.consumer_group, topic
            )
        self.app = create_app(self.config, self.clock)
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(self.app), base_url="http://notify")
        self.client.app, self.client.config, self.client.clock = self.app, self.config, self.clock
        self.client.notify = self.app.state.services.notify
        self.client.store = self.app.state.services.runtime.store
        return self.client

    async def __aexit__(self, *exc) -> None:
        await self.client.aclose()
        await self._lifespan.__aexit__(*exc)


def publish(bootstrap: str, service: str, *events: Event) -> list[str]:
    """Put events on ``service``'s topic as that service publishes them (CloudEvents, keyed by
    subject); returns their ids."""
    now, envelopes = datetime.now(UTC), []
    for event in events:
        envelopes.append(
            Envelope(
                id=str(uuid.uuid4()),
                type=event.ce_type(),
                source=SOURCES[service],
                subject=event.subject(),
                time=now,
                correlationid=str(uuid.uuid4()),
                data=event.model_dump(mode="json"),
            )
        )
    produce_raw(bootstrap, TOPICS[service], [to_kafka(e) for e in envelopes])
    return [e.id for e in envelopes]


async def settled(notify) -> None:
    """Nothing left for notify to do: every message consumed, the log followed, nothing queued to send."""
    runtime = notify.app.state.services.runtime

    async def nothing_queued() -> bool:
        return await runtime.store.db["outgoing"].count_documents({}) == 0

    await quiescent(runtime, nothing_queued)
