"""The routing service under test: its real app on the real broker and store, with agent tokens."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest

from contracts import TOPICS
from services.kernel import auth
from services.routing.app import create_app
from services.routing.settings import RoutingSettings
from tests.integration.support import skip_history


@pytest.fixture
async def routing_config(settings, db, order_system_url) -> RoutingSettings:  # db: dropped after the test
    """Routing in its own group and database; its ticker idle (tests inject the time instead)."""
    config = RoutingSettings(
        **{
            **settings.model_dump(),
            "service_name": f"routing-{settings.service_name}",
            "timer_interval_s": 3600,
            "order_system_url": order_system_url,
        }
    )
    for topic in (TOPICS["intake"], TOPICS["notify"]):
        await asyncio.to_thread(skip_history, config.kafka_bootstrap_servers, config.consumer_group, topic)
    return config


@asynccontextmanager
async def running_routing(config: RoutingSettings):
    """The routing app started (consumer, log follower) and an HTTP client on it; stopped after."""
    app = create_app(config)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://routing") as client:
            client.app, client.config = app, config
            yield client


@pytest.fixture
async def routing(routing_config):
    async with running_routing(routing_config) as client:
        yield client


def token(routing, role: str, sub: str = "sup-1", key: str | None = None, **claims: str) -> dict:
    signed = auth.sign({"sub": sub, "role": role, **claims}, key or routing.config.signing_key, timedelta(minutes=5))
    return {"Authorization": f"Bearer {signed}"}
