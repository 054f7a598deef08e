"""The fuzzing stage's machinery: the four services as real processes on the test stack, and one
schemathesis run (pinned in pyproject.toml) against a service's OpenAPI document as one caller."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from contracts import TOPICS
from services.kernel import auth
from tests.integration.simulators import ROOT, free_port
from tests.integration.support import service_credentials_env, skip_history, stop_processes, wait_until_ready

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
MONGO = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:29017/")
SIGNING_KEY = "fuzzing-signing-key-0123456789-abcdefghij"
WEBHOOK_SECRET = "fuzzing-webhook-secret-0123456789"
SERVICES = ("intake", "routing", "carrier", "notify")
READS = {
    "intake": [t for s, t in TOPICS.items() if s != "intake"],
    "routing": [TOPICS["intake"], TOPICS["notify"]],
    "carrier": [TOPICS["intake"], TOPICS["routing"]],
    "notify": [TOPICS["intake"], TOPICS["routing"]],
}
#: What the issue asks of every answer: never a 5xx, a documented status, content type and body.
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance")
SCHEMATHESIS = [
    sys.executable,
    "-c",
    "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'st'; schemathesis()",
]


def bearer(**claims: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.sign(claims, SIGNING_KEY, timedelta(hours=1))}"}


@contextmanager
def four_services(
    folder: Path, order_system_url: str, carrier_simulator_url: str, smtp_port: int, telephony_url: str
) -> Iterator[dict[str, str]]:
    """``python -m services.<name>.app`` of each service on the test stack; their base URLs."""
    run_id = uuid.uuid4().hex[:8]
    urls = {name: f"http://127.0.0.1:{free_port()}" for name in SERVICES}
    common = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "MONGODB_URL": MONGO,
        "SIGNING_KEY": SIGNING_KEY,
        "INBOUND_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "HTTP_HOST": "127.0.0.1",
        "ORDER_SYSTEM_URL": order_system_url,
        "OUTBOX_POLL_INTERVAL_S": "0.2",
        "LEASE_TTL_S": "3",
        "LOG_LEVEL": "WARNING",
    }
    own = {
        "intake": {},
        "routing": {},
        "notify": {"PUBLIC_URL": urls["notify"], "SMTP_PORT": str(smtp_port), "TELEPHONY_URL": telephony_url},
        "carrier": {
            "RECHECK_INTERVAL_S": "0",
            **{f"{c}_URL": carrier_simulator_url for c in ("FEDEX", "UPS", "USPS", "AUSPOST")},
        },
    }
    processes: dict[str, tuple[subprocess.Popen, Path]] = {}
    try:
        for name in SERVICES:
            group = f"{name}-fuzz-{run_id}"
            for topic in READS[name]:
                skip_history(KAFKA, group, topic)  # earlier tests' events are not this run's work
            log = folder / f"{name}.log"
            env = {
                **common,
                **own[name],
                **service_credentials_env(name),
                "SERVICE_NAME": group,
                "MONGODB_DATABASE": f"fuzz_{run_id}_{name}",
                "HTTP_PORT": urls[name].rsplit(":", 1)[1],
            }
            with log.open("wb") as out:
                processes[name] = (
                    subprocess.Popen(
                        [sys.executable, "-m", f"services.{name}.app"],
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    ),
                    log,
                )
        for name, (process, log) in processes.items():
            wait_until_ready(name, urls[name], process, log)
        yield urls
    finally:
        stop_processes(process for process, _ in processes.values())


@dataclass(frozen=True)
class Run:
    """One schemathesis run: its exit code and what it printed."""

    code: int
    output: str
    seconds: float

    @property
    def findings(self) -> bool:
        return self.code != 0


def fuzz(
    url: str,
    headers: dict[str, str] | None = None,
    *,
    max_examples: int = 12,
    max_time_s: int = 20,
    phases: str = "examples,coverage,fuzzing,stateful",
) -> Run:
    """Run schemathesis against ``url``'s ``/openapi.json`` as the caller ``headers`` make; a fixed
    seed, so a finding is reproduced by the same command."""
    command = [
        *SCHEMATHESIS,
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        phases,
        "--max-examples",
        str(max_examples),
        "--max-time",
        str(max_time_s),
        "--seed",
        "17",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--suppress-health-check",
        "all",
        "--exclude-path",
        "/health/ready",
        "--exclude-path",
        "/health/live",
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    started = time.monotonic()
    # A folder of its own: schemathesis keeps a cache of crashes in its working directory, which
    # would replay one run's findings in the next and litter the work tree.
    with tempfile.TemporaryDirectory(prefix="fuzzing-") as where:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=max_time_s + 120,
            cwd=where,
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        )
    return Run(done.returncode, done.stdout + done.stderr, time.monotonic() - started)
