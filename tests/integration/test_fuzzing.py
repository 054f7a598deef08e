"""The fuzzing stage: schemathesis against the OpenAPI document of each of the four services,
running as real processes on the real broker and store, as every kind of caller (no credentials,
and a valid token of each role), with the checks not_a_server_error, status_code_conformance,
content_type_conformance and response_schema_conformance, in every phase (examples, coverage,
fuzzing, and stateful where the document's links allow). Any finding fails the build; a route
broken on purpose proves the stage can fail.

Bounded: a time budget per run (FUZZ_SECONDS, default 6), two runs at a time, a fixed seed. Measured
on the shared 2-core machine: 105 s for the module (15 runs, 0 findings) at a load average of 11-14,
232 s at 25-30.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.kernel.openapi import problems
from services.kernel.web import PathId, service_app
from tests.integration.fuzzing import WEBHOOK_SECRET, Run, bearer, four_services, fuzz
from tests.integration.simulators import carrier_simulator_url, free_port, mailbox, telephony_url  # noqa: F401

pytestmark = pytest.mark.integration

SECONDS = int(os.environ.get("FUZZ_SECONDS", "6"))
AGENT, TEAM = "agt-fuzz", "team-fuzz"


def callers() -> dict[str, dict | None]:
    """A token of each role, minted when asked: tokens made at import expire (one hour) before
    the module runs in a long suite."""
    return {
        "anonymous": None,
        "customer": bearer(sub="cust-1001", role="customer"),
        "agent": bearer(sub=AGENT, role="agent"),
        "supervisor": bearer(sub="sup-fuzz", role="supervisor"),
        "admin": bearer(sub="adm-fuzz", role="admin"),
        "partner": bearer(sub="pat-fuzz", role="partner", team=TEAM),
        "webhook": {"Authorization": f"Bearer {WEBHOOK_SECRET}"},
    }


ALL, STATEFUL = "examples,coverage,fuzzing,stateful", "stateful"
#: Who calls each service: everyone it serves (the carrier's webhook is signed per body, so the
#: fuzzer reaches it only unsigned). The earlier phases spend most of a run's budget, so the
#: stateful phase (a filing, then its case and its callback; an agent, then its queue) has runs
#: of its own where the documents link operations.
RUNS = (
    [("intake", c, ALL) for c in ("anonymous", "customer", "supervisor", "webhook")]
    + [("routing", c, ALL) for c in ("anonymous", "agent", "supervisor", "admin", "partner")]
    + [("carrier", c, ALL) for c in ("anonymous", "supervisor")]
    + [("notify", c, ALL) for c in ("anonymous", "webhook")]
    + [("intake", "customer", STATEFUL), ("routing", "supervisor", STATEFUL)]
)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, order_system_url, carrier_simulator_url, mailbox, telephony_url):  # noqa: F811
    """The four services, and on routing's roster an agent and a partner team to act as."""
    with four_services(
        tmp_path_factory.mktemp("fuzzing"), order_system_url, carrier_simulator_url, mailbox.smtp_port, telephony_url
    ) as urls:
        admin = callers()["admin"]
        assert (
            httpx.post(
                f"{urls['routing']}/api/partner-teams",
                headers=admin,
                timeout=30,
                json={"team_id": TEAM, "name": "Fuzzing", "categories": ["other"], "response_sla_minutes": 60},
            ).status_code
            == 201
        )
        assert (
            httpx.post(
                f"{urls['routing']}/api/agents",
                headers=admin,
                timeout=30,
                json={"agent_id": AGENT, "name": "Fuzzing", "skills": ["other"], "languages": ["en"], "capacity": 2},
            ).status_code
            == 201
        )
        yield urls


def report(runs: dict[tuple[str, str, str], Run]) -> str:
    return "\n\n".join(
        f"===== {service} as {caller}, {phases} (exit {run.code}, {run.seconds:.0f} s)\n{run.output[-6000:]}"
        for (service, caller, phases), run in runs.items()
        if run.findings
    )


def test_no_input_from_any_caller_finds_a_server_error_or_an_undocumented_answer(platform):
    who = callers()
    with ThreadPoolExecutor(2) as pool:
        runs = dict(
            zip(
                RUNS,
                pool.map(lambda r: fuzz(platform[r[0]], who[r[1]], max_time_s=SECONDS, phases=r[2]), RUNS),
                strict=True,
            )
        )

    for (service, caller, phases), run in runs.items():
        print(f"fuzzing {service} as {caller} ({phases}): exit {run.code} in {run.seconds:.1f} s")
    assert not any(run.findings for run in runs.values()), report(runs)


def broken_app() -> FastAPI:
    """An app with the kernel's error handling and docs, and one route that fails on a blank id."""
    app = service_app("Broken on purpose", "A route with a bug the fuzzer must find.", None, None, 10_000)

    @app.get("/api/things/{thing_id}", responses=problems(404))
    async def thing(thing_id: PathId) -> dict:
        return {"thing_id": thing_id, "first": thing_id.split("-")[1]}  # IndexError without a dash

    return app


def test_the_stage_fails_on_a_route_that_answers_a_server_error():
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(broken_app(), host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)
        run = fuzz(f"http://127.0.0.1:{port}", None, max_time_s=SECONDS, phases="examples,coverage,fuzzing")
    finally:
        server.should_exit = True
        thread.join(10)

    assert run.findings, run.output
    assert "GET /api/things/{thing_id}" in run.output and "Server error" in run.output, run.output
