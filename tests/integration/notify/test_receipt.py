"""A filed complaint gets a receipt: its short reference to read aloud and the link back to its
case page, by email, else by SMS; never for a case we opened ourselves, and once per filing."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from contracts.intake import Channel, short_reference
from services.kernel import auth
from services.notify.ledger import ledger_stream
from tests.integration.notify.conftest import notify_settings, publish, running_notify, settled
from tests.integration.notify.story import filed, mail_to, someone, stream_types
from tests.integration.support import wait_for


@pytest.fixture
async def receipting(settings, db, mailbox, telephony_url, order_system_url, clock):
    config = notify_settings(
        settings,
        mailbox,
        telephony_url,
        order_system_url,
        filing_receipts=True,
        case_page_url="https://help.example.com",
    )
    async with running_notify(config, clock) as client:
        yield client


async def test_the_complainant_gets_an_email_receipt_with_a_short_reference_and_the_link_to_the_case(
    receipting, mailbox
):
    complaint_id, email = someone()
    filing = filed(complaint_id, email, "+447700900123")
    publish(receipting.config.kafka_bootstrap_servers, "intake", filing, filing)  # filed once, delivered twice

    [mail] = await mail_to(mailbox, email)

    reference = short_reference(complaint_id)
    assert mail["subject"] == f"We have your complaint: reference {reference}"
    assert len(reference) == 9 and reference in mail["text"] and reference in mail["html"]
    link = next(line for line in mail["text"].splitlines() if line.startswith("https://help.example.com/complaints/"))
    assert link.startswith(f"https://help.example.com/complaints/{complaint_id}?token=")
    claims = auth.verify(link.split("token=")[1], receipting.config.signing_key)
    assert claims["complaint_id"] == complaint_id  # the case page's own key, as intake signs it
    await settled(receipting)
    assert len(await asyncio.to_thread(mailbox.messages, email)) == 1


async def test_without_an_email_the_receipt_goes_by_sms_and_a_case_we_opened_gets_none(
    receipting, mailbox, telephony_url
):
    complaint_id, _ = someone()
    phone = "+4477009" + complaint_id[-5:].translate(str.maketrans("abcdef", "123456"))
    ours, email = someone()
    publish(
        receipting.config.kafka_bootstrap_servers,
        "intake",
        filed(complaint_id, None, phone),
        filed(ours, email).model_copy(update={"channel": Channel.PROACTIVE}),
    )

    async def texted():
        async with httpx.AsyncClient() as client:
            messages = (await client.get(f"{telephony_url}/received")).json()["messages"]
        return [m for m in messages if m["to"] == phone]

    [sms] = await wait_for(texted)

    assert sms["body"].startswith(f"We have your complaint, reference {short_reference(complaint_id)}.")
    assert f"/complaints/{complaint_id}?token=" in sms["body"]
    # Our own case: notify knows how to reach its customer, and queued nothing for them.
    await wait_for(lambda: receipting.notify.known(ours))
    assert await stream_types(receipting, ledger_stream(email)) == []
