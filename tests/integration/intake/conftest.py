"""The intake service under test: its real app on the real broker and store, and the order simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from contracts import TOPICS
from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from services.kernel.startup import http_config
from tests.integration.support import skip_history


@contextlib.asynccontextmanager
async def running_intake(config: IntakeSettings, peer: str = "10.1.2.3") -> AsyncIterator[httpx.AsyncClient]:
    """An intake app started on ``config``, and a client whose requests come from ``peer`` (the TCP
    peer the app sees); ``client.from_peer(address)`` is another client of the same app."""
    app = create_app(config)
    async with app.router.lifespan_context(app):

        def from_peer(address: str) -> httpx.AsyncClient:
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app, client=(address, 5000)), base_url="http://intake"
            )
            client.app, client.config, client.from_peer = app, config, from_peer
            return client

        async with from_peer(peer) as client:
            yield client


@contextlib.asynccontextmanager
async def served_intake(config: IntakeSettings) -> AsyncIterator[httpx.AsyncClient]:
    """Intake behind uvicorn as a replica runs it, on a free port of 127.0.0.1."""
    server = uvicorn.Server(http_config(create_app(config), "127.0.0.1", 0))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "intake did not start"
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
def intake_config(settings, order_system_url):
    """Intake's settings for this test (its own database), with ``overrides``; the other services'
    topics read from their end: they hold earlier tests' events, and a carrier's exception among
    them would open a proactive case in this test's intake."""

    async def config(**overrides) -> IntakeSettings:
        config = IntakeSettings(
            **{
                **settings.model_dump(),
                "service_name": f"intake-{settings.service_name}",
                "order_system_url": order_system_url,
                **overrides,
            }
        )
        for topic in (t for service, t in TOPICS.items() if service != "intake"):
            await asyncio.to_thread(skip_history, config.kafka_bootstrap_servers, config.consumer_group, topic)
        return config

    return config


@pytest.fixture
async def intake(intake_config):
    async with running_intake(await intake_config()) as client:
        yield client
