"""Issue 16, item 5: the locked-out seller's path through intake behind uvicorn, and not one log
line (ours, uvicorn's access lines, httpx's) holds her code, a token, a secret or an
Authorization value."""

from __future__ import annotations

import io
import logging

from services.intake.domain import verification_stream
from services.kernel.telemetry import JsonLogFormatter
from tests.integration.intake.conftest import served_intake
from tests.integration.support import code_as_notify_reads_it

SELLER = "sel-48213"


async def test_no_log_line_holds_the_code_a_token_a_secret_or_an_authorization_value(intake_config):
    config = await intake_config()
    lines, handler = io.StringIO(), logging.StreamHandler()
    handler.stream, root = lines, logging.getLogger()
    handler.setFormatter(JsonLogFormatter())
    level, root.level = root.level, logging.INFO
    root.addHandler(handler)
    try:
        async with served_intake(config) as intake:
            asked = await intake.post("/api/verification/codes", json={"seller_id": SELLER})
            vid = asked.json()["verification_id"]
            events, _ = await intake_store_events(config, vid)
            code = code_as_notify_reads_it(vid, events[-1].code_sealed)
            filing = (
                await intake.post(
                    "/api/verification/verify", json={"seller_id": SELLER, "verification_id": vid, "code": code}
                )
            ).json()["filing_token"]
            filed = (
                await intake.post(
                    "/api/complaints",
                    headers={"Authorization": f"Bearer {filing}"},
                    json={
                        "category": "account_locked",
                        "description": "Locked out for 12 days; a buyer's parcel is lost.",
                        "complainant": {"display_name": "Maria Chen", "email": "typed@example.com"},
                    },
                )
            ).json()
            assert "status_url" in filed, filed
            case_link = filed["status_url"]
            assert (await intake.get(case_link)).status_code == 200
            await intake.get(f"/api/complaints/{filed['complaint_id']}?token=not-a-token-but-secret-still")
            await intake.post(
                "/api/inbound/email", headers={"Authorization": f"Bearer {config.inbound_webhook_secret}"}, json={}
            )
    finally:
        root.removeHandler(handler)
        root.level = level

    log = lines.getvalue()
    case_token = case_link.split("token=", 1)[1]
    leaks = {
        name: value
        for name, value in {
            "code": code,
            "filing token": filing,
            "case token": case_token,
            "made-up token": "not-a-token-but-secret-still",
            "webhook secret": config.inbound_webhook_secret,
            "signing key": config.signing_key,
        }.items()
        if value in log
    }
    assert leaks == {}, f"in the logs: {sorted(leaks)}"
    assert "/complaints/" in log and "token=[redacted]" in log, "the access lines were not captured"


async def intake_store_events(config, verification_id: str):
    from pymongo import AsyncMongoClient

    from contracts.envelope import registry
    from services.kernel.eventstore import EventStore

    client = AsyncMongoClient(config.mongodb_url, tz_aware=True)
    try:
        return await EventStore(client[config.database_name], "/test", registry).load(
            verification_stream(verification_id)
        )
    finally:
        await client.close()
