"""Readiness follows the store and reports the broker; liveness follows progress, never the broker
(Kubernetes restarts on liveness only, and a restart would not bring the broker back)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from tests.integration.simulators import free_port
from tests.integration.support import own_stack_options, wait_for

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "infra" / "local" / "stack.sh"


@pytest.fixture
def own_broker(settings):
    """A Kafka broker of this test's own (the shared one must not stop), on free ports."""
    name, ports = f"readiness-{os.getpid()}", [str(free_port()) for _ in range(3)]
    args = ["--name", name, "--kafka-port", ports[0], "--controller-port", ports[1], "--mongo-port", ports[2]]
    env = {
        **os.environ,
        "MONGODB_URL": settings.mongodb_url,  # only Kafka: the store stays the shared one
        "STACK_HEALTH_TIMEOUT": "240",
    }  # a restarted broker takes minutes on a busy machine
    subprocess.run(
        [str(STACK), "start", *args, "--fresh", *own_stack_options(env)],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
    )
    pid_file = ROOT / ".cache" / name / "pids" / "kafka.pid"
    stopped = int(pid_file.read_text())

    def restart() -> None:
        # The broker stops serving before its process ends: started meanwhile, the stack would
        # find it still running, then see it exit "during startup".
        deadline = time.monotonic() + 60
        while Path(f"/proc/{stopped}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        subprocess.run([str(STACK), "start", *args], check=True, env=env, cwd=ROOT, capture_output=True)

    yield f"127.0.0.1:{ports[0]}", pid_file, restart
    subprocess.run([str(STACK), "stop", *args], env=env, cwd=ROOT, capture_output=True)
    subprocess.run(["rm", "-rf", str(ROOT / ".cache" / name)])


async def test_intake_stays_ready_and_alive_while_the_broker_is_away_and_says_the_broker_is_down(
    settings, own_broker, order_system_url
):
    bootstrap, pid_file, restart = own_broker
    app = create_app(
        IntakeSettings(
            **{
                **settings.model_dump(),
                "service_name": "intake",
                "kafka_bootstrap_servers": bootstrap,
                "order_system_url": order_system_url,
            }
        )
    )
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://intake") as client:
            assert (await client.get("/health/ready")).status_code == 200
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
            # Intake's requests write to its own log, which waits for the broker's return (issue 19).
            down = await wait_for(lambda: _broker_said(client, False), timeout=60, every=0.5)
            assert down.status_code == 200 and down.json()["ready"] is True
            assert down.json()["checks"]["store"] is True
            assert (await client.get("/health/live")).status_code == 200
            restart()
            await wait_for(lambda: _broker_said(client, True), timeout=90, every=0.5)
            assert (await client.get("/health/live")).status_code == 200


async def _broker_said(client, up: bool):
    response = await client.get("/health/ready")
    return response if response.json()["checks"]["broker"] is up else None
