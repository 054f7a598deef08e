"""Runs the local simulators of outside systems as real processes for the tests (one per session)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_simulator(module: str, log: Path, timeout_s: float = 20.0, *args: str) -> Iterator[str]:
    """Start ``python -m <module> --port N [args]`` on a free port, wait for ``/health``, yield its URL, stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{module} exited with code {process.returncode}; its output:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{module} not healthy at {url}/health after {timeout_s}s:\n{log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def order_system_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the order and seller-account simulator (infra/simulators/orders.py), seeded from orders.json."""
    with running_simulator("infra.simulators.orders", tmp_path_factory.mktemp("simulators") / "orders.log") as url:
        yield url


@dataclass(frozen=True)
class Mailbox:
    """The mailbox simulator (infra/simulators/mailbox.py): a real SMTP server and its JSON API."""

    url: str
    smtp_port: int

    def messages(self, to: str) -> list[dict]:
        return httpx.get(f"{self.url}/messages", params={"to": to}, timeout=5).json()

    def messages_all(self) -> list[dict]:
        return httpx.get(f"{self.url}/messages", timeout=5).json()


@pytest.fixture(scope="session")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailbox]:
    """A real SMTP server for the session; tests tell their messages apart by recipient address."""
    smtp_port = free_port()
    with running_simulator(
        "infra.simulators.mailbox",
        tmp_path_factory.mktemp("simulators") / "mailbox.log",
        20.0,
        "--smtp-port",
        str(smtp_port),
    ) as url:
        yield Mailbox(url, smtp_port)


@pytest.fixture(scope="session")
def telephony_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the Twilio-style telephony simulator (infra/simulators/telephony.py)."""
    with running_simulator(
        "infra.simulators.telephony", tmp_path_factory.mktemp("simulators") / "telephony.log"
    ) as url:
        yield url


@pytest.fixture(scope="session")
def carrier_simulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the carrier simulator (infra/simulators/carriers.py): FedEx, UPS, USPS and Australia Post."""
    with running_simulator("infra.simulators.carriers", tmp_path_factory.mktemp("simulators") / "carriers.log") as url:
        yield url
