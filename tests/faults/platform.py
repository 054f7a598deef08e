"""Intake, routing and notify as real processes on the fault suite's own stack, with the telephony
simulator counting every call, and the customers who press "call me" at a steady pace."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from services.kernel import auth
from tests.integration.simulators import free_port
from tests.integration.support import service_credentials_env, wait_for

ROOT = Path(__file__).resolve().parents[2]
CATEGORY = "delivery_driver_conduct"
SIGNING_KEY = "dev-only-signing-key-change-me-0123456789"  # the services' development default
PROBE_TIMEOUT_S = 3.0  # the readiness probe's timeoutSeconds (infra/k8s pod defaults)


def bearer(sub: str, role: str) -> dict:
    return {"Authorization": f"Bearer {auth.sign({'sub': sub, 'role': role}, SIGNING_KEY, timedelta(hours=1))}"}


@dataclass
class Service:
    name: str
    env: dict
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}.app"],
            cwd=ROOT,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                **self.env,
                "HTTP_HOST": "127.0.0.1",
                "HTTP_PORT": str(self.port),
            },
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc.poll() is None, f"{self.name} exited {self.proc.returncode}:\n{self.tail()}"
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=PROBE_TIMEOUT_S).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{self.name} not ready in {timeout_s}s:\n{self.tail()}"
            time.sleep(0.3)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"{self.name} did not end within 30 s of SIGTERM:\n{self.tail()}") from None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


@dataclass
class Platform:
    intake: Service
    routing: Service
    notify: Service
    telephony_url: str

    @property
    def services(self) -> list[Service]:
        return [self.intake, self.routing, self.notify]

    def calls(self) -> list[dict]:
        return httpx.get(f"{self.telephony_url}/received", timeout=10).json()["calls"]


def start_platform(stack, telephony_url: str, orders_url: str, smtp_port: int, logs: Path) -> Platform:
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "MONGODB_URL": stack.mongodb_url,
        "ORDER_SYSTEM_URL": orders_url,
        "OUTBOX_POLL_INTERVAL_S": "0.2",
        # as services.sh runs them: on one broker 3 s group sessions (a group waits out its old
        # members' sessions after the only broker restarts, docs/adr/0039); on a cluster the default
        # 6 s, which outlives the move of a group's coordinator when one broker dies (docs/adr/0043)
        "CONSUMER_SESSION_TIMEOUT_MS": "6000" if stack.brokers > 1 else "3000",
        "LOG_LEVEL": "INFO",
    }
    # Each service as its own Kafka user (on a stack with users), as in a cluster.
    intake = Service(
        "intake",
        {
            **common,
            **service_credentials_env("intake"),
            "CALLBACKS_PER_CLIENT": "100000",
            # Every click must be accepted to be checked (called once, whatever broke): the
            # refusal of clicks behind a long queue is tested apart (intake/test_callback_admission.py)
            # and measured by the bench's overload row (ADR 0051).
            "CALLBACK_ADMISSION_WAIT_S": "0",
        },
        logs / "intake.log",
    )
    routing = Service("routing", {**common, **service_credentials_env("routing")}, logs / "routing.log")
    notify = Service(
        "notify",
        {
            **common,
            **service_credentials_env("notify"),
            "TELEPHONY_URL": telephony_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "TICK_INTERVAL_S": "1",
            # This suite counts calls. A receipt per filing (an email through the mailbox simulator)
            # cost the 10,000-calls run a fifth of its pace on this 2-core machine (2,000 of them:
            # 14.8 complaints/s end to end with receipts, 17.8 without), a few minutes of the whole
            # suite's 30; receipts have tests of their own (tests/integration/notify/test_receipt.py)
            # and `make bench` sends them.
            "FILING_RECEIPTS": "false",
        },
        logs / "notify.log",
    )
    platform = Platform(intake, routing, notify, telephony_url)
    for service in platform.services:
        service.start()
    for service in platform.services:
        service.wait_ready()
    add_agents(routing, 8, "fault")  # room for every complaint of the fault scenarios: each holds its agent
    return platform


#: The most cases one agent may hold (RegisterAgent's limit).
AGENT_CAPACITY = 50


def add_agents(routing: Service, count: int, prefix: str) -> None:
    """``count`` available agents who take ``CATEGORY`` in English, each up to ``AGENT_CAPACITY`` cases."""
    boss = bearer("adm-faults", "admin")
    with httpx.Client(base_url=routing.url, headers=boss, timeout=10) as http:
        for n in range(count):
            agent_id = f"agt-{prefix}-{n}"
            answer = http.post(
                "/api/agents",
                json={
                    "agent_id": agent_id,
                    "name": f"Agent {prefix} {n}",
                    "skills": [CATEGORY],
                    "languages": ["en-GB"],
                    "capacity": AGENT_CAPACITY,
                    "teams": [],
                },
            )
            assert answer.status_code == 201, answer.text
            answer = http.put(f"/api/agents/{agent_id}/availability", json={"availability": "available"})
            assert answer.status_code == 200, answer.text


@dataclass
class Traffic:
    """What the customers and the probes saw during one scenario."""

    accepted: list[str] = field(default_factory=list)  # phones whose "call me" was accepted
    refused: list[tuple[str, int, dict, dict]] = field(default_factory=list)  # (step, status, headers, body)
    unanswered: list[str] = field(default_factory=list)  # requests that got no answer at all
    pressed_again: list[str] = field(default_factory=list)  # the problem type of each 503 retried
    slowest_probe_s: float = 0.0
    readiness: Counter = field(default_factory=Counter)  # (service, status) -> answers
    probes_late: list[str] = field(default_factory=list)


async def call_me(
    client: httpx.AsyncClient, intake_url: str, traffic: Traffic, phone: str | None = None, presses: int = 1
) -> None:
    """One customer: file a complaint (logged in), then press "call me" with a phone of their own
    (a random one unless given: thousands of customers need numbers given, or two would share one).
    Told "503, try again in N seconds", the customer does so, up to ``presses`` presses in all, each
    step's request again with the same Idempotency-Key: what was refused counts only if the last
    press was."""
    customer, phone = f"cust-{uuid.uuid4().hex[:8]}", phone or f"+4477009{uuid.uuid4().int % 10**5:05d}"
    who = bearer(customer, "customer")
    try:
        filed = await pressed(
            client,
            f"{intake_url}/api/complaints",
            who,
            {
                "category": CATEGORY,
                "description": "The van reversed onto the pavement and nearly hit me.",
                "complainant": {"display_name": "Sam Okafor", "email": f"{customer}@example.com", "phone": phone},
            },
            presses,
            traffic,
        )
        if filed.status_code != 201:
            return traffic.refused.append(("file", filed.status_code, dict(filed.headers), _json(filed)))
        complaint_id = filed.json()["complaint_id"]
        called = await pressed(
            client,
            f"{intake_url}/api/complaints/{complaint_id}/callback",
            who,
            {"phone": phone, "preferred_language": "en-GB"},
            presses,
            traffic,
        )
        if called.status_code != 202:
            return traffic.refused.append(("callback", called.status_code, dict(called.headers), _json(called)))
        traffic.accepted.append(phone)
    except httpx.TransportError as exc:
        traffic.unanswered.append(f"{type(exc).__name__}: {exc}")


async def pressed(
    client: httpx.AsyncClient, url: str, who: dict, body: dict, presses: int, traffic: Traffic
) -> httpx.Response:
    """The answer to the last of up to ``presses`` POSTs of ``body``, one Idempotency-Key for all."""
    headers = who | {"Idempotency-Key": uuid.uuid4().hex}
    for press in range(1, presses + 1):
        answer = await client.post(url, headers=headers, json=body)
        if answer.status_code != 503 or "Retry-After" not in answer.headers or press == presses:
            return answer
        traffic.pressed_again.append(_json(answer).get("type", str(answer.status_code)))
        await asyncio.sleep(float(answer.headers["Retry-After"]))
    raise AssertionError("presses must be at least 1")


async def steady_stream(intake_url: str, traffic: Traffic, per_second: float, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        pending = set()
        while not stop.is_set():
            pending.add(asyncio.create_task(call_me(client, intake_url, traffic)))
            pending = {t for t in pending if not t.done()}
            await asyncio.sleep(1 / per_second)
        await asyncio.gather(*pending)


async def probe_readiness(platform: Platform, traffic: Traffic, stop: asyncio.Event) -> None:
    """Kubernetes' readiness probes: each must be answered (200 or 503) within its timeout."""
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
        while not stop.is_set():
            for service in platform.services:
                if service.proc.poll() is not None:
                    continue  # killed by the scenario: nobody to ask
                started = time.monotonic()
                try:
                    answer = await client.get(f"{service.url}/health/ready")
                    traffic.readiness[(service.name, answer.status_code)] += 1
                except httpx.TransportError as exc:
                    if service.proc.poll() is None and not isinstance(exc, httpx.ConnectError):
                        traffic.probes_late.append(f"{service.name}: {type(exc).__name__} at {now().time()}")
                traffic.slowest_probe_s = max(traffic.slowest_probe_s, time.monotonic() - started)
            await asyncio.sleep(0.5)


def _json(response: httpx.Response) -> dict:
    try:
        return response.json()
    except ValueError:
        return {"text": response.text[:200]}


def first_dial_after(calls: list[dict], moment: datetime) -> float | None:
    """Seconds from ``moment`` to the first call the provider was asked for after it."""
    later = [
        datetime.fromisoformat(c["date_created"])
        for c in calls
        if "date_created" in c and datetime.fromisoformat(c["date_created"]) >= moment
    ]
    return (min(later) - moment).total_seconds() if later else None


def longest_pause(calls: list[dict], since: datetime) -> float:
    times = sorted(
        datetime.fromisoformat(c["date_created"]) for c in calls if datetime.fromisoformat(c["date_created"]) >= since
    )
    return max(((b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)), default=0.0)


def now() -> datetime:
    return datetime.now(UTC)


async def each_accepted_called_once(
    platform: Platform, traffic: Traffic, already: set[str], timeout_s: float, every_s: float = 0.5
) -> list[dict]:
    """What every scenario must end with: each accepted "call me" called exactly once (none of the
    refused ones twice), every refusal a 503 problem with Retry-After, every request answered,
    every service still running. The calls, for the figures."""

    def all_called() -> bool:
        called = {c["to"] for c in platform.calls()}
        return all(phone in called for phone in traffic.accepted)

    await wait_for(all_called, timeout=timeout_s, every=every_s)
    await asyncio.sleep(2)  # a second call, if any, would come right after the first (ticker: 1 s)

    calls = platform.calls()
    per_phone = Counter(c["to"] for c in calls if c["to"] not in already)
    assert traffic.accepted, "some requests were accepted"
    assert {p: per_phone[p] for p in traffic.accepted if per_phone[p] != 1} == {}, "each called exactly once"
    assert all(n == 1 for n in per_phone.values()), "a refused request is called at most once"
    assert [
        r
        for r in traffic.refused
        if r[1] != 503 or "retry-after" not in r[2] or not {"type", "title", "status", "detail"} <= set(r[3])
    ] == [], traffic.refused
    assert traffic.unanswered == [], traffic.unanswered
    for service in platform.services:
        assert service.proc.poll() is None, f"{service.name} ended:\n{service.tail()}"
    return calls
