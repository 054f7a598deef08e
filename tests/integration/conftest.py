"""Fixtures for tests against the real Kafka broker and document store that `make test` starts.

Each test gets its own database, topic and consumer group, so tests never see each other's data.
"""

from __future__ import annotations

import os
import uuid

import pytest
from pymongo import AsyncMongoClient

from services.kernel.settings import KernelSettings
from tests.integration.simulators import order_system_url  # noqa: F401  (a session fixture for all)
from tests.integration.story_events import registry
from tests.integration.support import ServiceProcess

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
MONGO = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:29017/")


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(unique: str) -> KernelSettings:
    return KernelSettings(
        service_name=f"test-{unique}",
        kafka_bootstrap_servers=KAFKA,
        mongodb_url=MONGO,
        mongodb_database=f"test_{unique}",
        outbox_poll_interval_s=0.2,
        lease_ttl_s=3.0,
        retry_backoff_max_s=0.5,
    )


@pytest.fixture
def topic(unique: str) -> str:
    return f"test.{unique}.v1"


@pytest.fixture
async def db(settings: KernelSettings):
    client = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    yield client[settings.database_name]
    await client.drop_database(settings.database_name)
    await client.close()


@pytest.fixture
def test_registry():
    return registry


@pytest.fixture
def processes():
    """Service processes a test starts (tests/integration/support.py); killed if still running at the end."""
    started: list[ServiceProcess] = []
    yield started
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait(10)
