"""Bad days for delivery: the SMTP server down, a template that cannot render."""

from __future__ import annotations

import shutil

import httpx
import pytest
from aiosmtpd.controller import Controller

from contracts import registry
from services.kernel.eventstore import EventStore
from services.kernel.projections import Projector
from services.notify.app import create_app
from services.notify.ledger import ledger_stream
from services.notify.messages import TEMPLATES, TemplateBroken, Templates
from services.notify.projections import PROJECTIONS
from tests.integration.notify.conftest import notify_settings, publish, running_notify
from tests.integration.notify.story import filed, mail_to, resolved, someone, stream_types
from tests.integration.simulators import free_port
from tests.integration.support import wait_for


class Inbox:
    """An SMTP server's handler that keeps what it is given (aiosmtpd, on a real socket)."""

    def __init__(self) -> None:
        self.received: list = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.received.append(envelope)
        return "250 OK"


async def test_while_the_smtp_server_is_down_the_email_is_retried_and_goes_out_when_it_is_back(
    settings, db, mailbox, telephony_url, clock
):
    port = free_port()  # nothing listens here yet: the SMTP server is down
    config = notify_settings(
        settings, mailbox, telephony_url, smtp_port=port, send_attempts=50, send_backoff_s=0.05, send_backoff_max_s=0.2
    )
    complaint_id, email = someone()
    async with running_notify(config, clock) as notify:
        publish(config.kafka_bootstrap_servers, "intake", filed(complaint_id, email))
        publish(config.kafka_bootstrap_servers, "routing", resolved(complaint_id))
        await wait_for(lambda: _attempts(notify, email, 3))
        inbox = Inbox()
        server = Controller(inbox, hostname="127.0.0.1", port=port)
        server.start()
        try:
            await wait_for(lambda: inbox.received)
            events = await wait_for(lambda: _sent(notify, email))
        finally:
            server.stop()

    [envelope] = inbox.received
    assert envelope.rcpt_tos == [email]
    [sent] = [e for e in events if type(e).__name__ == "MessageSent"]
    assert sent.attempts >= 4
    assert "NotificationFailed" not in [type(e).__name__ for e in events]


async def test_a_message_is_given_up_with_notification_failed_only_after_the_last_attempt(
    settings, db, mailbox, telephony_url, clock
):
    config = notify_settings(
        settings, mailbox, telephony_url, smtp_port=free_port(), send_attempts=4, send_backoff_s=0.05
    )
    complaint_id, email = someone()
    async with running_notify(config, clock) as notify:
        publish(config.kafka_bootstrap_servers, "intake", filed(complaint_id, email))
        publish(config.kafka_bootstrap_servers, "routing", resolved(complaint_id))
        await wait_for(lambda: _attempts(notify, email, 3))
        assert "NotificationFailed" not in await stream_types(notify, ledger_stream(email))

        events = await wait_for(lambda: _failed(notify, email))

    [failed] = [e for e in events if type(e).__name__ == "NotificationFailed"]
    assert failed.attempts == 4 and failed.template == "closure_question" and failed.complaint_id == complaint_id
    assert "refused" in failed.reason.lower() or "connect" in failed.reason.lower(), failed.reason
    assert "MessageSent" not in [type(e).__name__ for e in events]


async def test_a_temporary_refusal_by_the_smtp_server_is_retried(notify, mailbox):
    complaint_id, email = someone()
    httpx.put(f"{mailbox.url}/faults", json={"refuse": 2})
    publish(notify.config.kafka_bootstrap_servers, "intake", filed(complaint_id, email))
    publish(notify.config.kafka_bootstrap_servers, "routing", resolved(complaint_id))

    [mail] = await mail_to(mailbox, email)

    events = await wait_for(lambda: _sent(notify, email))
    assert [e.attempts for e in events if type(e).__name__ == "MessageSent"] == [3]
    assert mail["subject"].startswith("Is your complaint")


def test_a_template_missing_a_variable_stops_start_up_naming_the_template_and_the_variable(settings, tmp_path):
    folder = tmp_path / "mail"
    shutil.copytree(TEMPLATES, folder)
    body = folder / "outcome.txt"
    body.write_text(body.read_text() + "\nYour reference: {{ case_reference }}\n")

    with pytest.raises(TemplateBroken, match="template outcome: 'case_reference' is undefined"):
        create_app(templates=Templates(folder))


async def _attempts(notify, email: str, at_least: int):
    jobs = await notify.store.db["outgoing"].find({"address": email}).to_list()
    return jobs and jobs[0]["attempts"] >= at_least


async def _sent(notify, email: str):
    events, _ = await notify.store.load(ledger_stream(email))
    return events if any(type(e).__name__ == "MessageSent" for e in events) else None


async def _failed(notify, email: str):
    events, _ = await notify.store.load(ledger_stream(email))
    return events if any(type(e).__name__ == "NotificationFailed" for e in events) else None


async def test_rebuilding_the_outgoing_list_keeps_what_is_owed_and_a_restart_sends_it_once(
    settings, db, mailbox, telephony_url, clock
):
    config = notify_settings(
        settings, mailbox, telephony_url, send_attempts=1000, send_backoff_s=0.05, send_backoff_max_s=0.1
    )
    (sent_id, sent_to), (owed_id, owed_to) = someone(), someone()
    async with running_notify(config, clock) as notify:
        publish(config.kafka_bootstrap_servers, "intake", filed(sent_id, sent_to), filed(owed_id, owed_to))
        publish(config.kafka_bootstrap_servers, "routing", resolved(sent_id))
        await mail_to(mailbox, sent_to)
        await wait_for(lambda: _sent(notify, sent_to))
        httpx.put(f"{mailbox.url}/faults", json={"refuse": 1_000_000})
        try:
            publish(config.kafka_bootstrap_servers, "routing", resolved(owed_id))
            await wait_for(lambda: _attempts(notify, owed_to, 2))
        finally:
            httpx.put(f"{mailbox.url}/faults", json={"refuse": 0})  # the mailbox serves the whole session

    store = EventStore(db.client[config.database_name], "/services/notify", registry)  # notify is stopped
    await Projector(store, [factory(store.db) for factory in PROJECTIONS]).rebuild("outgoing")
    owed = await store.db["outgoing"].find({}).to_list()
    async with running_notify(config, clock) as notify:
        await mail_to(mailbox, owed_to)
        await wait_for(lambda: _sent(notify, owed_to))

    assert [(job["address"], job["attempts"]) for job in owed] == [(owed_to, 0)]  # rebuilt, not left over
    assert len(mailbox.messages(sent_to)) == 1 and len(mailbox.messages(owed_to)) == 1
