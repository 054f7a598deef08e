"""The complainant hears the outcome (never the internal note); one-time codes reach the locked-out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from contracts.intake import VerificationCodeRequested
from contracts.routing import PartnerOutcomeRecorded
from services.kernel.sealed_codes import DEV_PUBLIC_KEY, code_digest, new_private_key, public_key_of, seal
from services.notify.ledger import ledger_stream
from tests.integration.notify.conftest import publish
from tests.integration.notify.story import filed, mail_to, someone, stream_types
from tests.integration.support import documents_holding, wait_for


async def test_the_complainant_is_told_the_outcome_in_words_fit_for_them_and_never_the_internal_note(notify, mailbox):
    complaint_id, email = someone()
    publish(notify.config.kafka_bootstrap_servers, "intake", filed(complaint_id, email))
    publish(
        notify.config.kafka_bootstrap_servers,
        "routing",
        PartnerOutcomeRecorded(
            complaint_id=complaint_id,
            team_id="team-logistics-uk-south",
            outcome_for_customer="We spoke to the driver and retrained them on reversing near pavements.",
            internal_note="Driver D-311 (Mark Jones) interviewed by depot manager.",
            recorded_at=datetime.now(UTC),
        ),
    )

    [mail] = await mail_to(mailbox, email)

    assert mail["subject"] == f"What was done about your complaint {complaint_id}"
    assert "retrained them on reversing" in mail["text"] and "retrained them on reversing" in mail["html"]
    assert "D-311" not in mail["raw"] and "Mark Jones" not in mail["raw"]
    await wait_for(lambda: _has(notify, ledger_stream(email), "OutcomeShared"))


def code_for(destination: str, channel: str, public_key: str = DEV_PUBLIC_KEY) -> VerificationCodeRequested:
    """The code 481516 as intake sends it: sealed for notify (docs/adr/0025)."""
    now, vid = datetime.now(UTC), f"ver-{destination}"
    return VerificationCodeRequested(
        verification_id=vid,
        channel=channel,
        destination=destination,
        code_digest=code_digest("481516", vid, "intake's key"),
        code_sealed=seal("481516", vid, public_key),
        expires_at=now + timedelta(minutes=10),
        requested_at=now,
    )


async def test_a_one_time_code_goes_by_email_to_the_contact_on_file(notify, mailbox):
    _, email = someone()
    publish(notify.config.kafka_bootstrap_servers, "intake", code_for(email, "email"))

    [mail] = await mail_to(mailbox, email)

    assert mail["subject"] == "Your one-time code" and "481516" in mail["text"]
    await wait_for(lambda: _has(notify, ledger_stream(email), "VerificationCodeSent"))


async def test_the_code_is_in_the_mail_and_in_no_document_of_notify(notify, mailbox, db):
    _, email = someone()
    publish(notify.config.kafka_bootstrap_servers, "intake", code_for(email, "email"))
    [mail] = await mail_to(mailbox, email)
    await wait_for(lambda: _has(notify, ledger_stream(email), "VerificationCodeSent"))

    assert "481516" in mail["text"]
    assert await documents_holding(db, "481516") == []


async def test_a_code_sealed_for_another_key_is_not_sent_and_the_failure_says_why(notify, mailbox):
    _, email = someone()
    publish(notify.config.kafka_bootstrap_servers, "intake", code_for(email, "email", public_key_of(new_private_key())))

    failed = await wait_for(lambda: failures(notify, ledger_stream(email)))

    assert "cannot be opened" in failed[0].reason
    assert mailbox.messages(email) == []


async def failures(notify, stream: str) -> list:
    events, _ = await notify.store.load(stream)
    return [e for e in events if type(e).__name__ == "NotificationFailed"]


async def test_a_one_time_code_goes_by_sms_through_the_telephony_provider(notify, telephony_url):
    phone = "+4477008" + _digits()
    publish(notify.config.kafka_bootstrap_servers, "intake", code_for(phone, "sms"))

    async def texted():
        async with httpx.AsyncClient() as client:
            found = [m for m in (await client.get(f"{telephony_url}/received")).json()["messages"] if m["to"] == phone]
        return found

    [sms] = await wait_for(texted)

    assert sms["body"].startswith("Your one-time code is 481516.")
    await wait_for(lambda: _has(notify, ledger_stream(phone), "VerificationCodeSent"))


def _digits() -> str:
    import random

    return f"{random.randrange(10**5):05d}"


async def _has(notify, stream: str, name: str) -> bool:
    await asyncio.sleep(0)
    return name in await stream_types(notify, stream)
