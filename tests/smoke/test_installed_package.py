"""The product as shipped: the wheel built from pyproject.toml, installed in a virtual environment
outside the source tree, runs all four services, and story 1 plays through their public APIs.

Every other test imports the services from the source tree, where every data file is at hand; a
rules file, template or script that the wheel leaves out (the routing service crash-looped in the
image for that reason) fails here. The environment is cached under ~/.cache/complaints-platform/ per set of
dependency pins; the wheel itself is rebuilt and reinstalled every run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from contracts import TOPICS
from services.kernel import auth
from tests.integration.simulators import (  # noqa: F401
    ROOT,
    carrier_simulator_url,
    free_port,
    mailbox,
    order_system_url,
    telephony_url,
)
from tests.integration.support import service_credentials_env, skip_history, stop_processes, wait_until_ready

pytestmark = pytest.mark.integration

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
MONGO = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:29017/")
#: Outside the source tree, so that nothing of it can be imported by accident.
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "complaints-platform" / "installed"
SIGNING_KEY = "smoke-test-signing-key-0123456789-abcdef"
SERVICES = ("intake", "routing", "carrier", "notify")
READS = {
    "intake": [t for s, t in TOPICS.items() if s != "intake"],
    "routing": [TOPICS["intake"], TOPICS["notify"]],
    "carrier": [TOPICS["intake"], TOPICS["routing"]],
    "notify": [TOPICS["intake"], TOPICS["routing"]],
}


def run(*args: str | Path, cwd: Path) -> None:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a virtual environment holding the freshly built wheel and its pinned dependencies."""
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    venv = CACHE / hashlib.sha256("\n".join(sorted(pins)).encode()).hexdigest()[:12]
    python = venv / "bin" / "python"
    if not python.exists():
        shutil.rmtree(venv, ignore_errors=True)
        CACHE.mkdir(parents=True, exist_ok=True)
        run(sys.executable, "-m", "venv", venv, cwd=CACHE)
        run(python, "-m", "pip", "install", "-q", "setuptools>=68", *pins, cwd=CACHE)
    wheels = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source") / "tree"  # a copy: building writes build/ into the tree
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".cache", ".venv", "node_modules", "build", "*.egg-info", "__pycache__", "tests"
        ),
    )
    run(python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, source, cwd=wheels)
    [wheel] = wheels.glob("*.whl")
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel, cwd=wheels)
    return python


@pytest.fixture(scope="session")
def platform(
    installed: Path,
    tmp_path_factory,
    order_system_url,
    mailbox,
    telephony_url,  # noqa: F811
    carrier_simulator_url,
) -> Iterator[dict[str, str]]:  # noqa: F811
    """The four services, each `python -m services.<name>.app` of the installed package, run from
    a folder outside the source tree, on the test stack; their base URLs."""
    outside = tmp_path_factory.mktemp("outside")
    run_id = uuid.uuid4().hex[:8]
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "MONGODB_URL": MONGO,
        "SIGNING_KEY": SIGNING_KEY,
        "HTTP_HOST": "127.0.0.1",
        "ORDER_SYSTEM_URL": order_system_url,
        "PATH": os.environ["PATH"],
        "OUTBOX_POLL_INTERVAL_S": "0.2",
        "LEASE_TTL_S": "3",
    }
    own = {
        "intake": {"ROUTING_PUBLIC_URL": urls["routing"], "CARRIER_PUBLIC_URL": urls["carrier"]},
        "routing": {"CORS_ORIGINS": urls["intake"]},
        "carrier": {
            "CORS_ORIGINS": urls["intake"],
            "RECHECK_INTERVAL_S": "0",
            **{f"{c}_URL": carrier_simulator_url for c in ("FEDEX", "UPS", "USPS", "AUSPOST")},
        },
        "notify": {
            "PUBLIC_URL": urls["notify"],
            "SMTP_PORT": str(mailbox.smtp_port),
            "TELEPHONY_URL": telephony_url,
            "TICK_INTERVAL_S": "1",
        },
    }
    processes = {}
    try:
        for name in SERVICES:
            group = f"{name}-smoke-{run_id}"
            for topic in READS[name]:
                # earlier tests' events are not this run's work (the group as the service names it)
                skip_history(KAFKA, f"complaints.{group}", topic)
            log = (outside / f"{name}.log").open("wb")
            env = {
                **common,
                **own[name],
                **service_credentials_env(name),
                "SERVICE_NAME": group,
                "MONGODB_DATABASE": f"smoke_{run_id}_{name}",
                "HTTP_PORT": str(ports[name]),
            }
            processes[name] = (
                subprocess.Popen(
                    [str(installed), "-m", f"services.{name}.app"],
                    cwd=outside,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                ),
                outside / f"{name}.log",
            )
        for name, (process, log) in processes.items():
            wait_until_ready(name, urls[name], process, log)
        yield urls
    finally:
        stop_processes(process for process, _ in processes.values())


def bearer(**claims: str) -> dict:
    return {"Authorization": f"Bearer {auth.sign(claims, SIGNING_KEY, timedelta(minutes=10))}"}


def eventually(check, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while (found := check()) in (None, [], False):
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)
    return found


def test_the_installed_services_start_outside_the_source_tree_and_serve_their_pages(platform):
    desk = httpx.get(f"{platform['intake']}/desk/")
    script = httpx.get(f"{platform['intake']}/static/desk/case.js")
    page = httpx.get(f"{platform['intake']}/")
    assert (desk.status_code, script.status_code, page.status_code) == (200, 200, 200)
    assert "sign" in desk.text.lower() or "queue" in desk.text.lower()


def test_story_1_plays_on_the_installed_services_from_the_click_to_the_closure_email(platform, mailbox, telephony_url):
    routing, intake, agent_id = platform["routing"], platform["intake"], f"agt-smoke-{uuid.uuid4().hex[:6]}"
    admin = bearer(sub="adm-smoke", role="admin")
    registered = httpx.post(
        f"{routing}/api/agents",
        headers=admin,
        json={
            "agent_id": agent_id,
            "name": "Smoke",
            "skills": ["delivery_driver_conduct"],
            "languages": ["en-GB"],
            "capacity": 2,
        },
    )
    assert registered.status_code == 201, registered.text
    available = httpx.put(
        f"{routing}/api/agents/{agent_id}/availability", headers=admin, json={"availability": "available"}
    )
    assert available.status_code == 200, available.text

    email, phone = f"smoke-{uuid.uuid4().hex[:8]}@example.com", f"+4477009{uuid.uuid4().int % 10**5:05d}"
    filed = httpx.post(
        f"{intake}/api/complaints",
        json={
            "category": "delivery_driver_conduct",
            "description": "The van reversed onto the pavement and nearly hit me.",
            "complainant": {"email": email, "phone": phone},
        },
    )
    assert filed.status_code == 201, filed.text
    complaint_id, token = filed.json()["complaint_id"], filed.json()["access_token"]
    call_me = httpx.post(
        f"{intake}/api/complaints/{complaint_id}/callback",
        json={"phone": phone},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert call_me.status_code == 202, call_me.text

    call = eventually(lambda: [c for c in httpx.get(f"{telephony_url}/received").json()["calls"] if c["to"] == phone])
    assert f"<Client>{agent_id}</Client>" in call[0]["twiml"]
    resolved = httpx.post(
        f"{routing}/api/cases/{complaint_id}/resolve",
        headers=bearer(sub=agent_id, role="agent"),
        json={"recap": "The partner spoke to the driver.", "next_steps": []},
    )
    assert resolved.status_code == 200, resolved.text
    [question] = eventually(lambda: [m for m in mailbox.messages(email) if "closed?" in m["subject"]])
    assert email in question["to"] and complaint_id in question["subject"]
