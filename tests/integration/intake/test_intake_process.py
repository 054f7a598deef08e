"""The intake service as Kubernetes runs it: a process that becomes ready and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.simulators import free_port

ROOT = Path(__file__).resolve().parents[3]


def test_the_intake_process_becomes_ready_and_exits_0_on_sigterm(settings, order_system_url):
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HTTP_PORT": str(port),
        "ORDER_SYSTEM_URL": order_system_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URL": settings.mongodb_url,
        "MONGODB_DATABASE": settings.database_name,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.intake.app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert "Application shutdown complete" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
