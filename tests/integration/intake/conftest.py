"""The intake service under test: its real app on the real broker and store, and the order simulator."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.intake.app import create_app
from services.intake.settings import IntakeSettings

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def order_system_url():
    """The order and seller-account simulator (infra/simulators/orders.py), a real HTTP server."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "infra.simulators.orders", "--port", str(port)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "the order simulator did not start"
        time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
async def intake(settings, order_system_url):
    config = IntakeSettings(**{**settings.model_dump(), "service_name": "intake", "order_system_url": order_system_url})
    app = create_app(config)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app, client=("10.1.2.3", 5000)),
                                     base_url="http://intake") as client:
            client.app, client.config = app, config
            yield client
