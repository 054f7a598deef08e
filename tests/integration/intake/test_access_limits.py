"""Issue 13: the limits an attacker meets at the front door, each attack through the public API on
the real broker and store: refused with a 429 that names the rule, nothing written, and the
legitimate path still open."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import uvicorn
from pymongo import AsyncMongoClient

from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from services.kernel.process import http_config

TOO_MANY_CALLBACKS = {"message": "callback: too many requests; try again later"}


def complaint(**overrides) -> dict:
    return {"category": "delivery_driver_conduct", "description": "The driver threw the parcel over the gate.",
            "complainant": {"email": "sam.okafor@example.com"}, **overrides}


def bearer(filed: dict) -> dict:
    return {"Authorization": f"Bearer {filed['access_token']}"}


async def appended(config: IntakeSettings) -> list[str]:
    """The types of the events intake appended (whichever replica did), in no particular order."""
    client = AsyncMongoClient(config.mongodb_url)
    try:
        return [event["type"].split(".")[-2] async for commit in client[config.database_name]["commits"].find({})
                for event in commit["events"]]
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def served_intake(config: IntakeSettings) -> AsyncIterator[httpx.AsyncClient]:
    """Intake behind uvicorn as a replica runs it, on a free port of 127.0.0.1."""
    server = uvicorn.Server(http_config(create_app(config), "127.0.0.1", 0))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "intake did not start"
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.should_exit = True
        await serving


async def call_me(intake, filed: dict, phone: str, forwarded_for: str):
    return await intake.post(f"/api/complaints/{filed['complaint_id']}/callback", json={"phone": phone},
                             headers={**bearer(filed), "X-Forwarded-For": forwarded_for})


async def test_a_forged_forwarded_address_from_an_untrusted_peer_does_not_escape_the_per_client_limit(
        intake_config):
    config = await intake_config(callbacks_per_client=2)
    async with served_intake(config) as intake:  # from 127.0.0.1, which uvicorn alone would trust
        cases = [(await intake.post("/api/complaints", json=complaint())).json() for _ in range(3)]
        answers = [await call_me(intake, filed, f"+4477009002{n:02}", f"198.51.100.{n}")
                   for n, filed in enumerate(cases)]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[-1].json() == TOO_MANY_CALLBACKS and int(answers[-1].headers["Retry-After"]) > 0
    assert (await appended(config)).count("CallbackRequested") == 2, "the refused request appended nothing"


async def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_limited(intake_config):
    config = await intake_config(callbacks_per_client=2, trusted_proxies="127.0.0.1")
    async with served_intake(config) as ingress:
        cases = [(await ingress.post("/api/complaints", json=complaint())).json() for _ in range(4)]
        # The caller writes what it likes on the left; the ingress appends whom it saw.
        answers = [await call_me(ingress, filed, f"+4477009002{n:02}", f"198.51.100.{n}, 203.0.113.9")
                   for n, filed in enumerate(cases[:3])]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[-1].json() == TOO_MANY_CALLBACKS
        another = await call_me(ingress, cases[3], "+447700900298", "198.51.100.1, 203.0.113.10")
        assert another.status_code == 202, "another caller behind the same ingress has its own limit"
    assert (await appended(config)).count("CallbackRequested") == 3
