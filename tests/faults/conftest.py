"""A broker and a store of the fault suite's own, which its tests stop, kill and start again.

The shared test stack must never go down under other tests: this one runs on free ports under
its own name (infra/local/stack.sh), and a process is signalled only by the pid that this
session's stack recorded.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from pymongo import MongoClient

from services.kernel.settings import KernelSettings
from tests.integration.conftest import processes  # noqa: F401 (a fixture)
from tests.integration.simulators import free_port, order_system_url, telephony_url  # noqa: F401 (fixtures)
from tests.integration.support import kafka_config, own_stack_options

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "infra" / "local" / "stack.sh"
CACHE = Path(os.environ.get("COMPLAINTS_CACHE", ROOT / ".cache"))


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.slow)


@dataclass
class FaultStack:
    name: str
    kafka_port: int
    controller_port: int
    mongo_port: int
    brokers: int = 1  # 3: a KRaft cluster (stack.sh --brokers 3), node i on kafka_port + i - 1

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.kafka_port + i}" for i in range(self.brokers))

    @staticmethod
    def node(broker_id: int) -> str:
        """The stack's name of a broker (its pid file): ``kafka`` is node 1, the others ``kafka-<id>``."""
        return "kafka" if broker_id == 1 else f"kafka-{broker_id}"

    def kraft_leader(self) -> int:
        """The node id of the active KRaft controller, from the quorum state each node keeps on disk
        (the newest epoch's). Not describe_cluster: in KRaft a broker names any live broker there."""
        states = [
            json.loads(f.read_text())
            for f in (CACHE / self.name / "kafka").glob("data*/__cluster_metadata-0/quorum-state")
        ]
        return max(states, key=lambda state: state["leaderEpoch"])["leaderId"]

    @property
    def mongodb_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/"

    def _args(self) -> list[str]:
        return [
            "--name",
            self.name,
            "--kafka-port",
            str(self.kafka_port),
            "--controller-port",
            str(self.controller_port),
            "--mongo-port",
            str(self.mongo_port),
            *(["--brokers", str(self.brokers)] if self.brokers > 1 else []),
        ]

    def _env(self) -> dict:
        # Without MONGODB_URL the stack starts its own FerretDB (with it, it would use that server).
        # A broker killed with -9 recovers its log first: on a busy machine that takes minutes.
        return {**{k: v for k, v in os.environ.items() if k != "MONGODB_URL"}, "STACK_HEALTH_TIMEOUT": "240"}

    def stack(self, command: str, *extra: str) -> None:
        env = self._env()
        # The same Kafka users and passwords as the shared stack (when it has users): the services
        # and the test's own clients connect with what the environment says.
        options = own_stack_options(env) if command == "start" else []
        done = subprocess.run(
            [str(STACK), command, *self._args(), *extra, *options],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert command != "start" or done.returncode == 0, f"stack.sh start failed:\n{done.stdout}\n{done.stderr}"

    def pid(self, what: str) -> int:
        return int((CACHE / self.name / "pids" / f"{what}.pid").read_text())

    def signal(self, what: str, sig: signal.Signals) -> int:
        """Send ``sig`` to this stack's ``kafka`` or ``ferretdb``; returns its pid."""
        pid = self.pid(what)
        os.kill(pid, sig)
        return pid

    def stop(self, what: str, sig: signal.Signals, timeout: float = 60) -> None:
        """Stop ``what`` with ``sig`` and wait until its process is gone."""
        pid = self.signal(what, sig)
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} (pid {pid}) still running {timeout}s after {sig.name}")
            time.sleep(0.1)

    def start(self) -> float:
        """Start whatever of the stack is not running; returns when it serves, with the time it did."""
        self.stack("start")
        return time.monotonic()

    def serving(self, what: str, timeout: float = 180) -> datetime:
        """Wait until ``kafka`` serves metadata (a node of a cluster, ``kafka-2``: naming every
        broker) or ``ferretdb`` answers a ping to a new client; returns that moment (the clock of
        "recovered": the time of first dial-out counts from it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if what.startswith("kafka"):
                    node = 1 if what == "kafka" else int(what.removeprefix("kafka-"))
                    own = f"127.0.0.1:{self.kafka_port + node - 1}"
                    if len(AdminClient(kafka_config(own, log_level=0)).list_topics(timeout=1).brokers) >= self.brokers:
                        return datetime.now(UTC)
                else:
                    with MongoClient(self.mongodb_url, serverSelectionTimeoutMS=500) as client:
                        client.admin.command("ping")
                        return datetime.now(UTC)
            except Exception:  # not yet
                time.sleep(0.1)
        raise AssertionError(f"{what} not serving {timeout}s after its restart")

    def settings(self, **overrides) -> KernelSettings:
        unique = uuid.uuid4().hex[:10]
        return KernelSettings(
            service_name=f"fault-{unique}",
            kafka_bootstrap_servers=self.bootstrap,
            mongodb_url=self.mongodb_url,
            mongodb_database=f"fault_{unique}",
            outbox_poll_interval_s=0.2,
            lease_ttl_s=3.0,
            retry_backoff_max_s=0.5,
            **overrides,
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours would still answer: stack.sh's processes are not our children, so no.
    return True


def port_to_restart_on(count: int = 1) -> int:
    """A free port BELOW Linux's ephemeral range (32768-60999): the scenarios kill the broker and
    the store and start them again on the same port, and a port from bind(0) can meanwhile be taken
    by any outgoing connection (the store then never came back: seen in CI's clone, 2026-12-06).
    With ``count``, the first of that many free ports in a row (a cluster's nodes)."""
    for port in random.sample(range(20000, 32000 - count), 200):
        if all(_free(port + i) for i in range(count)):
            return port
    raise RuntimeError(f"no {count} free port(s) in a row between 20000 and 32000")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture(scope="session")
def fault_stack():
    with running(
        FaultStack(f"faults-{os.getpid()}", port_to_restart_on(), port_to_restart_on(), port_to_restart_on()),
        CACHE / "fault-suite-logs" / "stack",
    ) as stack:
        yield stack


@contextmanager
def running(stack: FaultStack, logs: Path):
    """A fresh ``stack`` for the block; stopped after it, its logs copied to ``logs``."""
    stack.stack("start", "--fresh")
    try:
        yield stack
    finally:
        for what in ("kafka", "kafka-2", "kafka-3", "ferretdb"):  # a SIGSTOPped process would not stop
            try:
                stack.signal(what, signal.SIGCONT)
            except (OSError, ValueError):
                pass
        stack.stack("stop")
        # Its logs stay with the platform's (the folder itself goes: it holds a broker's data).
        shutil.copytree(CACHE / stack.name / "logs", logs, dirs_exist_ok=True)
        shutil.rmtree(CACHE / stack.name, ignore_errors=True)
