"""The platform under load: the four services as infra/local/services.sh starts them, driven by Locust.

``Platform`` starts and stops the services (and second instances of them), registers agents,
reads the telephony simulator's received calls, each process's RSS and store command counts.
``Burst`` is one Locust run plus the wait until every accepted callback was dialled; its figures
are computed from what Locust sent (bench/locustfile.py's records) and what the telephony
simulator received.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

from bench.figures import percentile, spread
from services.kernel import auth

REPO = Path(__file__).resolve().parent.parent
SERVICES = ("intake", "routing", "carrier", "notify")
SIGNING_KEY = "dev-only-signing-key-change-me-0123456789"  # the local stack's (services' default)
AGENT_CAPACITY = 50  # the most RegisterAgent allows


@dataclass
class Ports:
    """Every port of the bench's services, from one base: base+1..+4 the services, +21..+24
    their second instances, +10.. the simulators."""

    base: int

    def of(self, service: str, instance: int = 1) -> int:
        offsets = {
            "intake": 1,
            "routing": 2,
            "carrier": 3,
            "notify": 4,
            "order-simulator": 10,
            "carrier-simulator": 11,
            "mailbox": 12,
            "smtp": 13,
            "telephony-simulator": 14,
        }
        return self.base + offsets[service] + (20 if instance == 2 else 0)

    def url(self, service: str, instance: int = 1) -> str:
        return f"http://127.0.0.1:{self.of(service, instance)}"

    def services_sh_args(self) -> list[str]:
        return [
            "--intake-port",
            str(self.of("intake")),
            "--routing-port",
            str(self.of("routing")),
            "--carrier-port",
            str(self.of("carrier")),
            "--notify-port",
            str(self.of("notify")),
            "--orders-port",
            str(self.of("order-simulator")),
            "--carriers-port",
            str(self.of("carrier-simulator")),
            "--mailbox-port",
            str(self.of("mailbox")),
            "--smtp-port",
            str(self.of("smtp")),
            "--telephony-port",
            str(self.of("telephony-simulator")),
        ]


class Platform:
    """The services of the bench's stack, and what the bench reads from them."""

    def __init__(self, name: str, kafka_port: int, mongo_port: int, ports: Ports, cache: Path, work: Path) -> None:
        self.name, self.kafka_port, self.mongo_port, self.ports = name, kafka_port, mongo_port, ports
        self.cache, self.work = cache, work
        self.counts_dir = work / "store-commands"
        self.extra: dict[str, subprocess.Popen] = {}
        self.mongodb_url = os.environ.get("MONGODB_URL") or f"mongodb://127.0.0.1:{mongo_port}/"
        self.http = httpx.Client(timeout=30, trust_env=False)

    # --- processes ------------------------------------------------------------------------------

    def _services_sh(self, command: str, *args: str) -> None:
        env = {
            **os.environ,
            "COMPLAINTS_CACHE": str(self.cache),
            # the bench's opt-in hooks and limits: every service counts its store commands;
            # all Locust users come from 127.0.0.1, which intake would take for one client
            "COMPLAINTS_COUNT_STORE_COMMANDS": str(self.counts_dir),
            "CALLBACKS_PER_CLIENT": "100000000",
        }
        subprocess.run(
            [str(REPO / "infra/local/services.sh"), command, "--name", self.name, *args],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL if command == "stop" else None,
        )

    def start(self) -> None:
        self.counts_dir.mkdir(parents=True, exist_ok=True)
        self._services_sh(
            "start",
            "--kafka-port",
            str(self.kafka_port),
            "--mongo-port",
            str(self.mongo_port),
            *self.ports.services_sh_args(),
        )

    def stop(self) -> None:
        self.stop_second_instances()
        self._services_sh("stop")

    def pid(self, service: str) -> int | None:
        try:
            pid = int((self.cache / self.name / "pids" / f"{service}.pid").read_text())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def pids(self, service: str) -> list[int]:
        found = [self.pid(service)] + [p.pid for s, p in self.extra.items() if s == service and p.poll() is None]
        return [p for p in found if p]

    def start_second_instances(self) -> None:
        """A second process of each service with the first one's environment and another port:
        the same database, topics and consumer groups, as a second replica in Kubernetes."""
        for service in SERVICES:
            pid = self.pid(service)
            environ = dict(
                line.split("=", 1)
                for line in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
                if "=" in line
            )
            environ.pop("COMPLAINTS_PID_FILE", None)  # services.sh's marker: this one is ours
            environ["HTTP_PORT"] = str(self.ports.of(service, 2))
            if service == "notify":
                environ["PUBLIC_URL"] = self.ports.url("notify", 2)
            log = open(self.cache / self.name / "logs" / f"{service}-2.log", "a")  # noqa: SIM115
            self.extra[service] = subprocess.Popen(
                [sys.executable, "-m", f"services.{service}.app"],
                cwd=REPO,
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        for service in SERVICES:
            self.wait_ready(self.ports.url(service, 2), self.extra[service])

    def wait_ready(self, url: str, process: subprocess.Popen | None = None, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited ({process.returncode}) during start-up")
            try:
                if self.http.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{url}/health/ready did not answer 200 within {timeout_s:.0f} s")

    def stop_second_instances(self) -> None:
        for process in self.extra.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.extra.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.extra.clear()

    def lease_holder(self, service: str) -> int | None:
        """The PID of the instance that holds the service's publishing lease, if the store says so
        (the kernel's lease document names its owner ``host:pid:…``; None for another kernel)."""
        with MongoClient(self.mongodb_url, serverSelectionTimeoutMS=3000) as client:
            for lease in client[f"complaints_{service}"]["leases"].find({}):
                try:
                    return int(str(lease.get("owner", "")).split(":")[1])
                except (IndexError, ValueError):
                    continue
        return None

    def kill_9(self, pid: int) -> float:
        os.kill(pid, signal.SIGKILL)
        return time.time()

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of each service's first instance (MB, /proc)."""
        out = {}
        for service in SERVICES:
            pid = self.pid(service)
            if pid:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        out[service] = int(line.split()[1]) / 1024
        return out

    def store_commands(self) -> dict[str, Counter]:
        """Commands each service's processes sent so far, by command name (the kernel's opt-in
        count, services/kernel/storecount.py)."""
        counts: dict[str, Counter] = {s: Counter() for s in SERVICES}
        for path in self.counts_dir.glob("*.json"):
            service = path.name.split(".")[0]
            if service in counts:
                try:
                    counts[service].update(json.loads(path.read_text()))
                except (OSError, ValueError):
                    pass
        return counts

    def store_commands_when_quiet(self, idle_per_s: float, limit_s: float = 120) -> dict[str, Counter]:
        """The counts once the services are done with the work in hand: the log followers and
        projections trail the dial-outs, so the counts are taken when the services' rate of
        commands is back within twice ``idle_per_s`` (their rate before the work; at most ``limit_s``)."""
        deadline, last = time.monotonic() + limit_s, self.store_commands()
        while time.monotonic() < deadline:
            time.sleep(3)
            now = self.store_commands()
            rate = (sum(map(_total, now.values())) - sum(map(_total, last.values()))) / 3
            last = now
            if rate <= 2 * idle_per_s + 1:
                break
        return last

    def idle_command_rate(self, seconds: float = 6) -> float:
        """Store commands per second of all services while nothing is asked of them (polling)."""
        before = sum(map(_total, self.store_commands().values()))
        time.sleep(seconds)
        return (sum(map(_total, self.store_commands().values())) - before) / seconds

    # --- the outside world: agents, telephony --------------------------------------------------

    def add_agents(self, count: int, prefix: str) -> None:
        """``count`` agents who take late deliveries in English, each up to the most cases."""
        headers, routing = {"Authorization": f"Bearer {_token('bench', 'admin')}"}, self.ports.url("routing")
        for i in range(count):
            agent = f"agt-{prefix}-{i:03d}"
            self.http.post(
                f"{routing}/api/agents",
                headers=headers,
                json={
                    "agent_id": agent,
                    "name": f"Bench agent {prefix} {i}",
                    "skills": ["late_delivery"],
                    "languages": ["en-GB"],
                    "capacity": AGENT_CAPACITY,
                },
            ).raise_for_status()
            self.http.put(
                f"{routing}/api/agents/{agent}/availability", headers=headers, json={"availability": "available"}
            ).raise_for_status()

    def calls(self) -> dict[str, list[float]]:
        """Phone -> when each call to it was asked of the telephony simulator (epoch seconds)."""
        received = self.http.get(f"{self.ports.url('telephony-simulator')}/received").json()["calls"]
        out: dict[str, list[float]] = {}
        for call in received:
            out.setdefault(call["to"], []).append(datetime.fromisoformat(call["date_created"]).timestamp())
        return out

    def forget_calls(self) -> None:
        self.http.delete(f"{self.ports.url('telephony-simulator')}/received")


class AgentsFinishing:
    """The roster's agents finishing their cases, as agents do: every ``every_s`` one read of the
    roster (as a supervisor), and each case assigned since ``since`` and held ``hold_s`` or longer
    resolved by its agent (long enough for its callback to be dialled first). A soak whose agents
    never finish keeps every complaint as work in hand on the roster, which the services must keep:
    with them finishing, what still grows is not work in hand."""

    def __init__(self, routing_url: str, since: datetime, hold_s: float = 20, every_s: float = 2) -> None:
        self.routing_url, self.since, self.hold_s, self.every_s = routing_url, since, hold_s, every_s
        self.resolved: set[str] = set()
        self.refused: Counter[int] = Counter()  # status -> resolutions refused
        self._counting = threading.Lock()  # four agents at a time report to them
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agents-finishing", daemon=True)

    def __enter__(self) -> AgentsFinishing:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        # A few agents at a time: one resolution after another fell behind a soak's pace.
        with httpx.Client(base_url=self.routing_url, timeout=10) as http, ThreadPoolExecutor(4) as agents:
            while not self._stop.wait(self.every_s):
                try:
                    list(agents.map(lambda due: self._resolve(http, *due), self._due(http)))
                except httpx.HTTPError:  # a slow answer under load: the next round tries again
                    continue

    def _due(self, http: httpx.Client) -> list[tuple[str, str]]:
        """(agent, complaint) of each case assigned since the soak began and held ``hold_s``."""
        boss = {"Authorization": f"Bearer {_token('bench-supervisor', 'supervisor')}"}
        due = datetime.now(UTC) - timedelta(seconds=self.hold_s)
        return [
            (agent["agent_id"], complaint_id)
            for agent in http.get("/api/agents", headers=boss).json()["agents"]
            for complaint_id, assigned in agent["cases"].items()
            if complaint_id not in self.resolved and self.since <= datetime.fromisoformat(assigned) <= due
        ]

    def _resolve(self, http: httpx.Client, agent_id: str, complaint_id: str) -> None:
        if self._stop.is_set():
            return
        answer = http.post(
            f"/api/cases/{complaint_id}/resolve",
            headers={"Authorization": f"Bearer {_token(agent_id, 'agent')}"},
            json={"recap": "We found the parcel and it is on its way.", "next_steps": []},
        )
        with self._counting:
            if answer.status_code < 300:
                self.resolved.add(complaint_id)
            else:
                self.refused[answer.status_code] += 1


def _token(sub: str, role: str, lasts: timedelta = timedelta(minutes=30)) -> str:
    """A bearer token of the local stack's signing key."""
    return auth.sign({"sub": sub, "role": role}, SIGNING_KEY, lasts)


def _total(counts: Counter) -> int:
    return sum(counts.values())


def agents_for(complaints: int) -> int:
    """Enough agents that nobody queues: a fifth more places than complaints."""
    return math.ceil(complaints * 1.2 / AGENT_CAPACITY) + 1


# --- Locust ---------------------------------------------------------------------------------------


@dataclass
class Burst:
    """What one Locust run sent and what was dialled of it."""

    records: list[dict[str, Any]]
    calls: dict[str, list[float]]
    ended: float  # Locust's last answer
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("call_status") == 202]

    def figures(self) -> dict[str, Any]:
        accepted = self.accepted
        dialled = [r for r in accepted if r["phone"] in self.calls]
        latencies = [(self.calls[r["phone"]][0] - r["clicked"]) * 1000 for r in dialled]
        first = min((r["started"] for r in self.records), default=math.nan)
        last_call = max((self.calls[r["phone"]][0] for r in dialled), default=math.nan)
        last_answer = max((r.get("answered", r["started"]) for r in self.records), default=math.nan)
        statuses = Counter(str(r.get("call_status") or r.get("file_status")) for r in self.records)
        shed = [r for r in self.records if (r.get("file_status") in (429, 503) or r.get("call_status") in (429, 503))]
        return {
            "sent": len(self.records),
            "accepted": len(accepted),
            "dialled": len(dialled),
            "lost": len(accepted) - len(dialled),
            "dialled_twice": sum(1 for r in accepted if len(self.calls.get(r["phone"], [])) > 1),
            "statuses": dict(statuses),
            "shed": len(shed),
            "shed_with_retry_after": sum(1 for r in shed if r.get("file_retry_after") or r.get("call_retry_after")),
            "timeouts_or_errors": sum(
                1 for r in self.records if r.get("file_status") == 0 or r.get("call_status") == 0
            ),
            "dialled_per_s": len(dialled) / (last_call - first) if dialled and last_call > first else 0.0,
            "accepted_per_s": len(accepted) / (last_answer - first) if accepted and last_answer > first else 0.0,
            "click_to_call_ms": spread(latencies),
            "seconds": (last_call - first) if dialled else math.nan,
        }


def run_locust(
    platform: Platform,
    label: str,
    phone_prefix: str,
    total: int,
    users: int,
    rate: float = 0.0,
    run_time_s: float = 1800,
    intake_urls: list[str] | None = None,
    during: Callable[[int], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    settle_s: float = 120,
) -> Burst:
    """Locust headless: ``users`` complainants (``total`` complaints, or until ``run_time_s``,
    at ``rate``/s in all or flat out), then wait until every accepted callback was dialled (or
    nothing more was for ``settle_s``). ``during(sent)`` is called about every second meanwhile,
    ``progress(dialled, expected)`` too."""
    records_path = platform.work / f"locust-{label}.jsonl"
    records_path.unlink(missing_ok=True)
    env = {
        **os.environ,
        "BENCH_INTAKE_URLS": ",".join(intake_urls or [platform.ports.url("intake")]),
        "BENCH_TOTAL": str(total),
        "BENCH_RATE": str(rate),
        "BENCH_USERS": str(users),
        "BENCH_RECORDS": str(records_path),
        "BENCH_PHONE_PREFIX": phone_prefix,
        "BENCH_SIGNING_KEY": SIGNING_KEY,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable,
        "-m",
        "locust",
        "--headless",
        "-f",
        str(REPO / "bench/locustfile.py"),
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        f"{int(run_time_s)}s",
        "--host",
        platform.ports.url("intake"),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "35",
        "--exit-code-on-error",
        "0",
    ]
    with open(platform.work / f"locust-{label}.log", "w") as log:
        locust = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        while locust.poll() is None:
            time.sleep(1)
            sent = _lines(records_path)
            if during:
                during(sent)
            if progress:
                progress(_dialled(platform, records_path), max(sent, 1) if not total else total)
    ended = time.time()
    if not records_path.exists():  # Locust sent nothing: say why (e.g. not installed), not "no such file"
        raise RuntimeError(
            f"Locust recorded no request (exit {locust.returncode}); its log: "
            f"{platform.work / f'locust-{label}.log'} (`make bench` installs it: pip install -e '.[bench]')"
        )
    records = [json.loads(line) for line in records_path.read_text().splitlines() if line.strip()]
    expected = {r["phone"] for r in records if r.get("call_status") == 202}
    calls, last_count, quiet_since = {}, -1, time.monotonic()
    while True:
        calls = platform.calls()
        count = sum(1 for phone in expected if phone in calls)
        if progress:
            progress(count, len(expected))
        if count >= len(expected):
            break
        if count != last_count:
            last_count, quiet_since = count, time.monotonic()
        elif time.monotonic() - quiet_since > settle_s:
            break
        time.sleep(1)
    return Burst(records, {p: sorted(t) for p, t in calls.items() if p.startswith(phone_prefix)}, ended)


def _lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def _dialled(platform: Platform, records_path: Path) -> int:
    try:
        return len(platform.calls())
    except httpx.HTTPError:
        return 0


# --- one at a time --------------------------------------------------------------------------------


def one_at_a_time(
    platform: Platform,
    count: int,
    phone_prefix: str,
    timeout_s: float = 60,
    stop_when: Callable[[list[float]], bool] | None = None,
    advance: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """File and ask for a call, wait until the simulator has it, then the next (click → call,
    ms; infinite for a click refused with Retry-After); ``stop_when(latencies so far)`` ends it early."""
    intake = platform.ports.url("intake")
    customer = _token("cust-bench-sequential", "customer", timedelta(hours=2))
    out: list[dict[str, Any]] = []
    for n in range(count):
        phone = f"{phone_prefix}{n:06d}"
        filed = platform.http.post(
            f"{intake}/api/complaints",
            headers={"Authorization": f"Bearer {customer}"},
            json={
                "category": "late_delivery",
                "description": f"Parcel {n} is late; call me.",
                "channel": "web",
                "complainant": {"phone": phone},
            },
        )
        filed.raise_for_status()
        case = filed.json()
        clicked = time.time()
        answer = platform.http.post(
            f"{intake}/api/complaints/{case['complaint_id']}/callback",
            headers={"Authorization": f"Bearer {case['access_token']}"},
            json={"phone": phone, "preferred_language": "en"},
        )
        if answer.status_code in (429, 503) and "Retry-After" in answer.headers:
            # Refused while the queue is long (intake's admission, ADR 0051): no call to wait for,
            # and no figure of normal service. A person tries again when told: so does the probe.
            out.append({"phone": phone, "clicked": clicked, "click_to_call_ms": math.inf, "refused": True})
            time.sleep(min(5.0, float(answer.headers["Retry-After"])))
            if advance:
                advance()
            continue
        answer.raise_for_status()
        deadline, called = time.monotonic() + timeout_s, None
        while called is None and time.monotonic() < deadline:
            time.sleep(0.01)
            called = platform.calls().get(phone)
        out.append(
            {"phone": phone, "clicked": clicked, "click_to_call_ms": (called[0] - clicked) * 1000 if called else None}
        )
        if advance:
            advance()
        if stop_when and stop_when([o["click_to_call_ms"] for o in out if o["click_to_call_ms"] is not None]):
            break
    return out


def p99(latencies: list[float]) -> float:
    return percentile(latencies, 0.99)
