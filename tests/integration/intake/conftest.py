"""The intake service under test: its real app on the real broker and store, and the order simulator."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from contracts import TOPICS
from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from tests.integration.support import skip_history


@pytest.fixture
async def intake(settings, order_system_url):
    config = IntakeSettings(**{**settings.model_dump(), "service_name": f"intake-{settings.service_name}",
                               "order_system_url": order_system_url})
    # The other services' topics hold earlier tests' events; a carrier's exception among them would
    # open a proactive case in this test's intake. Start at their end.
    for topic in (t for service, t in TOPICS.items() if service != "intake"):
        await asyncio.to_thread(skip_history, config.kafka_bootstrap_servers, config.service_name, topic)
    app = create_app(config)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app, client=("10.1.2.3", 5000)),
                                     base_url="http://intake") as client:
            client.app, client.config = app, config
            yield client
