"""Restarting notify mid-way sends nothing twice: a real process, killed with SIGKILL while mail goes out."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter

from contracts import TOPICS
from tests.integration.notify.conftest import publish
from tests.integration.notify.story import filed, resolved, someone
from tests.integration.simulators import free_port
from tests.integration.support import ROOT, skip_history, wait_for

#: Enough that the kill lands while mail is still going out, however fast notify sends it.
CASES = 60


def start_notify(settings, mailbox, telephony_url, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SERVICE_NAME": f"notify-{settings.service_name}",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URL": settings.mongodb_url,
        "MONGODB_DATABASE": settings.database_name,
        "HTTP_PORT": str(free_port()),
        "LEASE_TTL_S": "2",
        "OUTBOX_POLL_INTERVAL_S": "0.2",
        "SMTP_PORT": str(mailbox.smtp_port),
        "TELEPHONY_URL": telephony_url,
        "ORDER_SYSTEM_URL": "http://127.0.0.1:9",
        # one email per case counted here: the filing's receipt is tested on its own (test_receipt.py)
        "FILING_RECEIPTS": "false",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.notify.app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


async def test_killing_notify_while_mail_goes_out_and_restarting_it_sends_every_email_exactly_once(
    settings, db, mailbox, telephony_url, tmp_path
):
    cases = [someone() for _ in range(CASES)]
    addresses = {email for _, email in cases}
    for topic in (TOPICS["intake"], TOPICS["routing"]):  # this test's complaints only, not the topics' history
        await asyncio.to_thread(
            skip_history,
            settings.kafka_bootstrap_servers,
            f"{settings.consumer_group_prefix}notify-{settings.service_name}",
            topic,
        )
    with (tmp_path / "notify.log").open("ab") as log:
        first = start_notify(settings, mailbox, telephony_url, log)
        try:
            publish(settings.kafka_bootstrap_servers, "intake", *[filed(c, e) for c, e in cases])
            publish(settings.kafka_bootstrap_servers, "routing", *[resolved(c) for c, _ in cases])
            await wait_for(lambda: received(mailbox, addresses) >= 2, timeout=60, every=0.01)
            first.send_signal(signal.SIGKILL)
            assert first.wait(10) == -signal.SIGKILL
            sent_before_the_kill = received(mailbox, addresses)

            second = start_notify(settings, mailbox, telephony_url, log)
            try:
                await wait_for(lambda: received(mailbox, addresses) >= CASES, timeout=90)
            except AssertionError:
                raise AssertionError(await what_happened(db, mailbox, dict(cases), sent_before_the_kill)) from None
            await asyncio.sleep(3)  # time for any duplicate to arrive
        finally:
            for process in (first, locals().get("second")):
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(30)

    per_address = Counter(r for m in all_messages(mailbox, addresses) for r in m["rcpt_tos"])
    assert sent_before_the_kill < CASES, "the kill came too late to test anything"
    assert per_address == Counter({address: 1 for address in addresses})


def all_messages(mailbox, addresses: set[str]) -> list[dict]:
    return [m for m in mailbox.messages_all() if set(m["rcpt_tos"]) & addresses]


def received(mailbox, addresses: set[str]) -> int:
    return len(all_messages(mailbox, addresses))


async def what_happened(db, mailbox, cases: dict[str, str], before: int) -> str:
    """For a failure: per complaint without its email, what notify's log and work lists say."""
    got = Counter(r for m in all_messages(mailbox, set(cases.values())) for r in m["rcpt_tos"])
    lines = [f"{before} sent before the kill, {sum(got.values())} in all"]
    for complaint_id, address in sorted(cases.items()):
        if address in got:
            continue
        streams = {}
        for stream in (f"complainant-{complaint_id}", f"closure-{complaint_id}", f"ledger-{address}"):
            commits = await db["commits"].find({"stream_id": stream}).to_list()
            streams[stream.split("-")[0]] = [e["type"].split(".")[-2] for c in commits for e in c["events"]]
        inbox = [
            d["envelope"]["type"].split(".")[-2]
            for d in await db["inbox"].find({}).to_list()
            if d["envelope"]["subject"] == complaint_id
        ]
        lines.append(
            f"{complaint_id}: {streams}, inbox {inbox}, outgoing "
            f"{await db['outgoing'].count_documents({'address': address})}"
        )
    return "\n".join(lines)
